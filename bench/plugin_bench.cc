// Plugin benchmarks (bench/run plugin). Figures are same-run ratios:
//   plugin.compile_overhead_plain   CPU time of clang++-19 compiling project sources that use no
//                                   page types, with the plugin / without
//   plugin.compile_overhead_pages   the same for a TU that uses page types heavily, at -O2
//   plugin.runtime_overhead         kernels on pages built with the plugin / without: the
//                                   geometric mean over the particles step and band loops, a hash
//                                   map, a sort and a graph traversal (BM_RuntimeOverheadKernels)
//   plugin.runtime_overhead_band    examples/particles' step loop built with the plugin / without
//   plugin.runtime_overhead_dense   a dense integration loop (range-marked by the plugin), same
//   plugin.verify_misses            tracked-path misses over the e2e suite in verify mode
// Compile times are the child's CPU time (user + system, from wait4), so other load on the
// machine disturbs them little; plain and plugin compiles alternate.
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "mmsb/mmsb.h"

#include "bench_main.h"
#include "benchmark/benchmark.h"
#include "plugin/kernels.h"
#include "plugin/particles_step.h"

extern char** environ;

namespace {

struct RunResult {
  int status = -1;
  double cpu_seconds = 0;
  std::string output;
};

// Runs argv (with `env` added to the environment), capturing stdout and stderr.
RunResult Run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
  RunResult r;
  int fds[2];
  if (pipe(fds) != 0) return r;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return r;
  }
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;)
    r.output.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  struct rusage usage{};
  int status = 0;
  wait4(pid, &status, 0, &usage);
  r.status = status;
  r.cpu_seconds = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                  static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
  return r;
}

// The plugin captures IR by default (docs/IRStore.md); its store goes to a scratch directory.
const std::string& IrStoreEnv() {
  static const std::string env = [] {
    char dir[] = "/tmp/mmsb-plugin-bench-XXXXXX";
    const char* made = mkdtemp(dir);
    return std::string("MMSB_IR_STORE=") + (made != nullptr ? made : "/tmp") + "/ir.db";
  }();
  return env;
}

std::vector<std::string> CompileCommand(const std::string& source,
                                        const std::vector<std::string>& flags, bool with_plugin) {
  std::vector<std::string> argv = {MMSB_BENCH_CLANGXX, "-std=c++20", "-c", source, "-o",
                                   "/dev/null",        "-w"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  if (with_plugin) argv.push_back("-fplugin=" MMSB_BENCH_PLUGIN);
  return argv;
}

// Each iteration compiles every source without and with the plugin (alternating which goes
// first); counters: plain and plugin CPU seconds per iteration, and their ratio.
void CompileOverhead(benchmark::State& state, const std::vector<std::string>& sources,
                     const std::vector<std::string>& flags) {
  double plain = 0, plugin = 0;
  bool plugin_first = false;
  for (auto _ : state) {
    for (const std::string& src : sources) {
      for (int k = 0; k < 2; ++k) {
        const bool with_plugin = (k == 0) == plugin_first;
        RunResult r = Run(CompileCommand(src, flags, with_plugin), {IrStoreEnv()});
        if (r.status != 0) {
          state.SkipWithError(("compile failed: " + src + "\n" + r.output).c_str());
          return;
        }
        (with_plugin ? plugin : plain) += r.cpu_seconds;
      }
    }
    plugin_first = !plugin_first;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["plain_s"] = plain / n;
  state.counters["plugin_s"] = plugin / n;
  state.counters["ratio"] = plugin / plain;
}

const std::vector<std::string> kRuntimeFlags = {"-O2", "-DNDEBUG",
                                                "-I" MMSB_BENCH_SOURCE_DIR "/runtime/include",
                                                "-I" MMSB_BENCH_SOURCE_DIR "/runtime/src"};

// Project sources that use no page types (fmt, nlohmann/json, the standard library).
void BM_CompileOverheadPlain(benchmark::State& state) {
  CompileOverhead(state,
                  {MMSB_BENCH_SOURCE_DIR "/runtime/src/delta/type_desc.cc",
                   MMSB_BENCH_SOURCE_DIR "/runtime/src/bus/stats.cc",
                   MMSB_BENCH_SOURCE_DIR "/runtime/src/graph/graph.cc"},
                  kRuntimeFlags);
}
BENCHMARK(BM_CompileOverheadPlain)->Iterations(3)->Unit(benchmark::kMillisecond);

void BM_CompileOverheadPages(benchmark::State& state) {
  CompileOverhead(state, {MMSB_BENCH_SOURCE_DIR "/bench/plugin/pages_heavy.cc"}, {"-O2"});
}
BENCHMARK(BM_CompileOverheadPages)->Iterations(5)->Unit(benchmark::kMillisecond);

// The step loop over 4096 particles: plain stores into heap memory.
void BM_ParticlesStepPlain(benchmark::State& state) {
  plain::Particles* p = plain::Create();
  for (auto _ : state) plain::Step(p, 0.001f);
  benchmark::DoNotOptimize(plain::Checksum(p));
  state.SetItemsProcessed(state.iterations() * kParticles);
  plain::Destroy(p);
}
BENCHMARK(BM_ParticlesStepPlain);

// The same source compiled with the plugin: the particles are a page, every store is barriered.
// Commits are not part of the loop (they are benchmarked with the runtime).
void BM_ParticlesStepInstrumented(benchmark::State& state) {
  instrumented::Particles* p = instrumented::Create();
  for (auto _ : state) instrumented::Step(p, 0.001f);
  benchmark::DoNotOptimize(instrumented::Checksum(p));
  state.SetItemsProcessed(state.iterations() * kParticles);
  (void)mmsb::commit();
  instrumented::Destroy(p);
}
BENCHMARK(BM_ParticlesStepInstrumented);

// examples/particles' step loop (one band in 64 per step; 64 steps per iteration), plain.
void BM_ParticlesBandPlain(benchmark::State& state) {
  plain::Particles* p = plain::Create();
  for (auto _ : state) {
    for (int b = 0; b < kBands; ++b) plain::StepBand(p, 0.001f);
  }
  benchmark::DoNotOptimize(plain::Checksum(p));
  state.SetItemsProcessed(state.iterations() * kParticles / 2);
  plain::Destroy(p);
}
BENCHMARK(BM_ParticlesBandPlain);

void BM_ParticlesBandInstrumented(benchmark::State& state) {
  instrumented::Particles* p = instrumented::Create();
  for (auto _ : state) {
    for (int b = 0; b < kBands; ++b) instrumented::StepBand(p, 0.001f);
  }
  benchmark::DoNotOptimize(instrumented::Checksum(p));
  state.SetItemsProcessed(state.iterations() * kParticles / 2);
  (void)mmsb::commit();
  instrumented::Destroy(p);
}
BENCHMARK(BM_ParticlesBandInstrumented);

// plugin.runtime_overhead: each kernel on a page, built with the plugin and without, timed in
// runs that alternate between the two builds (which goes first alternates too). A kernel's ratio
// is the median of its instrumented runs over the median of its plain runs (>= 5 each); the
// figure is the geometric mean of the kernels' ratios. Counters: the figure (`ratio`) and each
// kernel's ratio. No commit happens inside the timed runs (commits are benchmarked with the
// runtime); a commit after the runs keeps the instrumented pages' marks from piling up.
struct Kernel {
  const char* name;
  void (*plain)(std::uint64_t round);
  void (*instrumented)(std::uint64_t round);
};

plain::Particles* g_plain_particles;
instrumented::Particles* g_inst_particles;
plain::Kernels* g_plain_kernels;
instrumented::Kernels* g_inst_kernels;

const Kernel kKernels[] = {
    {"step", [](std::uint64_t) { plain::Step(g_plain_particles, 0.001f); },
     [](std::uint64_t) { instrumented::Step(g_inst_particles, 0.001f); }},
    {"band",
     [](std::uint64_t) {
       for (int b = 0; b < kBands; ++b) plain::StepBand(g_plain_particles, 0.001f);
     },
     [](std::uint64_t) {
       for (int b = 0; b < kBands; ++b) instrumented::StepBand(g_inst_particles, 0.001f);
     }},
    {"hash", [](std::uint64_t r) { plain::HashRound(g_plain_kernels, r); },
     [](std::uint64_t r) { instrumented::HashRound(g_inst_kernels, r); }},
    {"sort", [](std::uint64_t r) { plain::SortRound(g_plain_kernels, r); },
     [](std::uint64_t r) { instrumented::SortRound(g_inst_kernels, r); }},
    {"bfs", [](std::uint64_t r) { plain::BfsRound(g_plain_kernels, r); },
     [](std::uint64_t r) { instrumented::BfsRound(g_inst_kernels, r); }},
};

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// CPU seconds of this thread for `reps` rounds of `fn`, starting at round `first`: the time the
// kernel ran, not the time it waited for a CPU on a loaded machine.
double TimeRounds(void (*fn)(std::uint64_t), std::uint64_t first, int reps) {
  const double t0 = ThreadCpuSeconds();
  for (int i = 0; i < reps; ++i) fn(first + static_cast<std::uint64_t>(i));
  return ThreadCpuSeconds() - t0;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void BM_RuntimeOverheadKernels(benchmark::State& state) {
  g_plain_particles = plain::Create();
  g_inst_particles = instrumented::Create();
  g_plain_kernels = plain::CreateKernels();
  g_inst_kernels = instrumented::CreateKernels();
  constexpr int kRuns = 7;  // per build and kernel: the median of 7 alternating runs
  constexpr int kReps = 50;
  const size_t n = std::size(kKernels);
  std::vector<std::vector<double>> plain_s(n), inst_s(n);
  std::uint64_t round = 0;
  for (auto _ : state) {
    for (size_t k = 0; k < n; ++k) {
      const Kernel& kernel = kKernels[k];
      TimeRounds(kernel.plain, round, kReps);  // warm both copies
      TimeRounds(kernel.instrumented, round, kReps);
      for (int run = 0; run < kRuns; ++run) {
        // Both builds get the same rounds (the same work); which runs first alternates.
        if (run % 2 == 0) {
          plain_s[k].push_back(TimeRounds(kernel.plain, round, kReps));
          inst_s[k].push_back(TimeRounds(kernel.instrumented, round, kReps));
        } else {
          inst_s[k].push_back(TimeRounds(kernel.instrumented, round, kReps));
          plain_s[k].push_back(TimeRounds(kernel.plain, round, kReps));
        }
        round += kReps;
      }
      (void)mmsb::commit();
    }
  }
  if (plain::Checksum(g_plain_particles) != instrumented::Checksum(g_inst_particles) ||
      plain::KernelsChecksum(g_plain_kernels) != instrumented::KernelsChecksum(g_inst_kernels)) {
    state.SkipWithError("the instrumented kernels computed other results than the plain ones");
  }
  double log_sum = 0;
  for (size_t k = 0; k < n; ++k) {
    const double ratio = Median(inst_s[k]) / Median(plain_s[k]);
    state.counters[std::string("ratio_") + kKernels[k].name] = ratio;
    log_sum += std::log(ratio);
  }
  state.counters["ratio"] = std::exp(log_sum / static_cast<double>(n));
  plain::Destroy(g_plain_particles);
  instrumented::Destroy(g_inst_particles);
  plain::DestroyKernels(g_plain_kernels);
  instrumented::DestroyKernels(g_inst_kernels);
}
BENCHMARK(BM_RuntimeOverheadKernels)->Iterations(1)->Unit(benchmark::kMillisecond);

// Runs every e2e scenario in verify mode and counts the misses they report.
void BM_E2EVerifyMisses(benchmark::State& state) {
  const std::vector<std::string> scenarios = {MMSB_BENCH_E2E_BINARIES};
  double misses = 0, commits = 0;
  for (auto _ : state) {
    misses = commits = 0;
    for (const std::string& exe : scenarios) {
      RunResult r = Run({exe}, {"MMSB_VERIFY=1"});
      unsigned long long c = 0, d = 0, m = 0, e = 0;
      const size_t at = r.output.find("e2e: ");
      if (at == std::string::npos ||
          std::sscanf(r.output.c_str() + at,
                      "e2e: %llu commits, %llu deltas, %llu verify misses, %llu", &c, &d, &m,
                      &e) != 4) {
        state.SkipWithError(("no e2e summary from " + exe + "\n" + r.output).c_str());
        return;
      }
      misses += static_cast<double>(m);
      commits += static_cast<double>(c);
    }
  }
  state.counters["misses"] = misses;
  state.counters["commits"] = commits;
  state.counters["scenarios"] = static_cast<double>(scenarios.size());
}
BENCHMARK(BM_E2EVerifyMisses)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

MMSB_BENCH_MAIN();
