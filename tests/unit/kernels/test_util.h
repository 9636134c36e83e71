// Helpers shared by the kernel and device tests: random pages and changes, and batches.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "mmsb/delta.h"

namespace mmsb::testing {

using Bytes = std::vector<std::uint8_t>;

inline Bytes RandomBytes(std::mt19937_64& rng, std::size_t n) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

// A copy of `b` with `writes` random writes: single bytes, short runs, long runs (crossing
// granules), and stores of the value already there.
inline Bytes Mutate(std::mt19937_64& rng, Bytes b, int writes) {
  for (int i = 0; i < writes && !b.empty(); ++i) {
    const std::size_t off = rng() % b.size();
    const std::size_t kind = rng() % 4;
    const std::size_t len = kind == 0   ? 1
                            : kind == 1 ? 1 + rng() % 8
                            : kind == 2 ? 1 + rng() % 300
                                        : 0;
    for (std::size_t j = off; j < std::min(b.size(), off + len); ++j)
      b[j] = static_cast<std::uint8_t>(rng());
  }
  return b;
}

// Every other byte changed: the densest pattern, which Diff encodes as a dense delta.
inline Bytes Scatter(std::mt19937_64& rng, Bytes b) {
  for (std::size_t i = rng() % 2; i < b.size(); i += 2)
    b[i] = static_cast<std::uint8_t>(b[i] + 1 + rng() % 255);
  return b;
}

}  // namespace mmsb::testing
