// Scans of the barrier's shadow byte map shared by the page registry and the commit collector.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mmsb/types.h"

namespace mmsb {

// True when any byte of shadow[0, n) is set. Shadow spans of pooled pages are 8-byte aligned.
inline bool AnyTouched(const std::uint8_t* shadow, std::size_t n) {
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    std::uint64_t a, b, c, d;
    std::memcpy(&a, shadow + i, 8);
    std::memcpy(&b, shadow + i + 8, 8);
    std::memcpy(&c, shadow + i + 16, 8);
    std::memcpy(&d, shadow + i + 24, 8);
    if ((a | b | c | d) != 0) return true;
  }
  for (; i < n; ++i) {
    if (shadow[i]) return true;
  }
  return false;
}

}  // namespace mmsb
