// ApplyWorker: a second thread that applies one epoch group's deltas to the replayed pages while
// the replayer reads, checksums, parses and checks the next group (docs/Performance.md, "Dense
// replay"). At most one batch is in flight; the replayer waits for it before anything reads or
// changes the state again.
//
// Invariants (what makes the overlap safe; the replayer keeps them, see replay.cc):
//   - between Submit() and the end of the next Wait(), nothing but the worker reads or writes the
//     bytes of a page named by a submitted job, nor resizes or frees such a page;
//   - the bytes every job's view points at (a mapped segment, the replayer's payload arena, an
//     in-memory group) stay valid and unchanged until that Wait() returns;
//   - both threads claim jobs, and no two claimable jobs write the same bytes: the deltas of a
//     page that has several in the batch form one chain, applied in log order by one thread.
//
// Internal to the log component. Thread-safety: Submit and Wait from one thread (the replayer's).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "delta/delta_view.h"

namespace mmsb::log {

class ApplyWorker {
 public:
  // One delta to apply to a page of delta.page_size bytes.
  struct Delta {
    delta_internal::DeltaView view;
    std::uint8_t* page = nullptr;
  };

  ApplyWorker() = default;
  ~ApplyWorker();  // waits for the batch in flight, then stops the thread
  ApplyWorker(const ApplyWorker&) = delete;
  ApplyWorker& operator=(const ApplyWorker&) = delete;

  // Whether a second thread can run beside the replayer's (more than one hardware thread).
  static bool Useful();

  // Starts applying `deltas` (in log order). The previous batch must have been waited for.
  // Starts the thread on first use.
  void Submit(std::span<const Delta> deltas);
  // Returns once every submitted delta is applied (at once when none is in flight). The calling
  // thread applies the jobs the worker has not claimed yet rather than wait for them.
  void Wait();
  bool idle() const {
    return done_.load(std::memory_order_acquire) == submitted_.load(std::memory_order_relaxed);
  }

  // A dense delta of a larger page is applied in parts of this many page bytes, so that the two
  // threads finish a batch together. (Smaller parts measured slower for the benchmark's 64 KiB
  // pages: 16 KiB lost in 5 of 6 alternations; each part counts the mask bits before it.)
  static constexpr std::uint32_t kPartBytes = 64 << 10;

 private:
  // Page bytes [begin, end) of one delta (delta_internal::ApplyDeltaViewPart), then the job
  // `next` names, if any: the page's next delta in the batch, whose job is `chained` (claimed
  // only through this one). No two claimable jobs write the same bytes.
  struct Job {
    delta_internal::DeltaView view;
    std::uint8_t* page = nullptr;
    std::uint32_t begin = 0;
    std::uint32_t end = 0;
    std::uint32_t next = kNoJob;
    bool chained = false;
  };
  static constexpr std::uint32_t kNoJob = ~std::uint32_t{0};

  void Run();
  void ApplyClaimed();  // claims and applies jobs until none are left

  std::thread thread_;
  std::mutex mu_;
  std::condition_variable wake_;  // worker: a batch was submitted, or stop
  std::condition_variable done_cv_;
  std::vector<Job> batch_;  // read by both threads while a batch is in flight, changed by neither
  std::vector<std::uint32_t> order_;  // Submit's scratch
  std::atomic<std::size_t> next_{0};  // the next job of batch_ to claim
  std::atomic<std::uint64_t> submitted_{0};
  std::atomic<std::uint64_t> done_{0};
  std::atomic<bool> stop_{false};
  bool no_thread_ = false;  // the thread could not be started: Submit applies the batch itself
  bool worker_sleeping_ = false;  // guarded by mu_
  bool waiter_sleeping_ = false;  // guarded by mu_
};

}  // namespace mmsb::log
