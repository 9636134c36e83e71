// Commit events: the batch each commit delivers to subscribers and event-wanting sinks (Bus
// methods; the event order is specified in mmsb/events.h).
#include <algorithm>

#include "bus/bus.h"

namespace mmsb {

void Bus::PostEvents(std::vector<Event> batch) {
  events_.Enqueue(std::move(batch));
  events_.Drain();
}

bool Bus::EventsWanted() const {
  if (events_.has_subscribers()) return true;
  return std::any_of(sinks_->begin(), sinks_->end(),
                     [](const auto& s) { return s->wants_events(); });
}

void Bus::BuildEvents(Epoch e, std::uint64_t recomputed, std::uint64_t cutoffs, bool propagated) {
  batch_events_.clear();
  for (const PageCreatedRecord& c : created_) {
    batch_events_.push_back({EventType::kPageCreated, e, c.id, c.size, 0, 0, c.location});
  }
  for (PageId id : freed_) batch_events_.push_back({EventType::kPageFreed, e, id});
  std::uint64_t total = 0;
  for (const Delta& d : epoch_deltas_) {
    batch_events_.push_back(
        {EventType::kDeltaApplied, e, d.page(), d.changed_bytes(), 0, d.base_epoch()});
    total += d.changed_bytes();
  }
  // One PageChanged per page, in order of first appearance; propagation and stages may give a
  // page a second delta in the same epoch.
  changed_index_.clear();
  for (const Delta& d : epoch_deltas_) {
    auto [it, fresh] = changed_index_.try_emplace(d.page(), batch_events_.size());
    if (fresh) {
      batch_events_.push_back({EventType::kPageChanged, e, d.page(), d.changed_bytes(), 1});
    } else {
      batch_events_[it->second].bytes += d.changed_bytes();
      ++batch_events_[it->second].count;
    }
  }
  if (propagated)
    batch_events_.push_back({EventType::kPropagationDone, e, kInvalidPageId, cutoffs, recomputed});
  batch_events_.push_back({EventType::kCommitDone, e, kInvalidPageId, total, epoch_deltas_.size()});
}

}  // namespace mmsb
