// A small fixed-size thread pool for data-parallel loops (ParallelFor). Workers start lazily and
// live until the pool is destroyed.
//
// Thread-safety: ParallelFor may be called from one thread at a time (the commit thread).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mmsb {

class ThreadPool {
 public:
  explicit ThreadPool(unsigned workers);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  unsigned size() const { return static_cast<unsigned>(threads_.size()) + 1; }
  // Runs fn(i) for i in [0, n) on the workers and the calling thread; returns when all are done.
  void ParallelFor(std::size_t n, const std::function<void(std::size_t)>& fn);

 private:
  void WorkerLoop();
  void RunShare();

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(std::size_t)>* job_ = nullptr;  // guarded by mu_
  std::size_t next_ = 0, total_ = 0, finished_ = 0;        // guarded by mu_
  std::uint64_t generation_ = 0;                           // guarded by mu_
  unsigned active_ = 0;                                    // workers inside the job, guarded by mu_
  bool stop_ = false;                                      // guarded by mu_
};

}  // namespace mmsb
