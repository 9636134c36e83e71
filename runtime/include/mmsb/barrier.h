// The write barrier: how a store into page storage becomes visible to commit.
//
// mmsb::rt::w(p) marks the granule(s) holding *p as touched in a shadow byte map and returns p,
// so instrumented code reads `*::mmsb::rt::w(&x.f) = v`. It is inline: a subtraction, one compare,
// a shift and a plain byte store for addresses in the heap arena; no atomic RMW, no lock, no call.
// Addresses outside the arena take one more compare for the static-page range and are otherwise
// ignored, so passing an untracked object is harmless.
//
// Marks are conservative (a granule is 64 bytes); commit diffs touched granules against the
// page's last-commit image, so deltas stay exact.
//
// Thread-safety: any number of threads may run barriers between commits. Concurrent marks of one
// granule store the same value into the same byte, the card-marking idiom of garbage collectors;
// the store is a plain byte store through a distinct enum type, so type-based alias analysis knows
// it cannot alias user data or the region globals (they stay in registers across a loop). Under
// ThreadSanitizer the store is a relaxed atomic instead, so TSan checks everything around it.
// Barriers must not run concurrently with commit() on the same pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mmsb/types.h"

namespace mmsb::rt {

// One tracked address range and its shadow map (one byte per granule). Published by the runtime
// at start()/stop() and when static pages register; read by every barrier.
struct ShadowRegion {
  std::uintptr_t base = 0;
  std::uintptr_t span = 0;  // 0: empty region, every address misses
  std::uint8_t* shadow = nullptr;
};

extern ShadowRegion g_heap_region;
extern ShadowRegion g_static_region;

namespace detail {

// The shadow byte's access type. Not a character type, so its stores do not alias other objects.
enum class ShadowByte : std::uint8_t { kClean = 0, kTouched = 1 };

#if defined(__SANITIZE_THREAD__)
#define MMSB_BARRIER_ATOMIC_MARK 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MMSB_BARRIER_ATOMIC_MARK 1
#endif
#endif

inline void MarkOne(std::uint8_t* shadow, std::uintptr_t off) noexcept {
#ifdef MMSB_BARRIER_ATOMIC_MARK
  __atomic_store_n(&shadow[off >> kGranuleShift], std::uint8_t{1}, __ATOMIC_RELAXED);
#else
  *reinterpret_cast<ShadowByte*>(shadow + (off >> kGranuleShift)) = ShadowByte::kTouched;
#endif
}

// Marks granules of [off, off+n) in `r`, clipped to the region.
void MarkSpanSlow(const ShadowRegion& r, std::uintptr_t off, std::size_t n) noexcept;

template <std::size_t N>
inline void MarkFixed(const ShadowRegion& r, std::uintptr_t off) noexcept {
  if constexpr (N == 0) {
    return;
  } else if constexpr (N <= kGranuleSize) {
    MarkOne(r.shadow, off);
    // An object no larger than its natural alignment never straddles a granule.
    if constexpr (N > 1) {
      if (((off ^ (off + N - 1)) >> kGranuleShift) != 0) MarkOne(r.shadow, off + N - 1);
    }
  } else {
    MarkSpanSlow(r, off, N);
  }
}

}  // namespace detail

// Marks the bytes of *p as written and returns p.
template <class T>
[[gnu::always_inline]] inline T* w(T* p) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t heap_off = a - g_heap_region.base;
  if (heap_off < g_heap_region.span) {
    detail::MarkFixed<sizeof(T)>(g_heap_region, heap_off);
  } else {
    const std::uintptr_t static_off = a - g_static_region.base;
    if (static_off < g_static_region.span)
      detail::MarkFixed<sizeof(T)>(g_static_region, static_off);
  }
  return p;
}

// Range form: marks [p, p+n) as written. For memcpy/memset-like stores and escaped ranges.
inline void MarkRange(const void* p, std::size_t n) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t heap_off = a - g_heap_region.base;
  if (heap_off < g_heap_region.span) {
    detail::MarkSpanSlow(g_heap_region, heap_off, n);
  } else {
    const std::uintptr_t static_off = a - g_static_region.base;
    if (static_off < g_static_region.span) detail::MarkSpanSlow(g_static_region, static_off, n);
  }
}

// Returns p after marking [p, p+n); handy in expressions.
template <class T>
inline T* w(T* p, std::size_t n) noexcept {
  MarkRange(p, n);
  return p;
}

// True when p lies in tracked page storage (heap arena or static page range).
inline bool IsTracked(const void* p) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  return a - g_heap_region.base < g_heap_region.span ||
         a - g_static_region.base < g_static_region.span;
}

}  // namespace mmsb::rt
