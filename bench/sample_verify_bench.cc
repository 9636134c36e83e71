// Sampled verification (docs/Runtime.md, "Sampled verification"; bench/run fidelity):
//   fidelity.sample_verify_overhead  examples/particles' step loop (one band of 64 particles moved
//                                    per step, a transaction-sized commit per step, the summary
//                                    page recomputed through a user edge, a log attached) with the
//                                    default sampling / with sampling off, in CPU time of the
//                                    stepping thread (the commit runs on it). The log uses
//                                    Durability::kNone so that fsync waits do not hide the cost.
//   fidelity.sample_detect_commits   the worst case, over every page of a mixed set and every
//                                    phase of the rotation, of the commits from a persistent
//                                    unmarked store until sampled verification reports it.
// The step is the example's, written with the runtime's store-then-mark barrier (rt::ws) on a
// heap page instead of compiled by the plugin, so the bench builds without it.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "mmsb/mmsb.h"

#include "bench_main.h"

namespace {

constexpr int kN = 4096;
constexpr int kBands = 64;

struct Particles {
  float x[kN];
  float y[kN];
  float vx[kN];
  float vy[kN];
  std::uint64_t step;
};

struct Summary {
  float cx, cy;
  float kinetic;
  std::uint32_t resting;
  std::uint64_t step;
};

mmsb::Status Summarize(std::span<const mmsb::Page* const> parents, mmsb::Page& child) {
  const auto& p = *reinterpret_cast<const Particles*>(parents[0]->data());
  auto& s = *reinterpret_cast<Summary*>(child.data());
  double cx = 0, cy = 0, kinetic = 0;
  std::uint32_t resting = 0;
  for (int i = 0; i < kN; ++i) {
    cx += p.x[i];
    cy += p.y[i];
    const double v2 = double(p.vx[i]) * p.vx[i] + double(p.vy[i]) * p.vy[i];
    kinetic += 0.5 * v2;
    resting += v2 < 1e-4;
  }
  s.cx = static_cast<float>(cx / kN);
  s.cy = static_cast<float>(cy / kN);
  s.kinetic = static_cast<float>(kinetic);
  s.resting = resting;
  s.step = p.step;
  return mmsb::Status::Ok();
}

void Step(Particles& g, float dt) {
  using mmsb::rt::ws;
  const int band = static_cast<int>(g.step % kBands);
  for (int i = band; i < kN; i += kBands) {
    ws(&g.x[i]) += g.vx[i] * dt;
    ws(&g.y[i]) += g.vy[i] * dt;
    if (g.x[i] < 0 || g.x[i] > 1) ws(&g.vx[i]) = -g.vx[i];
    if (g.y[i] < 0 || g.y[i] > 1) ws(&g.vy[i]) = -g.vy[i];
    ws(&g.vx[i]) *= 0.999f;
    ws(&g.vy[i]) *= 0.999f;
  }
  ws(&g.step) += 1;
}

void ParticlesLoop(benchmark::State& state, int sample_verify) {
  mmsb::stop();
  mmsb::Options o;
  o.arena_bytes = std::size_t{1} << 30;
  o.sample_verify = sample_verify;
  if (!mmsb::start(o).ok()) {
    state.SkipWithError("start failed");
    return;
  }
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("mmsb_sample_bench_" + std::to_string(::getpid())))
          .string();
  std::filesystem::remove_all(dir);
  mmsb::LogOptions lo;
  lo.durability = mmsb::Durability::kNone;
  auto log = mmsb::AttachLog(dir, lo);
  auto particles = mmsb::CreatePage(sizeof(Particles));
  auto summary = mmsb::CreatePage(sizeof(Summary));
  if (!log.ok() || !particles.ok() || !summary.ok()) {
    state.SkipWithError("setup failed");
    mmsb::stop();
    return;
  }
  const mmsb::PageId parent = (*particles)->id();
  if (!mmsb::AddUserEdges({&parent, 1}, (*summary)->id(), Summarize).ok()) {
    state.SkipWithError("edge failed");
    mmsb::stop();
    return;
  }
  auto& g = *reinterpret_cast<Particles*>((*particles)->data());
  std::uint32_t s = 12345;
  for (int i = 0; i < kN; ++i) {
    s = s * 1664525u + 1013904223u;
    g.x[i] = static_cast<float>(s >> 8) / 16777216.0f;
    g.y[i] = 1.0f - g.x[i];
    g.vx[i] = g.x[i] - 0.5f;
    g.vy[i] = 0.5f - g.y[i];
  }
  (void)mmsb::commit();
  for (auto _ : state) {
    Step(g, 0.01f);
    auto e = mmsb::commit();
    if (!e.ok()) {
      state.SkipWithError(e.status().ToString().c_str());
      break;
    }
  }
  if (mmsb::GetStats().verify_misses != 0) state.SkipWithError("the step loop has misses");
  state.counters["sampled_pages"] = static_cast<double>(mmsb::GetStats().sampled_pages);
  (void)(*log)->Close();
  mmsb::stop();
  std::filesystem::remove_all(dir);
}

void BM_ParticlesSampled(benchmark::State& state) {
  ParticlesLoop(state, mmsb::Options::kDefaultSampleVerify);
}
BENCHMARK(BM_ParticlesSampled)->Unit(benchmark::kMicrosecond);

void BM_ParticlesUnsampled(benchmark::State& state) { ParticlesLoop(state, 0); }
BENCHMARK(BM_ParticlesUnsampled)->Unit(benchmark::kMicrosecond);

// Pages of two sizes, none larger than a slice (a page larger than the slice's budget fills a
// slice alone and shortens the rotation); for each page and each of several rotation phases, one
// unmarked store, then commits until it is reported.
void BM_SampleDetectCommits(benchmark::State& state) {
  double worst = 0;
  for (auto _ : state) {
    mmsb::stop();
    int reported = 0;
    mmsb::Options o;
    o.arena_bytes = std::size_t{1} << 30;
    o.on_verify_miss = [&](const mmsb::VerifyMiss&) { ++reported; };
    if (!mmsb::start(o).ok()) {
      state.SkipWithError("start failed");
      return;
    }
    std::vector<mmsb::Page*> pages;
    for (int i = 0; i < 200; ++i) {
      const std::size_t size = i % 7 == 0 ? 16384 : 4096;
      auto p = mmsb::CreatePage(size);
      if (!p.ok()) {
        state.SkipWithError("create failed");
        return;
      }
      pages.push_back(*p);
    }
    (void)mmsb::commit();
    worst = 0;
    for (int phase = 0; phase < 5; ++phase) {
      for (mmsb::Page* target : pages) {
        reported = 0;
        target->data()[target->size() / 2] ^= 0xff;  // no barrier
        int commits = 0;
        while (reported == 0 && commits < 100000) {
          (void)mmsb::commit();
          ++commits;
        }
        worst = std::max(worst, static_cast<double>(commits));
      }
      for (int k = 0; k < phase * 7 + 1; ++k) (void)mmsb::commit();  // shift the rotation
    }
    mmsb::stop();
  }
  state.counters["commits"] = worst;
}
BENCHMARK(BM_SampleDetectCommits)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

MMSB_BENCH_MAIN();
