// SmallCopy: memcpy for the few bytes a small delta moves, without the call.
//
// The derived diff copies a handful of bytes per page (the delta's bytes, the undo save), each a
// `memcpy` of a length known only at run time: a call into libc's dispatcher per copy. Up to 64
// bytes, two fixed-size copies of the largest power of two not above n, the second ending at n
// (they overlap when n is not a power of two), copy the same bytes with no call and no loop. `dst`
// and `src` must not overlap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace mmsb {

[[gnu::always_inline]] inline void SmallCopy(std::uint8_t* dst, const std::uint8_t* src,
                                             std::size_t n) {
  auto two = [&](auto width) {
    constexpr std::size_t kW = decltype(width)::value;
    std::uint8_t head[kW], tail[kW];
    std::memcpy(head, src, kW);
    std::memcpy(tail, src + n - kW, kW);
    std::memcpy(dst, head, kW);
    std::memcpy(dst + n - kW, tail, kW);
  };
  // A balanced choice (at most three tests for any n), short lengths first: a derived page's
  // change is often a byte or a word.
  if (n < 8) {
    if (n >= 4) {
      two(std::integral_constant<std::size_t, 4>{});
    } else if (n >= 2) {
      two(std::integral_constant<std::size_t, 2>{});
    } else if (n == 1) {
      *dst = *src;
    }
  } else if (n < 32) {
    if (n >= 16) {
      two(std::integral_constant<std::size_t, 16>{});
    } else {
      two(std::integral_constant<std::size_t, 8>{});
    }
  } else if (n <= 64) {
    two(std::integral_constant<std::size_t, 32>{});
  } else {
    std::memcpy(dst, src, n);
  }
}

}  // namespace mmsb
