// build_units.sh's first translation unit: a page and the transaction that writes it. The
// script edits FACTOR between builds.
#include <cstdint>

#define FACTOR 2

struct [[mmsb::page]] Counter {
  std::int64_t total;
  std::int64_t bumps;
};

[[mmsb::page]] Counter g_counter;

[[mmsb::transaction]] void Bump(std::int64_t by) {
  g_counter.total += by * FACTOR;
  ++g_counter.bumps;
}

std::int64_t Total() { return g_counter.total; }
