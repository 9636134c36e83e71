// The shared main of the benchmark binaries (bench/run drives them through it).
//
// Without MMSB flags it is Google Benchmark's own main. With
//   --mmsb_rounds=N --mmsb_order=BM_A,BM_B,... --mmsb_out=FILE
// it runs each named benchmark (a family name: every instance whose name is it or starts with
// it and '/') once per round, N rounds, in the listed order in even rounds and the reverse order
// in odd rounds (A B, B A, A B, ...), so a subject and its baseline are measured back to back,
// each first as often as second. Every run is written to FILE as JSON
// ({"context": {...}, "benchmarks": [{"name", "round", "real_time" (ns), counters...}]}).
// Google Benchmark's own flags (e.g. --benchmark_min_time) still apply.
//
// Not thread-safe; call from main() only.
#pragma once

#include <string>

namespace mmsb::bench {

// Runs the benchmarks as described above; returns main()'s exit code.
int Main(int argc, char** argv);

// Writes a result file that marks the binary skipped (for a binary that cannot run here, e.g.
// gpu_bench without a CUDA device) wherever --mmsb_out= or --benchmark_out= points.
void WriteSkipped(int argc, char** argv, const std::string& reason);

}  // namespace mmsb::bench

// Replaces BENCHMARK_MAIN() in a *_bench.cc.
#define MMSB_BENCH_MAIN() \
  int main(int argc, char** argv) { return ::mmsb::bench::Main(argc, argv); }
