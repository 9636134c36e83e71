// Typed events: what happened in each commit, for subscribers and for the log.
//
// Every commit produces one batch of events, in a fixed order: PageCreated and PageFreed for the
// pages created and freed since the previous commit, then one DeltaApplied per delta in batch
// order, one PageChanged per page whose bytes changed this epoch, PropagationDone when the graph
// recomputed anything, and CommitDone last. Checkpoint events come from the log as batches of
// their own. A batch depends only on the commit's content, so a log that records batches
// (EncodeEvents) replays to the same sequence.
//
// Subscribers receive whole batches (one call per commit), or one call per event when they ask
// for it, filtered by type. Handlers run on a committing thread after the commit lock is released,
// one batch at a time, in commit order, never concurrently with each other. A handler may
// subscribe, unsubscribe (itself included), read pages and even commit: nothing deadlocks. A
// handler unsubscribed during delivery gets no further events; one subscribed during delivery gets
// the next batch. Events are built only when someone listens (a subscriber, or a sink whose
// wants_events() is true), so they cost nothing otherwise.
//
// Thread-safety: Subscribe/Unsubscribe may be called from any thread, at any time.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "mmsb/status.h"
#include "mmsb/types.h"

namespace mmsb {

enum class EventType : std::uint8_t {
  kPageCreated = 1,      // page, bytes = size, location
  kPageFreed = 2,        // page
  kDeltaApplied = 3,     // page, bytes = changed bytes, base_epoch
  kPageChanged = 4,      // page, bytes = changed bytes over the whole epoch, count = deltas
  kPropagationDone = 5,  // count = nodes recomputed, bytes = cutoffs
  kCommitDone = 6,       // count = deltas, bytes = changed bytes in the epoch
  kCheckpoint = 7,       // epoch = the checkpoint's epoch, count = pages, bytes = page bytes
};
inline constexpr int kEventTypeCount = 7;

const char* EventTypeName(EventType t);

struct Event {
  EventType type = EventType::kCommitDone;
  Epoch epoch = 0;  // the epoch the event belongs to
  PageId page = kInvalidPageId;
  std::uint64_t bytes = 0;
  std::uint64_t count = 0;
  Epoch base_epoch = 0;
  Location location = Location::kCpu;
  friend bool operator==(const Event&, const Event&) = default;
};

// A bit set of event types: EventMask(EventType::kPageChanged) | ...
using EventMask = std::uint32_t;
constexpr EventMask EventBit(EventType t) { return EventMask{1} << static_cast<unsigned>(t); }
inline constexpr EventMask kAllEvents = ~EventMask{0};

using SubscriptionId = std::uint64_t;
using EventBatchHandler = std::function<void(std::span<const Event> batch)>;
using EventHandler = std::function<void(const Event& event)>;

// One call per commit with the batch's events of the selected types (skipped when none match).
Expected<SubscriptionId> Subscribe(EventBatchHandler handler, EventMask types = kAllEvents);
// One call per event of the selected types.
Expected<SubscriptionId> SubscribeEach(EventHandler handler, EventMask types = kAllEvents);
// NotFound if the id is unknown or already unsubscribed.
Status Unsubscribe(SubscriptionId id);

// Versioned, checksummed encoding of a batch (see docs/SerializationSpec.md, "Event batch").
std::vector<std::uint8_t> EncodeEvents(std::span<const Event> events);
// Decodes untrusted input; allocation is bounded by the input size.
Expected<std::vector<Event>> DecodeEvents(std::span<const std::uint8_t> in,
                                          std::size_t* consumed = nullptr);

}  // namespace mmsb
