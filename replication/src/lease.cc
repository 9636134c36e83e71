// The leader lease: compare-and-swap on a JetStream KV key, renewal, release.
#include "lease.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

namespace mmsb::repl {

Expected<std::unique_ptr<LeaderLease>> LeaderLease::Acquire(jsCtx* js, const std::string& stream,
                                                            const std::string& owner,
                                                            std::int64_t ttl_ms, int replicas) {
  const std::string bucket = std::string(kLeaseBucket) + "_" + stream;
  kvStore* raw = nullptr;
  if (js_KeyValue(&raw, js, bucket.c_str()) != NATS_OK) {
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = bucket.c_str();
    cfg.History = 1;
    cfg.TTL = ttl_ms * 1000000;  // nanoseconds
    cfg.Replicas = replicas;
    if (natsStatus s = js_CreateKeyValue(&raw, js, &cfg); s != NATS_OK) {
      if (js_KeyValue(&raw, js, bucket.c_str()) != NATS_OK) {
        return NatsError(s, fmt::format("lease bucket '{}'", bucket));
      }
    }
  }
  std::unique_ptr<LeaderLease> lease(new LeaderLease());
  lease->kv_.reset(raw);
  lease->stream_ = stream;
  lease->owner_ = owner;
  lease->ttl_ms_ = ttl_ms;
  std::uint64_t rev = 0;
  natsStatus s = kvStore_CreateString(&rev, lease->kv_.get(), "leader", owner.c_str());
  if (s != NATS_OK) {
    kvEntry* e = nullptr;
    std::string holder = "another publisher";
    if (kvStore_Get(&e, lease->kv_.get(), "leader") == NATS_OK) {
      holder = fmt::format("'{}' (lease revision {})", kvEntry_ValueString(e), kvEntry_Revision(e));
      kvEntry_Destroy(e);
    }
    return FailedPrecondition(fmt::format(
        "stream '{}' already has a leader: {}; a second publisher would fork its history. Stop "
        "that publisher (its lease expires {} ms after it stops renewing) and retry",
        stream, holder, ttl_ms));
  }
  lease->token_ = rev;
  lease->rev_ = rev;
  return lease;
}

LeaderLease::~LeaderLease() { StopRenewing(); }

void LeaderLease::StartRenewing(std::function<void(Status)> on_lost) {
  on_lost_ = std::move(on_lost);
  thread_ = std::thread([this] { RenewLoop(); });
}

void LeaderLease::StopRenewing() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void LeaderLease::RenewLoop() {
  const auto period = std::chrono::milliseconds(std::max<std::int64_t>(ttl_ms_ / 3, 10));
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    cv_.wait_for(l, period, [&] { return stop_; });
    if (stop_) break;
    std::uint64_t rev = 0;
    natsStatus s = kvStore_UpdateString(&rev, kv_.get(), "leader", owner_.c_str(), rev_);
    if (s == NATS_OK) {
      rev_ = rev;
      continue;
    }
    kvEntry* e = nullptr;
    natsStatus g = kvStore_Get(&e, kv_.get(), "leader");
    if (g == NATS_OK) {
      const bool mine = std::string(kvEntry_ValueString(e)) == owner_;
      const std::uint64_t r = kvEntry_Revision(e);
      kvEntry_Destroy(e);
      if (!mine) {
        if (on_lost_) {
          on_lost_(FailedPrecondition(fmt::format(
              "lost the lease of stream '{}' to another publisher: stopped publishing", stream_)));
        }
        return;
      }
      rev_ = r;
    } else if (g == NATS_NOT_FOUND) {
      // Expired while the server was away and nobody took it: take it again. A leader that took
      // and released it meanwhile left a higher token in the stream; recovery checks that.
      if (kvStore_CreateString(&rev, kv_.get(), "leader", owner_.c_str()) == NATS_OK) rev_ = rev;
    }
    // Otherwise the server is unreachable: keep trying; publishing stalls meanwhile.
  }
}

void LeaderLease::Release() {
  std::lock_guard<std::mutex> l(mu_);
  kvEntry* e = nullptr;
  if (kvStore_Get(&e, kv_.get(), "leader") == NATS_OK) {
    const bool mine = std::string(kvEntry_ValueString(e)) == owner_;
    kvEntry_Destroy(e);
    if (mine) (void)kvStore_Delete(kv_.get(), "leader");
  }
}

}  // namespace mmsb::repl
