// Two builds of one particle step loop (particles_step.cc): `instrumented` (with the plugin) and
// `plain` (without).
#pragma once

inline constexpr int kParticles = 4096;
inline constexpr int kBands = 64;

namespace instrumented {
struct Particles;
Particles* Create();
void Destroy(Particles* p);
void Step(Particles* p, float dt);
void StepBand(Particles* p, float dt);
float Checksum(const Particles* p);
}  // namespace instrumented

namespace plain {
struct Particles;
Particles* Create();
void Destroy(Particles* p);
void Step(Particles* p, float dt);
void StepBand(Particles* p, float dt);
float Checksum(const Particles* p);
}  // namespace plain
