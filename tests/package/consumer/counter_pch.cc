// A user's program built with a precompiled header (counter_state.h, through CMake's
// target_precompile_headers): it must build (no "redefinition" through #pragma once, no false
// operator-new warning), compute what the plain program computes, and track Tally although
// CMake's PCH wrapper includes its header under #pragma clang system_header (the plugin blanks
// that pragma while the PCH is built: docs/PluginGuide.md, "Precompiled headers").
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
  if (mmsb::PageOf(t.get()) == nullptr) {
    std::printf("pch: Tally from the precompiled header is not a page\n");
    return 1;
  }
  for (int i = 0; i < 12; ++i) Count(*t, i % 8);
  const mmsb::Stats s = mmsb::GetStats();
  std::printf("pch: commits=%llu deltas=%llu verify_misses=%llu\n",
              (unsigned long long)s.commits, (unsigned long long)s.deltas,
              (unsigned long long)s.verify_misses);
  if (s.verify_misses != 0 || s.deltas < 12) return 1;  // each Count commits a delta
  return t->total == 12 && t->counts[3] == 2 ? 0 : 1;  // buckets 3 and 11 % 8
}
