#include "graph/thread_pool.h"

namespace mmsb {

ThreadPool::ThreadPool(unsigned workers) {
  threads_.reserve(workers);
  for (unsigned i = 0; i < workers; ++i) threads_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

// Claims indices one at a time until the job is exhausted. Called with mu_ unlocked.
void ThreadPool::RunShare() {
  std::unique_lock<std::mutex> lock(mu_);
  const auto* job = job_;
  while (next_ < total_) {
    const std::size_t i = next_++;
    lock.unlock();
    (*job)(i);
    lock.lock();
    if (++finished_ == total_) done_.notify_all();
  }
}

void ThreadPool::WorkerLoop() {
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || (generation_ != seen && next_ < total_); });
      if (stop_) return;
      seen = generation_;
      ++active_;
    }
    RunShare();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (--active_ == 0) done_.notify_all();
    }
  }
}

void ThreadPool::ParallelFor(std::size_t n, const std::function<void(std::size_t)>& fn) {
  if (n == 0) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    next_ = 0;
    total_ = n;
    finished_ = 0;
    ++generation_;
  }
  wake_.notify_all();
  RunShare();
  std::unique_lock<std::mutex> lock(mu_);
  // Wait for every index and for every worker to leave the job, so `fn` may die after return.
  done_.wait(lock, [&] { return finished_ == total_ && active_ == 0; });
  job_ = nullptr;
  total_ = 0;
}

}  // namespace mmsb
