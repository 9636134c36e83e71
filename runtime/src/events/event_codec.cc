// Event batch encoding (docs/SerializationSpec.md, "Event batch").
#include <fmt/format.h>

#include "mmsb/events.h"

#include "core/envelope.h"
#include "core/varint.h"

namespace mmsb {
namespace {

constexpr std::uint8_t kEventsMagic = 0xE7;
// type u8, location u8, five varints of at least one byte.
constexpr std::size_t kMinEventBytes = 7;

}  // namespace

const char* EventTypeName(EventType t) {
  switch (t) {
    case EventType::kPageCreated:
      return "PageCreated";
    case EventType::kPageFreed:
      return "PageFreed";
    case EventType::kDeltaApplied:
      return "DeltaApplied";
    case EventType::kPageChanged:
      return "PageChanged";
    case EventType::kPropagationDone:
      return "PropagationDone";
    case EventType::kCommitDone:
      return "CommitDone";
    case EventType::kCheckpoint:
      return "Checkpoint";
  }
  return "Unknown";
}

std::vector<std::uint8_t> EncodeEvents(std::span<const Event> events) {
  std::vector<std::uint8_t> out;
  out.reserve(32 + events.size() * 12);
  envelope::StartRecord(out, kEventsMagic, 0);
  varint::Append(out, events.size());
  for (const Event& e : events) {
    out.push_back(static_cast<std::uint8_t>(e.type));
    out.push_back(static_cast<std::uint8_t>(e.location));
    varint::Append(out, e.epoch);
    varint::Append(out, e.page);
    varint::Append(out, e.bytes);
    varint::Append(out, e.count);
    varint::Append(out, e.base_epoch);
  }
  envelope::Seal(out, 0);
  return out;
}

Expected<std::vector<Event>> DecodeEvents(std::span<const std::uint8_t> in, std::size_t* consumed) {
  auto rec = envelope::OpenRecord(in, kEventsMagic, "event batch");
  if (!rec.ok()) return rec.status();
  if (rec->kind != 0) return Corruption(fmt::format("event batch: unknown kind {}", rec->kind));
  envelope::Reader r(rec->body);
  std::uint64_t n;
  if (!r.Varint(&n)) return Corruption("event batch: count runs past the record");
  if (n > r.remaining() / kMinEventBytes) {
    return Corruption(
        fmt::format("event batch: {} events cannot fit in {} bytes", n, r.remaining()));
  }
  std::vector<Event> out;
  out.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint8_t type, loc;
    Event e;
    if (!r.U8(&type) || !r.U8(&loc) || !r.Varint(&e.epoch) || !r.Varint(&e.page) ||
        !r.Varint(&e.bytes) || !r.Varint(&e.count) || !r.Varint(&e.base_epoch)) {
      return Corruption(fmt::format("event batch: event {} runs past the record", i));
    }
    if (type < 1 || type > kEventTypeCount)
      return Corruption(fmt::format("event batch: event {} has unknown type {}", i, type));
    if (loc > static_cast<std::uint8_t>(Location::kUnified)) {
      return Corruption(fmt::format("event batch: event {} has unknown location {}", i, loc));
    }
    e.type = static_cast<EventType>(type);
    e.location = static_cast<Location>(loc);
    out.push_back(e);
  }
  if (r.remaining() != 0)
    return Corruption(fmt::format("event batch: {} trailing byte(s)", r.remaining()));
  if (consumed) *consumed = rec->total;
  return out;
}

}  // namespace mmsb
