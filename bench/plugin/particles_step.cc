// Particle step loops, compiled twice into plugin_bench: with the MMSB plugin (the state lives in
// a page and every store is instrumented) and without it (plain stores into plain heap memory).
// MMSB_BENCH_VARIANT names the namespace of each copy.
//   Step      a dense integration loop (the plugin marks the arrays once per loop);
//   StepBand  examples/particles' step loop as it is written there: one band of particles in 64
//             per step, walls, friction in a separate function (a barrier per store).
#include <cstdint>

#include "particles_step.h"

namespace MMSB_BENCH_VARIANT {

struct [[mmsb::page]] Particles {
  float x[kParticles];
  float v[kParticles];
  float mass[kParticles];
  std::uint64_t step;
};

Particles* Create() {
  auto* p = new Particles();
  for (int i = 0; i < kParticles; ++i) {
    p->x[i] = static_cast<float>(i % 97) * 0.01f;
    p->v[i] = 0;
    p->mass[i] = 1.0f + static_cast<float>(i % 7);
  }
  return p;
}

void Destroy(Particles* p) { delete p; }

// A damped spring per particle, semi-implicit Euler.
void Step(Particles* p, float dt) {
  for (int i = 0; i < kParticles; ++i) {
    const float a = (-4.0f * p->x[i] - 0.1f * p->v[i]) / p->mass[i];
    p->v[i] += a * dt;
    p->x[i] += p->v[i] * dt;
  }
  ++p->step;
}

// As examples/particles/particles.cc: x/y/vx/vy are laid over x, v and mass here.
void Damp(Particles* p, int i) {
  p->v[i] *= 0.999f;
  p->mass[i] *= 0.999f;
}

void StepBand(Particles* p, float dt) {
  float* y = p->x + kParticles / 2;  // the second half of x plays y, mass plays vy
  const int band = static_cast<int>(p->step % kBands);
  for (int i = band; i < kParticles / 2; i += kBands) {
    p->x[i] += p->v[i] * dt;
    y[i] += p->mass[i] * dt;
    if (p->x[i] < 0 || p->x[i] > 1) p->v[i] = -p->v[i];
    if (y[i] < 0 || y[i] > 1) p->mass[i] = -p->mass[i];
    Damp(p, i);
  }
  ++p->step;
}

float Checksum(const Particles* p) {
  float s = 0;
  for (int i = 0; i < kParticles; ++i) s += p->x[i] + p->v[i];
  return s + static_cast<float>(p->step);
}

}  // namespace MMSB_BENCH_VARIANT
