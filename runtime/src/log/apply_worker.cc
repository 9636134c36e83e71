#include "log/apply_worker.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <system_error>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace mmsb::log {
namespace {

// How long either side polls before it sleeps. A group's read and apply each take tens of
// microseconds at the sizes where the worker is used; waking a sleeping thread costs about as
// much on a virtual machine (an inter-processor interrupt), so a short poll keeps the two in step
// while a replay runs, and the thread sleeps between replays.
constexpr auto kPoll = std::chrono::microseconds(200);

template <class Ready>
bool Poll(Ready ready) {
  const auto until = std::chrono::steady_clock::now() + kPoll;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
#if defined(__x86_64__)
      _mm_pause();
#endif
    }
    if (std::chrono::steady_clock::now() >= until) return ready();
  }
}

}  // namespace

bool ApplyWorker::Useful() {
  static const bool kUseful = std::thread::hardware_concurrency() > 1;  // reads sysfs: once
  return kUseful;
}

ApplyWorker::~ApplyWorker() {
  if (!thread_.joinable()) return;
  Wait();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
  }
  wake_.notify_one();
  thread_.join();
}

void ApplyWorker::Submit(std::span<const Delta> deltas) {
  // The previous batch is done (the caller waited), so the worker no longer reads batch_.
  batch_.clear();
  // Deltas by page, in log order within a page: a page with one delta gets its parts, a page with
  // several gets one chain of whole-page jobs.
  order_.resize(deltas.size());
  for (std::uint32_t i = 0; i < order_.size(); ++i) order_[i] = i;
  std::sort(order_.begin(), order_.end(), [&](std::uint32_t a, std::uint32_t b) {
    if (deltas[a].page != deltas[b].page)
      return std::less<const std::uint8_t*>()(deltas[a].page, deltas[b].page);
    return a < b;
  });
  for (std::size_t k = 0; k < order_.size();) {
    std::size_t same = k + 1;
    while (same < order_.size() && deltas[order_[same]].page == deltas[order_[k]].page) ++same;
    const Delta& first = deltas[order_[k]];
    const std::uint32_t size = first.view.page_size;
    if (same - k == 1 && first.view.dense && size > kPartBytes) {
      for (std::uint32_t b = 0; b < size; b += kPartBytes)
        batch_.push_back({first.view, first.page, b, std::min(size, b + kPartBytes)});
    } else {
      for (std::size_t j = k; j < same; ++j) {
        const Delta& d = deltas[order_[j]];
        if (j > k) batch_.back().next = static_cast<std::uint32_t>(batch_.size());
        batch_.push_back({d.view, d.page, 0, d.view.page_size, kNoJob, j > k});
      }
    }
    k = same;
  }
  next_.store(0, std::memory_order_relaxed);  // published by the release below
  if (!thread_.joinable() && !no_thread_) {
    try {
      thread_ = std::thread([this] { Run(); });
    } catch (const std::system_error&) {
      no_thread_ = true;  // out of threads: this thread applies every batch, as without a worker
    }
  }
  if (no_thread_) {
    ApplyClaimed();
    done_.store(submitted_.fetch_add(1, std::memory_order_relaxed) + 1, std::memory_order_release);
    return;
  }
  bool notify;
  {
    std::lock_guard<std::mutex> lock(mu_);
    submitted_.fetch_add(1, std::memory_order_release);
    notify = worker_sleeping_;
  }
  if (notify) wake_.notify_one();
}

void ApplyWorker::ApplyClaimed() {
  for (std::size_t i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < batch_.size();) {
    if (batch_[i].chained) continue;  // its chain's head applies it
    for (auto j = static_cast<std::uint32_t>(i); j != kNoJob; j = batch_[j].next)
      delta_internal::ApplyDeltaViewPart(batch_[j].view, batch_[j].page, batch_[j].begin,
                                         batch_[j].end);
  }
}

void ApplyWorker::Wait() {
  const std::uint64_t target = submitted_.load(std::memory_order_relaxed);
  const auto done = [&] { return done_.load(std::memory_order_acquire) == target; };
  if (done()) return;
  ApplyClaimed();  // help with what is left rather than wait for it
  if (Poll(done)) return;
  std::unique_lock<std::mutex> lock(mu_);
  waiter_sleeping_ = true;
  done_cv_.wait(lock, done);
  waiter_sleeping_ = false;
}

void ApplyWorker::Run() {
  std::uint64_t seen = 0;
  for (;;) {
    const auto work = [&] {
      return submitted_.load(std::memory_order_acquire) != seen ||
             stop_.load(std::memory_order_acquire);
    };
    if (!Poll(work)) {
      std::unique_lock<std::mutex> lock(mu_);
      worker_sleeping_ = true;
      wake_.wait(lock, work);
      worker_sleeping_ = false;
    }
    const std::uint64_t s = submitted_.load(std::memory_order_acquire);
    if (s == seen) return;  // stop, and nothing left to apply
    ApplyClaimed();
    seen = s;
    bool notify;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_.store(s, std::memory_order_release);
      notify = waiter_sleeping_;
    }
    if (notify) done_cv_.notify_one();
  }
}

}  // namespace mmsb::log
