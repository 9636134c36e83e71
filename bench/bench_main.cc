// See bench_main.h.
#include "bench_main.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

namespace mmsb::bench {
namespace {

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string Number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Shows runs on stderr as the console reporter does and keeps them, tagged with their round.
class CollectingReporter : public benchmark::BenchmarkReporter {
 public:
  CollectingReporter() {
    console_.SetOutputStream(&std::cerr);
    console_.SetErrorStream(&std::cerr);
  }
  bool ReportContext(const Context& context) override {
    if (context_printed_) return true;
    context_printed_ = true;
    return console_.ReportContext(context);
  }
  void ReportRuns(const std::vector<Run>& runs) override {
    console_.ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration) continue;
      std::ostringstream row;
      row << "{\"name\": " << Quote(r.benchmark_name()) << ", \"run_type\": \"iteration\""
          << ", \"round\": " << round << ", \"iterations\": " << r.iterations << ", \"real_time\": "
          << Number(r.GetAdjustedRealTime() * 1e9 / benchmark::GetTimeUnitMultiplier(r.time_unit))
          << ", \"cpu_time\": "
          << Number(r.GetAdjustedCPUTime() * 1e9 / benchmark::GetTimeUnitMultiplier(r.time_unit))
          << ", \"time_unit\": \"ns\"";
      if (r.error_occurred) {
        row << ", \"error_occurred\": true, \"error_message\": " << Quote(r.error_message);
      }
      if (!r.report_label.empty()) row << ", \"label\": " << Quote(r.report_label);
      for (const auto& [name, counter] : r.counters) {
        row << ", " << Quote(name) << ": " << Number(counter.value);
      }
      row << "}";
      rows_.push_back(row.str());
    }
  }
  void Finalize() override { console_.Finalize(); }

  const std::vector<std::string>& rows() const { return rows_; }
  int round = 0;

 private:
  benchmark::ConsoleReporter console_;
  bool context_printed_ = false;
  std::vector<std::string> rows_;
};

// Removes --NAME=VALUE from argv; returns VALUE (empty if absent).
std::string TakeFlag(int* argc, char** argv, const char* name) {
  const std::string prefix = std::string("--") + name + "=";
  std::string value;
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) {
      value = argv[i] + prefix.size();
    } else {
      argv[out++] = argv[i];
    }
  }
  *argc = out;
  return value;
}

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// A filter that matches the family NAME and its instances (NAME/arg, NAME/threads:4, ...).
std::string FamilyFilter(const std::string& name) {
  std::string escaped;
  for (const char c : name) {
    if (std::strchr("\\^$.|?*+()[]{}", c) != nullptr) escaped += '\\';
    escaped += c;
  }
  return "^" + escaped + "(/.*)?$";
}

}  // namespace

int Main(int argc, char** argv) {
  const std::string rounds_flag = TakeFlag(&argc, argv, "mmsb_rounds");
  const std::vector<std::string> order = SplitComma(TakeFlag(&argc, argv, "mmsb_order"));
  const std::string out_path = TakeFlag(&argc, argv, "mmsb_out");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (rounds_flag.empty() && order.empty() && out_path.empty()) {
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
  }
  const int rounds = rounds_flag.empty() ? 1 : std::atoi(rounds_flag.c_str());
  if (rounds < 1 || order.empty() || out_path.empty()) {
    std::fprintf(stderr,
                 "%s: --mmsb_rounds=N (N >= 1) needs --mmsb_order=BM_A,... and "
                 "--mmsb_out=FILE\n",
                 argv[0]);
    return 1;
  }
  CollectingReporter reporter;
  int failed = 0;
  for (int r = 0; r < rounds; ++r) {
    reporter.round = r;
    for (std::size_t k = 0; k < order.size(); ++k) {
      const std::string& name = order[r % 2 == 0 ? k : order.size() - 1 - k];
      if (benchmark::RunSpecifiedBenchmarks(&reporter, FamilyFilter(name)) == 0) {
        std::fprintf(stderr, "%s: no benchmark named %s\n", argv[0], name.c_str());
        failed = 1;
      }
    }
  }
  benchmark::Shutdown();
  std::ofstream out(out_path);
  out << "{\"context\": {\"executable\": " << Quote(argv[0]) << ", \"rounds\": " << rounds
      << "},\n \"benchmarks\": [\n";
  for (std::size_t i = 0; i < reporter.rows().size(); ++i) {
    out << "  " << reporter.rows()[i] << (i + 1 < reporter.rows().size() ? ",\n" : "\n");
  }
  out << "]}\n";
  out.close();
  if (!out) {
    std::fprintf(stderr, "%s: cannot write %s\n", argv[0], out_path.c_str());
    return 1;
  }
  return failed;
}

void WriteSkipped(int argc, char** argv, const std::string& reason) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    for (const char* flag : {"--benchmark_out=", "--mmsb_out="}) {
      if (arg.rfind(flag, 0) != 0) continue;
      std::ofstream out(arg.substr(std::strlen(flag)));
      out << "{\"context\": {\"mmsb_skipped\": " << Quote(reason) << "}, \"benchmarks\": []}\n";
    }
  }
}

}  // namespace mmsb::bench
