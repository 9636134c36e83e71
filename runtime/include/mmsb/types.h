// Basic identifiers shared by every MMSB component.
#pragma once

#include <cstdint>

namespace mmsb {

// Identifies a page for the lifetime of a process and in its log. 0 is never a valid id.
// Ids are never reused within one run of the bus.
using PageId = std::uint64_t;
inline constexpr PageId kInvalidPageId = 0;

// Commit counter. Epoch 0 is the state before the first commit; commit N produces epoch N.
using Epoch = std::uint64_t;

// Where a page's authoritative bytes live.
enum class Location : std::uint8_t { kCpu = 0, kGpu = 1, kUnified = 2 };

const char* LocationName(Location loc);

// Change-tracking granule: one shadow byte covers this many bytes of page storage.
inline constexpr unsigned kGranuleShift = 6;
inline constexpr std::uint64_t kGranuleSize = std::uint64_t{1} << kGranuleShift;

// The number of granules that cover `bytes` bytes (the last one may be partial): the length of a
// page's shadow, of a dense delta's mask, of a device diff's granule range.
constexpr std::uint64_t GranuleCount(std::uint64_t bytes) {
  return (bytes + kGranuleSize - 1) >> kGranuleShift;
}

}  // namespace mmsb
