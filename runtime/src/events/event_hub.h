// EventHub: the subscriber list and the in-order delivery of per-commit event batches.
//
// The bus builds a commit's batch under its mutex and hands it to Enqueue() there, so the queue
// is in commit order; after releasing the mutex it calls Drain(). Exactly one thread drains at a
// time (the first to find the queue idle); others return at once and their batches are delivered
// by the active drainer, in order. A handler that commits re-enters Drain(), which returns at once
// because its thread is already draining, so nothing deadlocks and batches never interleave.
//
// Subscribers are a copy-on-write list: delivery iterates a snapshot, and each subscription's
// `active` flag is checked before every call, so unsubscribing inside a handler takes effect
// immediately.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <vector>

#include "mmsb/events.h"

#include "core/mutex.h"

namespace mmsb {

class EventHub {
 public:
  SubscriptionId Subscribe(EventBatchHandler batch, EventHandler each, EventMask types)
      EXCLUDES(mu_);
  Status Unsubscribe(SubscriptionId id) EXCLUDES(mu_);
  // True when at least one subscription is active (a cheap, racy hint for the commit path).
  bool has_subscribers() const { return active_count_.load(std::memory_order_relaxed) > 0; }

  void Enqueue(std::vector<Event> batch) EXCLUDES(mu_);
  void Drain() EXCLUDES(mu_);

 private:
  struct Sub {
    SubscriptionId id = 0;
    EventMask types = kAllEvents;
    EventBatchHandler batch;
    EventHandler each;
    std::atomic<bool> active{true};
  };
  using SubList = std::vector<std::shared_ptr<Sub>>;
  void Deliver(const SubList& subs, const std::vector<Event>& batch);

  Mutex mu_;
  std::shared_ptr<const SubList> subs_ GUARDED_BY(mu_) = std::make_shared<SubList>();
  SubscriptionId next_id_ GUARDED_BY(mu_) = 1;
  std::deque<std::vector<Event>> queue_ GUARDED_BY(mu_);
  bool draining_ GUARDED_BY(mu_) = false;
  std::atomic<int> active_count_{0};
};

}  // namespace mmsb
