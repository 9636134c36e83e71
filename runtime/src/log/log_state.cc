// LogState: the state a replay produces (pages, types, edges at an epoch), its lookups and its
// hashes; ReplayReport's summary. See mmsb/replay.h.
#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "mmsb/replay.h"

#include "log/log_records.h"
#include "log/state_hash.h"

namespace mmsb {

const ReplayedPage* LogState::FindPage(PageId id) const {
  auto it = pages.find(id);
  return it == pages.end() ? nullptr : &it->second;
}

const ReplayedPage* LogState::FindPageByName(std::string_view name) const {
  for (const auto& [id, p] : pages) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const TypeDescriptor* LogState::FindType(std::string_view name) const {
  auto it = types.find(name);
  return it == types.end() ? nullptr : it->second.get();
}

std::uint64_t LogState::PageBytes() const {
  std::uint64_t n = 0;
  for (const auto& [id, p] : pages) n += p.bytes.size();
  return n;
}

std::uint64_t LogState::Hash() const {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  auto u64 = [&](std::uint64_t v) { XXH3_64bits_update(st, &v, sizeof v); };
  auto str = [&](const std::string& s) {
    u64(s.size());
    XXH3_64bits_update(st, s.data(), s.size());
  };
  u64(epoch);
  u64(page_id_high);
  u64(pages.size());
  for (const auto& [id, p] : pages) {
    u64(id);
    str(p.name);
    str(p.type_name);
    u64(static_cast<std::uint64_t>(p.location) | (p.is_static ? 0x100 : 0));
    u64(p.epoch);
    u64(p.bytes.size());
    XXH3_64bits_update(st, p.bytes.data(), p.bytes.size());
  }
  u64(types.size());
  std::vector<std::uint8_t> enc;
  for (const auto& [name, t] : types) {
    enc.clear();
    log::EncodeTypeDescriptor(*t, enc);
    u64(enc.size());
    XXH3_64bits_update(st, enc.data(), enc.size());
  }
  u64(edges.size());
  for (const EdgeInfo& e : edges) {
    u64(e.parent);
    u64(e.child);
    u64(static_cast<std::uint64_t>(e.kind) | (static_cast<std::uint64_t>(e.policy) << 8));
    u64(e.projection.src_offset);
    u64(e.projection.length);
    u64(e.projection.dst_offset);
  }
  const std::uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

std::uint64_t LogState::ReplicaHash() const {
  log::ReplicaHashTracker t;
  t.Reset();
  for (const auto& [id, p] : pages) {
    t.Page(id, p.name, p.type_name, p.location, p.is_static, p.epoch, p.bytes);
  }
  t.Edges(edges);
  return t.Digest(epoch, page_id_high);
}

bool ReplayReport::has_errors() const {
  return std::any_of(problems.begin(), problems.end(),
                     [](const LogProblem& p) { return p.is_error(); });
}

}  // namespace mmsb
