// A user's program built with a precompiled header (counter_state.h, through CMake's
// target_precompile_headers): it must build (no "redefinition" through #pragma once, no false
// operator-new warning) and compute what the plain program computes. LIMIT (docs/API.md,
// "Limits"): CMake's PCH wrapper makes the header a system header, so Tally cannot be
// instrumented and nothing is tracked; the build warns (-Wmmsb-unrewritable, checked by run.sh).
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
  if (s.verify_misses != 0) return 1;
  return t->total == 12 && t->counts[3] == 2 ? 0 : 1;  // buckets 3 and 11 % 8
}
