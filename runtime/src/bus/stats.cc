#include "mmsb/stats.h"

#include <bit>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace mmsb {

void LatencyHistogram::Record(std::uint64_t ns) {
  const int b = ns == 0 ? 0 : std::min(kBuckets - 1, static_cast<int>(std::bit_width(ns)) - 1);
  ++buckets_[b];
  ++count_;
  sum_ += ns;
  min_ = std::min(min_, ns);
  max_ = std::max(max_, ns);
}

std::uint64_t LatencyHistogram::PercentileNs(double p) const {
  if (count_ == 0) return 0;
  const double target = p / 100.0 * static_cast<double>(count_);
  std::uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (static_cast<double>(seen) >= target && buckets_[i] != 0) {
      return std::min(max_, (std::uint64_t{2} << i) - 1);
    }
  }
  return max_;
}

std::string Stats::ToString() const {
  std::string s;
  auto line = [&](const char* k, std::uint64_t v) { s += fmt::format("  {:<18} {}\n", k, v); };
  s += "mmsb stats\n";
  line("epoch", epoch);
  line("commits", commits);
  line("pages_live", pages_live);
  line("pages_created", pages_created);
  line("pages_freed", pages_freed);
  line("pages_escaped", pages_escaped);
  line("cpu_bytes", cpu_bytes);
  line("gpu_bytes", gpu_bytes);
  line("deltas", deltas);
  line("delta_bytes", delta_bytes);
  line("granules_diffed", granules_diffed);
  line("full_diffs", full_diffs);
  line("verify_commits", verify_commits);
  line("verify_misses", verify_misses);
  line("sink_errors", sink_errors);
  s += fmt::format("  {:<18} n={} mean={:.0f}ns p50<={}ns p99<={}ns max={}ns\n", "commit_latency",
                   commit_latency.count(), commit_latency.mean_ns(), commit_latency.PercentileNs(50),
                   commit_latency.PercentileNs(99), commit_latency.max_ns());
  return s;
}

std::string Stats::ToJson() const {
  nlohmann::ordered_json j;
  j["epoch"] = epoch;
  j["commits"] = commits;
  j["pages_live"] = pages_live;
  j["pages_created"] = pages_created;
  j["pages_freed"] = pages_freed;
  j["pages_escaped"] = pages_escaped;
  j["cpu_bytes"] = cpu_bytes;
  j["gpu_bytes"] = gpu_bytes;
  j["deltas"] = deltas;
  j["delta_bytes"] = delta_bytes;
  j["granules_diffed"] = granules_diffed;
  j["full_diffs"] = full_diffs;
  j["verify_commits"] = verify_commits;
  j["verify_misses"] = verify_misses;
  j["sink_errors"] = sink_errors;
  auto& h = j["commit_latency_ns"];
  h["count"] = commit_latency.count();
  h["sum"] = commit_latency.sum_ns();
  h["min"] = commit_latency.min_ns();
  h["max"] = commit_latency.max_ns();
  h["p50"] = commit_latency.PercentileNs(50);
  h["p99"] = commit_latency.PercentileNs(99);
  h["log2_buckets"] = commit_latency.buckets();
  return j.dump();
}

}  // namespace mmsb
