// Runtime statistics: counters and latency histograms, printable and as JSON.
//
// GetStats() returns a consistent snapshot taken under the commit lock.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace mmsb {

// Log2-bucketed latency histogram in nanoseconds: bucket i counts samples in [2^i, 2^(i+1)).
class LatencyHistogram {
 public:
  static constexpr int kBuckets = 48;
  void Record(std::uint64_t ns);
  std::uint64_t count() const { return count_; }
  std::uint64_t sum_ns() const { return sum_; }
  std::uint64_t min_ns() const { return count_ ? min_ : 0; }
  std::uint64_t max_ns() const { return max_; }
  double mean_ns() const { return count_ ? double(sum_) / double(count_) : 0.0; }
  // Upper bound of the bucket holding the p-th percentile (p in [0, 100]).
  std::uint64_t PercentileNs(double p) const;
  const std::array<std::uint64_t, kBuckets>& buckets() const { return buckets_; }

 private:
  std::array<std::uint64_t, kBuckets> buckets_{};
  std::uint64_t count_ = 0, sum_ = 0, min_ = ~std::uint64_t{0}, max_ = 0;
};

struct Stats {
  std::uint64_t pages_live = 0;
  std::uint64_t pages_created = 0;
  std::uint64_t pages_freed = 0;
  std::uint64_t pages_escaped = 0;  // live pages currently marked escaped
  std::uint64_t cpu_bytes = 0;      // live page bytes in CPU or unified memory
  std::uint64_t gpu_bytes = 0;      // live page bytes on a device (mirrors included)
  std::uint64_t commits = 0;
  std::uint64_t epoch = 0;
  std::uint64_t deltas = 0;           // non-empty deltas produced by commits
  std::uint64_t delta_bytes = 0;      // changed bytes across those deltas
  std::uint64_t granules_diffed = 0;  // granules compared by the tracked path
  std::uint64_t full_diffs = 0;       // pages fully compared (new, escaped, verify)
  std::uint64_t verify_commits = 0;
  std::uint64_t verify_misses = 0;  // bytes the tracked path missed (verify mode or sampling)
  // Sampled verification: pages checked in full by sampling, and the misses it reported (runs).
  std::uint64_t sampled_pages = 0;
  std::uint64_t sampled_misses = 0;
  std::uint64_t sink_errors = 0;
  std::uint64_t failed_commits = 0;  // commits rolled back (a stage or recompute failed)
  // Watchdog reports: a commit waited more than a second for a transaction on another thread.
  std::uint64_t tx_watchdog_reports = 0;
  LatencyHistogram commit_latency;
  // Propagation (mmsb/graph.h).
  std::uint64_t propagations = 0;
  std::uint64_t nodes_recomputed = 0;
  std::uint64_t cutoffs = 0;
  std::uint64_t parallel_batches = 0;
  std::uint64_t graph_depth = 0;
  std::uint64_t graph_nodes = 0;
  std::uint64_t graph_edges = 0;
  LatencyHistogram propagation_latency;

  std::string ToString() const;  // human-readable, multi-line
  std::string ToJson() const;    // stable keys; see docs/API.md
};

// A snapshot of the running bus's counters (all zero when it is not started).
Stats GetStats();

}  // namespace mmsb
