// The particles step loop, compiled twice into plugin_bench: with the MMSB plugin (every store
// goes through the write barrier, the state lives in a page) and without it (plain stores into
// plain heap memory). MMSB_BENCH_VARIANT names the namespace of each copy.
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

float Checksum(const Particles* p) {
  float s = 0;
  for (int i = 0; i < kParticles; ++i) s += p->x[i] + p->v[i];
  return s + static_cast<float>(p->step);
}

}  // namespace MMSB_BENCH_VARIANT
