// How much page memory a reader of an untrusted log or checkpoint may allocate.
#pragma once

#include <unistd.h>

#include <cstdint>

namespace mmsb::log {

// `requested`, or half of physical memory when it is 0.
inline std::uint64_t EffectiveMemoryLimit(std::uint64_t requested) {
  if (requested != 0) return requested;
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return std::uint64_t{8} << 30;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size) / 2;
}

}  // namespace mmsb::log
