#include "events/event_hub.h"

#include <algorithm>

#include <fmt/format.h>

namespace mmsb {
namespace {

thread_local bool t_draining = false;

}  // namespace

SubscriptionId EventHub::Subscribe(EventBatchHandler batch, EventHandler each, EventMask types) {
  auto sub = std::make_shared<Sub>();
  sub->types = types;
  sub->batch = std::move(batch);
  sub->each = std::move(each);
  MutexLock lock(&mu_);
  sub->id = next_id_++;
  auto next = std::make_shared<SubList>(*subs_);
  next->push_back(sub);
  subs_ = std::move(next);
  active_count_.fetch_add(1, std::memory_order_relaxed);
  return sub->id;
}

Status EventHub::Unsubscribe(SubscriptionId id) {
  MutexLock lock(&mu_);
  auto it = std::find_if(subs_->begin(), subs_->end(), [&](const auto& s) { return s->id == id; });
  if (it == subs_->end()) return NotFound(fmt::format("no subscription with id {}", id));
  (*it)->active.store(false, std::memory_order_release);
  auto next = std::make_shared<SubList>();
  for (const auto& s : *subs_) {
    if (s->id != id) next->push_back(s);
  }
  subs_ = std::move(next);
  active_count_.fetch_sub(1, std::memory_order_relaxed);
  return Status::Ok();
}

void EventHub::Enqueue(std::vector<Event> batch) {
  if (batch.empty()) return;
  MutexLock lock(&mu_);
  queue_.push_back(std::move(batch));
}

void EventHub::Drain() {
  if (t_draining) return;  // a handler committed: the outer loop delivers its batch next
  std::vector<Event> batch;
  std::shared_ptr<const SubList> subs;
  {
    MutexLock lock(&mu_);
    if (draining_ || queue_.empty()) return;
    draining_ = true;
  }
  t_draining = true;
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (queue_.empty()) {
        draining_ = false;
        break;
      }
      batch = std::move(queue_.front());
      queue_.pop_front();
      subs = subs_;
    }
    Deliver(*subs, batch);
  }
  t_draining = false;
}

void EventHub::Deliver(const SubList& subs, const std::vector<Event>& batch) {
  std::vector<Event> filtered;
  for (const auto& sub : subs) {
    if (!sub->active.load(std::memory_order_acquire)) continue;
    const bool all = sub->types == kAllEvents;
    if (sub->each) {
      for (const Event& e : batch) {
        if (!sub->active.load(std::memory_order_acquire)) break;
        if (all || (sub->types & EventBit(e.type))) sub->each(e);
      }
      continue;
    }
    if (all) {
      sub->batch(batch);
      continue;
    }
    filtered.clear();
    for (const Event& e : batch) {
      if (sub->types & EventBit(e.type)) filtered.push_back(e);
    }
    if (!filtered.empty()) sub->batch(filtered);
  }
}

}  // namespace mmsb
