#include "mmsb/stats.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace mmsb {

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
  line("sampled_pages", sampled_pages);
  line("sampled_misses", sampled_misses);
  line("sink_errors", sink_errors);
  line("failed_commits", failed_commits);
  line("tx_watchdog_reports", tx_watchdog_reports);
  line("propagations", propagations);
  line("nodes_recomputed", nodes_recomputed);
  line("cutoffs", cutoffs);
  line("parallel_batches", parallel_batches);
  line("graph_nodes", graph_nodes);
  line("graph_edges", graph_edges);
  line("graph_depth", graph_depth);
  auto hist = [&](const char* k, const LatencyHistogram& h) {
    s += fmt::format("  {:<18} n={} mean={:.0f}ns p50<={}ns p99<={}ns max={}ns\n", k, h.count(),
                     h.mean_ns(), h.PercentileNs(50), h.PercentileNs(99), h.max_ns());
  };
  hist("commit_latency", commit_latency);
  hist("propagation", propagation_latency);
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
  j["sampled_pages"] = sampled_pages;
  j["sampled_misses"] = sampled_misses;
  j["sink_errors"] = sink_errors;
  j["failed_commits"] = failed_commits;
  j["tx_watchdog_reports"] = tx_watchdog_reports;
  j["propagations"] = propagations;
  j["nodes_recomputed"] = nodes_recomputed;
  j["cutoffs"] = cutoffs;
  j["parallel_batches"] = parallel_batches;
  j["graph_nodes"] = graph_nodes;
  j["graph_edges"] = graph_edges;
  j["graph_depth"] = graph_depth;
  auto hist = [](const LatencyHistogram& l) {
    nlohmann::ordered_json h;
    h["count"] = l.count();
    h["sum"] = l.sum_ns();
    h["min"] = l.min_ns();
    h["max"] = l.max_ns();
    h["p50"] = l.PercentileNs(50);
    h["p99"] = l.PercentileNs(99);
    h["log2_buckets"] = l.buckets();
    return h;
  };
  j["commit_latency_ns"] = hist(commit_latency);
  j["propagation_latency_ns"] = hist(propagation_latency);
  return j.dump();
}

}  // namespace mmsb
