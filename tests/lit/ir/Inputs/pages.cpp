// Page writers for page-types.test.
#include <stdint.h>
namespace sim {
struct [[mmsb::page]] Particles { float x[64]; float v[64]; uint64_t step; void Reset() { step = 0; } };
}
struct [[mmsb::page]] Counter { int n; };
[[mmsb::page]] sim::Particles g_particles;
[[mmsb::page]] Counter g_counter;
inline void Bump(float dt, int i) { g_particles.x[i] += g_particles.v[i] * dt; }
void Step(float dt) { for (int i = 0; i < 64; ++i) Bump(dt, i); g_particles.step++; }
void Count() { g_counter.n++; }
float Read() { return g_particles.x[0]; }
void Reset(sim::Particles* p) { p->Reset(); }
struct Holder { Holder() { g_counter.n = 5; } };
int Twice() { Count(); Count(); return 0; }
Holder h;
