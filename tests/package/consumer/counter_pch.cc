// A user's program built with a precompiled header (counter_state.h, through CMake's
// target_precompile_headers): the page type comes from the PCH, and every store into it is still
// tracked. Exits non-zero if anything is off.
#include <cstdio>
#include <memory>

#include "counter_state.h"
#include "mmsb/mmsb.h"

[[mmsb::transaction]] void Count(Tally& t, int bucket) {
  t.counts[bucket] += 1;
  t.total += 1;
}

int main() {
  auto t = std::make_unique<Tally>();
  for (int i = 0; i < 12; ++i) Count(*t, i % 8);
  const mmsb::Stats s = mmsb::GetStats();
  std::printf("pch: commits=%llu deltas=%llu verify_misses=%llu\n",
              (unsigned long long)s.commits, (unsigned long long)s.deltas,
              (unsigned long long)s.verify_misses);
  if (s.commits != 12 || s.deltas < 12 || s.verify_misses != 0) return 1;
  return t->total == 12 && t->counts[3] == 1 ? 0 : 1;
}
