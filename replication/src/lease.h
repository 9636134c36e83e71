// The leader lease of one stream (docs/Replication.md, "The leader lease"): the key `leader` in
// the JetStream KV bucket `mmsb_leases_<S>`, created by compare-and-swap, renewed every TTL/3,
// deleted on release. The create's revision is the fencing token every data message carries.
// Thread-safety: Acquire and Release on the owner's thread; the renewal runs on its own thread
// and reports a lost lease through the callback, once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "nats_util.h"

namespace mmsb::repl {

class LeaderLease {
 public:
  // Takes the lease of `stream` for `owner` (FailedPrecondition naming the holder when another
  // publisher has it). Creates the bucket (TTL `ttl_ms`, `replicas`) when missing.
  static Expected<std::unique_ptr<LeaderLease>> Acquire(jsCtx* js, const std::string& stream,
                                                        const std::string& owner,
                                                        std::int64_t ttl_ms, int replicas);
  ~LeaderLease();  // stops renewing; does not release

  std::uint64_t token() const { return token_; }
  // Renews every TTL/3 on a thread of its own. `on_lost` is called (on that thread) when another
  // owner took the key; renewal stops then.
  void StartRenewing(std::function<void(Status)> on_lost);
  void StopRenewing();
  // Deletes the key when it is still ours, so a successor need not wait for the TTL.
  void Release();

 private:
  LeaderLease() = default;
  void RenewLoop();

  NatsPtr<kvStore> kv_;
  std::string stream_;
  std::string owner_;
  std::int64_t ttl_ms_ = 0;
  std::uint64_t token_ = 0;
  std::function<void(Status)> on_lost_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t rev_ = 0;  // guarded by mu_
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace mmsb::repl
