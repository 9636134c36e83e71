// particles: the end-to-end demo's simulation (examples/particles/demo.sh drives it).
//
// Its state is two [[mmsb::page]] variables, compiled with the MMSB plugin: every store below is
// rewritten into a barriered store, and every Step() ends an epoch. The summary page is derived
// from the particles through the dependency graph, so it is recomputed inside each commit and its
// changes are deltas of the same epoch. With a CUDA device the particles page is mirrored on the
// GPU; without one the demo says so and carries on.
//
//   particles --log DIR --steps N [--resume] [--checkpoint] [--dump DIR] [--no-gpu]
//
// --resume restores the static pages from the log's latest state (matched by their mangled names)
// and continues the log. --dump writes every page's bytes, named by log page id, for comparison
// with `mmsb replay --out`. With MMSB_REPLICATE=nats://host:port/stream (and MMSB built with
// replication) every epoch is also published to that JetStream stream, for `mmsb follow`.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "mmsb/kernels.h"
#include "mmsb/mmsb.h"
#if MMSB_WITH_REPLICATION
#include "mmsb/replication.h"
#endif

constexpr int kN = 4096;
constexpr int kBands = 64;  // each step moves one particle in 64: ~1.6% of the state changes

struct [[mmsb::page]] Particles {
  float x[kN];
  float y[kN];
  float vx[kN];
  float vy[kN];
  std::uint64_t step;
};

struct [[mmsb::page]] Summary {
  float cx, cy;           // centre of mass
  float kinetic;          // total kinetic energy
  std::uint32_t resting;  // particles slower than 0.01
  std::uint64_t step;
};

[[mmsb::page]] Particles g_particles;
[[mmsb::page]] Summary g_summary;

// Friction. The demo's second build changes only this function (PARTICLES_VARIANT=2).
void Damp(int i) {
#if PARTICLES_VARIANT == 2
  g_particles.vx[i] *= 0.95f;
  g_particles.vy[i] *= 0.95f;
#else
  g_particles.vx[i] *= 0.999f;
  g_particles.vy[i] *= 0.999f;
#endif
}

void Seed() {
  std::uint32_t s = 12345;
  auto rnd = [&s] {
    s = s * 1664525u + 1013904223u;
    return static_cast<float>(s >> 8) / 16777216.0f;
  };
  for (int i = 0; i < kN; ++i) {
    g_particles.x[i] = rnd();
    g_particles.y[i] = rnd();
    g_particles.vx[i] = rnd() - 0.5f;
    g_particles.vy[i] = rnd() - 0.5f;
  }
}

// One epoch: move one band of particles, bounce them off the walls of the unit box.
[[mmsb::transaction]] void Step(float dt) {
  const int band = static_cast<int>(g_particles.step % kBands);
  for (int i = band; i < kN; i += kBands) {
    g_particles.x[i] += g_particles.vx[i] * dt;
    g_particles.y[i] += g_particles.vy[i] * dt;
    if (g_particles.x[i] < 0 || g_particles.x[i] > 1) g_particles.vx[i] = -g_particles.vx[i];
    if (g_particles.y[i] < 0 || g_particles.y[i] > 1) g_particles.vy[i] = -g_particles.vy[i];
    Damp(i);
  }
  ++g_particles.step;
}

// The summary's recompute function: runs inside commit() whenever the particles changed.
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

int Fail(const char* what, const mmsb::Status& s) {
  std::fprintf(stderr, "particles: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

int main(int argc, char** argv) {
  std::string log_dir, dump_dir;
  int steps = 100;
  bool resume = false, checkpoint = false, gpu = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--log" && i + 1 < argc) log_dir = argv[++i];
    else if (a == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (a == "--dump" && i + 1 < argc) dump_dir = argv[++i];
    else if (a == "--resume") resume = true;
    else if (a == "--checkpoint") checkpoint = true;
    else if (a == "--no-gpu") gpu = false;
    else {
      std::fprintf(stderr, "usage: particles --log DIR [--steps N] [--resume] [--checkpoint] [--dump DIR] [--no-gpu]\n");
      return 2;
    }
  }
  if (log_dir.empty()) {
    std::fprintf(stderr, "particles: --log DIR is required\n");
    return 2;
  }
  // The static pages registered before main(); the bus started on first use. Attach the log
  // first, so it holds every page from the first commit on.
  auto log = mmsb::AttachLog(log_dir);
  if (!log.ok()) return Fail("opening the log", log.status());
#if MMSB_WITH_REPLICATION
  auto replicator = mmsb::ReplicateFromEnv(*log);
  if (!replicator.ok()) return Fail("replicating", replicator.status());
  if (*replicator) std::printf("replicating to %s\n", std::getenv("MMSB_REPLICATE"));
#endif
  if (resume) {
    auto r = mmsb::RestoreStaticPages(log_dir);
    if (!r.ok()) return Fail("restoring from the log", r.status());
    std::printf("restored %zu static page(s) from epoch %llu; the simulation continues at step %llu\n",
                r->restored.size(), static_cast<unsigned long long>(r->epoch),
                static_cast<unsigned long long>(g_particles.step));
  } else {
    Seed();
  }
  mmsb::Page* particles = mmsb::PageOf(&g_particles);
  mmsb::Page* summary = mmsb::PageOf(&g_summary);
  if (particles == nullptr || summary == nullptr) {
    std::fprintf(stderr, "particles: the state is not in MMSB pages: was this compiled with the MMSB plugin?\n");
    return 1;
  }
  const mmsb::PageId parent[] = {particles->id()};
  if (auto s = mmsb::AddUserEdges(parent, summary->id(), Summarize); !s.ok()) return Fail("adding the summary edge", s);

  if (gpu) {
    auto backend = mmsb::MakeCudaBackend();
    if (!backend.ok()) {
      std::printf("no CUDA device (%s): running without a GPU mirror\n", backend.status().message().c_str());
    } else if (auto s = mmsb::AttachDevice(std::move(*backend)); !s.ok()) {
      return Fail("attaching the GPU", s);
    } else if (auto m = mmsb::Mirror(particles); !m.ok()) {
      return Fail("mirroring the particles on the GPU", m.status());
    } else {
      std::printf("particles mirrored on %s\n", mmsb::AttachedDevice()->info().name.c_str());
    }
  }

  for (int i = 0; i < steps; ++i) Step(0.01f);
  if (checkpoint) {
    auto e = (*log)->Checkpoint();
    if (!e.ok()) return Fail("checkpoint", e.status());
  }
  const mmsb::Stats st = mmsb::GetStats();
  std::printf("ran %d steps: log epoch %llu, %llu deltas (%llu bytes), summary step %llu, kinetic energy %.4f\n",
              steps, static_cast<unsigned long long>((*log)->LogEpoch(mmsb::current_epoch())),
              static_cast<unsigned long long>(st.deltas), static_cast<unsigned long long>(st.delta_bytes),
              static_cast<unsigned long long>(g_summary.step), g_summary.kinetic);
  if (!dump_dir.empty()) {
    std::filesystem::create_directories(dump_dir);
    for (const mmsb::PageInfo& info : mmsb::ListPages()) {
      const mmsb::Page* p = mmsb::FindPage(info.id);
      std::ofstream out(dump_dir + "/" + std::to_string((*log)->LogPageId(info.id)) + ".bin", std::ios::binary);
      out.write(reinterpret_cast<const char*>(p->data()), static_cast<std::streamsize>(p->size()));
    }
  }
#if MMSB_WITH_REPLICATION
  if (*replicator) {
    if (auto s = (*replicator)->Close(); !s.ok()) return Fail("finishing replication", s);
  }
#endif
  if (auto s = (*log)->Close(); !s.ok()) return Fail("closing the log", s);
  return 0;
}
