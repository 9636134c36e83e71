// A translation unit that uses page types heavily, for plugin.compile_overhead_pages: several
// page types and static pages, stores of every form in loops, member functions, templates,
// lambdas, library calls on page storage. plugin_bench compiles it at -O2 with and without the
// plugin.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

namespace heavy {

struct Vec2 {
  float x, y;
};

struct [[mmsb::page]] Particles {
  Vec2 pos[2048];
  Vec2 vel[2048];
  float mass[2048];
  std::uint32_t alive[64];
  std::uint64_t step;
  void Integrate(float dt) {
    for (int i = 0; i < 2048; ++i) {
      vel[i].y -= 9.81f * dt;
      pos[i].x += vel[i].x * dt;
      pos[i].y += vel[i].y * dt;
      if (pos[i].y < 0) {
        pos[i].y = -pos[i].y;
        vel[i].y *= -0.9f;
      }
    }
    ++step;
  }
};

struct [[mmsb::page]] Grid {
  std::int32_t cells[64][64];
  std::array<std::int32_t, 64> row_sums;
  std::int64_t total;
  void Clear() { std::memset(cells, 0, sizeof cells); }
};

struct [[mmsb::page]] Stats {
  double mean, var, min, max;
  std::uint64_t samples;
  std::int32_t histogram[32];
  char label[32];
};

template <class T>
struct [[mmsb::page]] Ring {
  T items[256];
  std::uint32_t head, tail;
  void Push(const T& v) {
    items[head++ % 256] = v;
    if (head - tail > 256) ++tail;
  }
};

[[mmsb::page]] Particles g_particles;
[[mmsb::page]] Grid g_grid;
[[mmsb::page]] Stats g_stats;
[[mmsb::page]] Ring<float> g_ring;
[[mmsb::page]] static float g_weights[512];

template <class P>
void Bin(const P& particles, Grid& grid) {
  grid.Clear();
  for (int i = 0; i < 2048; ++i) {
    int cx = std::clamp(static_cast<int>(particles.pos[i].x), 0, 63);
    int cy = std::clamp(static_cast<int>(particles.pos[i].y), 0, 63);
    grid.cells[cy][cx] += 1;
  }
  for (int r = 0; r < 64; ++r) {
    grid.row_sums[r] = std::accumulate(std::begin(grid.cells[r]), std::end(grid.cells[r]), 0);
  }
  grid.total = std::accumulate(grid.row_sums.begin(), grid.row_sums.end(), std::int64_t{0});
}

void Summarise(const Particles& p, Stats& s) {
  s.samples = 0;
  s.mean = 0;
  s.min = 1e30;
  s.max = -1e30;
  std::fill(std::begin(s.histogram), std::end(s.histogram), 0);
  for (int i = 0; i < 2048; ++i) {
    const double speed = std::sqrt(p.vel[i].x * p.vel[i].x + p.vel[i].y * p.vel[i].y);
    ++s.samples;
    s.mean += speed;
    s.min = std::min(s.min, speed);
    s.max = std::max(s.max, speed);
    s.histogram[std::min(31, static_cast<int>(speed))]++;
  }
  s.mean /= static_cast<double>(s.samples);
  s.var = 0;
  for (int i = 0; i < 2048; ++i) {
    const double d = std::sqrt(p.vel[i].x * p.vel[i].x + p.vel[i].y * p.vel[i].y) - s.mean;
    s.var += d * d;
  }
  std::snprintf(s.label, sizeof s.label, "step %llu", static_cast<unsigned long long>(p.step));
}

void Reweight() {
  for (float& w : g_weights) w *= 0.5f;
  float* w = g_weights;
  for (int i = 0; i < 512; i += 2) w[i] += 1.0f;
  auto [head, tail] = std::tie(g_ring.head, g_ring.tail);
  head = tail;
}

[[mmsb::transaction]] void Tick(float dt) {
  g_particles.Integrate(dt);
  Bin(g_particles, g_grid);
  Summarise(g_particles, g_stats);
  g_ring.Push(static_cast<float>(g_stats.mean));
  std::for_each(std::begin(g_particles.alive), std::end(g_particles.alive),
                [](std::uint32_t& a) { a |= 1u; });
  Reweight();
}

std::vector<std::string> Report() {
  std::vector<std::string> out;
  out.push_back(std::string(g_stats.label));
  for (int b = 0; b < 32; ++b) out.push_back(std::to_string(g_stats.histogram[b]));
  return out;
}

}  // namespace heavy
