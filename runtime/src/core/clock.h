// The runtime's two clocks, read in nanoseconds.
//
// MonotonicNanos() measures durations (commit latency, how long a commit waited for a
// transaction); it never goes backwards and has no meaning across processes. UnixNanos() is wall
// time since 1970, recorded in the log's commit records; it can jump. Both are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>

namespace mmsb {

inline std::uint64_t MonotonicNanos() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

inline std::uint64_t UnixNanos() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace mmsb
