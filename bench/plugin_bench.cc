// Plugin benchmarks (bench/run plugin). Figures are same-run ratios:
//   plugin.compile_overhead_plain   CPU time of clang++-19 compiling project sources that use no
//                                   page types, with the plugin / without
//   plugin.compile_overhead_pages   the same for a TU that uses page types heavily, at -O2
//   plugin.runtime_overhead         examples/particles' step loop built with the plugin / without
//   plugin.runtime_overhead_dense   a dense integration loop (range-marked by the plugin), same
//   plugin.verify_misses            tracked-path misses over the e2e suite in verify mode
// Compile times are the child's CPU time (user + system, from wait4), so other load on the
// machine disturbs them little; plain and plugin compiles alternate.
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mmsb/mmsb.h"

#include "bench_main.h"
#include "benchmark/benchmark.h"
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
