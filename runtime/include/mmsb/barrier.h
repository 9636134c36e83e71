// The write barrier: how a store into page storage becomes visible to commit.
//
// Two forms, both inline: a subtraction, one compare, a shift and a plain byte store; no atomic
// RMW, no lock, no call. One range covers all tracked storage: the heap arena and the static-page
// window (the program image) are placed side by side at start(), so one compare tells a tracked
// address from any other. An address outside it is ignored, so passing an untracked object is
// harmless.
//   - Store, then mark: `::mmsb::rt::ws(&(lhs)) = rhs` (and `+=`, `++`, ...) stores first and
//     marks the granule(s) after. The rewriter uses it for every store it sees (assignment,
//     compound assignment, increment and decrement).
//   - Mark first: `*::mmsb::rt::w(&x)` / `w(p)->f` / MarkRange mark, then the caller writes (member
//     calls, library calls, loop marks, bit-fields, atomics): used where the write happens inside
//     code the barrier cannot follow.
//
// Marks are conservative (a granule is 64 bytes); commit diffs touched granules against the
// page's last-commit image (its twin), so deltas stay exact.
//
// Why store-then-mark (docs/Runtime.md, "The commit protocol"): a commit takes each shadow byte
// clean with an atomic exchange *before* it reads the granule, and updates the twin only from the
// bytes it read. If the exchange sees a mark, the store before it is visible to the read; if it
// does not, the mark lands after the exchange and the next commit diffs the granule. Either way
// the store is logged no later than the first commit whose cut it happens-before. A mark-first
// write is covered the same way when it happens-before the cut, or runs inside a transaction (a
// commit waits for transactions that began before its cut, see mmsb/instrument.h); a mark-first
// write outside any transaction that races with a commit on another thread may land after that
// commit's read of the granule and is then caught only if something marks the granule again.
//
// Thread-safety: any number of threads may run barriers at any time, including during commit().
// Concurrent marks of one granule store the same value into the same byte, the card-marking idiom
// of garbage collectors; the store is a plain byte store through a distinct enum type, so
// type-based alias analysis knows it cannot alias user data or the region globals (they stay in
// registers across a loop). The store-then-mark form orders the mark after the data store with an
// empty, read-only asm statement that reads the stored object and yields the mark's address (on
// x86 the hardware keeps stores in order; elsewhere the mark is a release store): see MarkAfter.
// Under ThreadSanitizer every mark is a release store, so TSan checks the protocol around it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "mmsb/types.h"

namespace mmsb::rt {

// One tracked address range and its shadow map (one byte per granule). Published by the runtime
// at start() and cleared at stop(), never moved in between: a barrier on any thread may use it at
// any time while the bus runs.
struct ShadowRegion {
  std::uintptr_t base = 0;
  std::uintptr_t span = 0;  // 0: empty region, every address misses
  std::uint8_t* shadow = nullptr;
};

// The one range every barrier checks: the hull of the heap arena and the static window, with one
// shadow map over all of it (the arena is reserved next to the program image, so the hull is
// small; the bytes between them, if any, are shadowed too and their marks never read). When the
// two cannot be placed close, the range is the arena alone and static pages are diffed in full
// (docs/Runtime.md, "Regions"). Its base and span are multiples of the granule size (64):
// barriers compare a granule index with `span >> 6`, and test an object's alignment on its offset
// from the base (Arena::Create rounds the range out to whole granules).
extern ShadowRegion g_region;
// The static window inside g_region (its shadow is a sub-range of g_region's), or empty when
// g_region does not cover it. The runtime's record: barriers never read it.
extern ShadowRegion g_static_region;

// Publishes `v` in `r` for barriers on other threads: the span goes to 0 first and to its value
// last, so a barrier never pairs a new span with an old base or shadow.
inline void PublishRegion(ShadowRegion& r, const ShadowRegion& v) noexcept {
  __atomic_store_n(&r.span, std::uintptr_t{0}, __ATOMIC_RELEASE);
  __atomic_store_n(&r.shadow, v.shadow, __ATOMIC_RELEASE);
  __atomic_store_n(&r.base, v.base, __ATOMIC_RELEASE);
  __atomic_store_n(&r.span, v.span, __ATOMIC_RELEASE);
}

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
  __atomic_store_n(&shadow[off >> kGranuleShift], std::uint8_t{1}, __ATOMIC_RELEASE);
#else
  *reinterpret_cast<ShadowByte*>(shadow + (off >> kGranuleShift)) = ShadowByte::kTouched;
#endif
}

// Marks granules of [off, off+n) in `r`, clipped to the region.
void MarkSpanSlow(const ShadowRegion& r, std::uintptr_t off, std::size_t n) noexcept;

// Marks shadow byte `g` (of `shadow`) after a store to `*obj`: the mark cannot become visible
// before the store (docs/PluginGuide.md, "The store-then-mark barrier's code", states the
// invariant).
//
// On x86 the hardware keeps stores in order, so only the compiler must be kept from moving the
// mark above the store (type-based alias analysis says they cannot alias) and from dropping it.
// The asm emits no instruction. It reads *obj, so the compiler completes the store before it;
// it passes the mark's granule index through a register, so the mark is stored through an address
// the compiler cannot know before the asm ran: the mark cannot move above the asm, and it cannot
// be merged with another mark (each asm yields a new unknown index). The index, not the address,
// goes through the asm so that the mark is one `movb $1, (shadow, index)`: no add to form the
// address, no register copy kept for a second mark. The asm is not volatile and has no memory
// output, so clang gives it `memory(read)`: it writes nothing, and the region globals, the loop's
// pointers and the values just stored stay in registers across it (a `volatile` asm or an `"=m"`
// output counts as a write to all memory, and made every barrier reload the regions). Its result
// is used, so it is never deleted; two of them are never merged, as the mark between them may be
// what the second one reads.
template <class T>
[[gnu::always_inline]] inline void MarkAfter(std::uint8_t* shadow, std::uintptr_t g,
                                             const T* obj) noexcept {
#if !defined(MMSB_BARRIER_ATOMIC_MARK) && (defined(__x86_64__) || defined(__i386__))
  asm("" : "+r"(g) : "m"(*obj));
  reinterpret_cast<ShadowByte*>(shadow)[g] = ShadowByte::kTouched;
#else
  (void)obj;
  __atomic_store_n(&shadow[g], std::uint8_t{1}, __ATOMIC_RELEASE);
#endif
}

// Whether an N-byte object at offset `off` from a granule boundary may reach into the next
// granule: the fast test of the barrier's straddle check. For N a power of two it is "off is not
// a multiple of N" (one `test` and a branch, fused into one micro-op on x86): an object at a
// multiple of its size N <= 64 lies in one granule, since granules are 64 bytes and the tracked
// range's base is a multiple of 64 (ShadowRegion). It tests the address, never assumes it: a
// misaligned store through a pointer (a packed member, a cast byte buffer) takes the slow test.
// Other sizes go straight to the exact test.
template <std::size_t N>
[[gnu::always_inline]] constexpr bool MayStraddle(std::uintptr_t off) noexcept {
  static_assert(N >= 1 && N <= kGranuleSize);
  if constexpr (N == 1) {
    return false;
  } else if constexpr ((N & (N - 1)) == 0) {
    return (off & (N - 1)) != 0;
  } else {
    return true;
  }
}

// The exact straddle test: the object's last byte is in the next granule.
template <std::size_t N>
[[gnu::always_inline]] constexpr bool Straddles(std::uintptr_t off) noexcept {
  return (off & (kGranuleSize - 1)) > kGranuleSize - N;
}

// The mark-first form's mark of the N bytes at `off` in `r` (off < r.span).
template <std::size_t N>
inline void MarkFixed(const ShadowRegion& r, std::uintptr_t off) noexcept {
  if constexpr (N == 0) {
    return;
  } else if constexpr (N <= kGranuleSize) {
    MarkOne(r.shadow, off);
    if (MayStraddle<N>(off)) [[unlikely]] {
      if (Straddles<N>(off)) MarkOne(r.shadow, off + N - 1);
    }
  } else {
    MarkSpanSlow(r, off, N);
  }
}

// Marks the bytes of *p after they were stored (the store-then-mark form's second half): one
// range check, one offset, one shadow, whatever region the address lies in. The range check
// compares the granule index with the span's granule count: the same test as `off < span`, as the
// span is a multiple of 64 (ShadowRegion), and the index is what the mark needs.
template <class T>
[[gnu::always_inline]] inline void MarkStored(const T* p) noexcept {
  constexpr std::size_t N = sizeof(T);
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t off = a - g_region.base;
  if constexpr (N > kGranuleSize) {
    if (off >= g_region.span) return;
    // An out-of-line call: the compiler cannot sink the store to page memory past it.
    MarkSpanSlow(g_region, off, N);
  } else {
    const std::uintptr_t g = off >> kGranuleShift;
    if (g >= (g_region.span >> kGranuleShift)) return;
    MarkAfter(g_region.shadow, g, p);
    // At most N <= 64 bytes: the object reaches into the next granule when its offset in its
    // first one is past 64 - N (never for an object at a multiple of its power-of-two size).
    // Tested on the address (the base is a multiple of 64, so its low six bits are the offset's),
    // and the second mark's index is the last byte's: nothing of the first mark stays live.
    if (MayStraddle<N>(a)) [[unlikely]] {
      if (Straddles<N>(a)) MarkAfter(g_region.shadow, (off + N - 1) >> kGranuleShift, p);
    }
  }
}

// N bytes with no alignment: what the unaligned store form hands MarkStored, so that nothing
// forms an lvalue of the stored type at a misaligned address.
template <std::size_t N>
struct RawBytes {
  unsigned char b[N];
};

// Marks on scope exit: a store through a class type's operator= that throws still marks what it
// may have written.
template <class T>
struct MarkOnExit {
  T* p;
#if __cplusplus >= 202002L
  constexpr
#endif
      ~MarkOnExit() {
    if (!__builtin_is_constant_evaluated()) MarkStored(p);
  }
};

}  // namespace detail

// The store-then-mark form: `ws(&lhs) = rhs` stores rhs into lhs, then marks lhs's granules. Every
// operator returns what the built-in (or the class's own) operator returns: `ws(&x) = v` is an
// lvalue of x's type, `ws(&x)++` the old value. Operands are evaluated as without the wrapper
// (C++17 sequences the right operand of `=` and `@=` before the left one for overloaded operators
// as for built-in ones). Nothing happens to the shadow during constant evaluation.
template <class T>
class StoreRef {
 public:
  constexpr explicit StoreRef(T* p) noexcept : p_(p) {}
  StoreRef(const StoreRef&) = delete;
  StoreRef& operator=(const StoreRef&) = delete;

  template <class U = T, std::enable_if_t<std::is_assignable_v<T&, U&&>, int> = 0>
  [[gnu::always_inline]] constexpr decltype(auto) operator=(U&& v) const {
    return Apply([&]() -> decltype(auto) { return *p_ = static_cast<U&&>(v); });
  }
  // A null pointer constant (`p = 0`, `p = NULL`) is not an int once forwarded.
  template <class V = T,
            std::enable_if_t<std::is_pointer_v<V> || std::is_member_pointer_v<V>, int> = 0>
  [[gnu::always_inline]] constexpr V& operator=(std::nullptr_t) const {
    return Apply([&]() -> V& { return *p_ = nullptr; });
  }

  template <class U>
  [[gnu::always_inline]] constexpr decltype(auto) operator+=(U&& v) const {
    return Apply([&]() -> decltype(auto) { return *p_ += static_cast<U&&>(v); });
  }
  template <class U>
  [[gnu::always_inline]] constexpr decltype(auto) operator-=(U&& v) const {
    return Apply([&]() -> decltype(auto) { return *p_ -= static_cast<U&&>(v); });
  }
  template <class U>
  [[gnu::always_inline]] constexpr decltype(auto) operator*=(U&& v) const {
    return Apply([&]() -> decltype(auto) { return *p_ *= static_cast<U&&>(v); });
  }
  template <class U>
  [[gnu::always_inline]] constexpr decltype(auto) operator/=(U&& v) const {
    return Apply([&]() -> decltype(auto) { return *p_ /= static_cast<U&&>(v); });
  }
  template <class U>
  [[gnu::always_inline]] constexpr decltype(auto) operator%=(U&& v) const {
    return Apply([&]() -> decltype(auto) { return *p_ %= static_cast<U&&>(v); });
  }
  template <class U>
  [[gnu::always_inline]] constexpr decltype(auto) operator&=(U&& v) const {
    return Apply([&]() -> decltype(auto) { return *p_ &= static_cast<U&&>(v); });
  }
  template <class U>
  [[gnu::always_inline]] constexpr decltype(auto) operator|=(U&& v) const {
    return Apply([&]() -> decltype(auto) { return *p_ |= static_cast<U&&>(v); });
  }
  template <class U>
  [[gnu::always_inline]] constexpr decltype(auto) operator^=(U&& v) const {
    return Apply([&]() -> decltype(auto) { return *p_ ^= static_cast<U&&>(v); });
  }
  template <class U>
  [[gnu::always_inline]] constexpr decltype(auto) operator<<=(U&& v) const {
    return Apply([&]() -> decltype(auto) { return *p_ <<= static_cast<U&&>(v); });
  }
  template <class U>
  [[gnu::always_inline]] constexpr decltype(auto) operator>>=(U&& v) const {
    return Apply([&]() -> decltype(auto) { return *p_ >>= static_cast<U&&>(v); });
  }

  [[gnu::always_inline]] constexpr decltype(auto) operator++() const {
    return Apply([&]() -> decltype(auto) { return ++*p_; });
  }
  [[gnu::always_inline]] constexpr decltype(auto) operator--() const {
    return Apply([&]() -> decltype(auto) { return --*p_; });
  }
  [[gnu::always_inline]] constexpr decltype(auto) operator++(int) const {
    return Apply([&]() -> decltype(auto) { return (*p_)++; });
  }
  [[gnu::always_inline]] constexpr decltype(auto) operator--(int) const {
    return Apply([&]() -> decltype(auto) { return (*p_)--; });
  }

 private:
  // Runs the store, then marks. Scalars cannot throw: the mark simply follows. A class type's
  // operator may throw after writing part of the object: a scope guard marks on every exit.
  template <class F>
  [[gnu::always_inline]] constexpr decltype(auto) Apply(F&& store) const {
    if constexpr (std::is_scalar_v<std::remove_cv_t<T>>) {
      decltype(auto) r = store();
      if (!__builtin_is_constant_evaluated()) detail::MarkStored(p_);
      return static_cast<decltype(r)>(r);
    } else {
      detail::MarkOnExit<T> guard{p_};
      return store();
    }
  }

  T* p_;
};

// The store-then-mark form for a destination less aligned than its type (a member of a packed
// struct; docs/PluginGuide.md, "Members with reduced alignment"): `wsu(&(lhs)) = rhs`. A store
// through a T* lets the compiler assume alignof(T) (an aligned vector move, UBSan's alignment
// check); this form reads and writes the object with memcpy, which assumes nothing, and computes
// in a local of type T, so each operator converts and promotes as the built-in one does. Its
// results are prvalues: the value the built-in operator's result holds (the rewriter uses it only
// where the result is not used as an lvalue). T is a scalar, or a class whose assignment is
// trivial (the rewriter uses only its `=` then).
template <class T>
class UnalignedStoreRef {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  constexpr explicit UnalignedStoreRef(T* p) noexcept : p_(p) {}
  UnalignedStoreRef(const UnalignedStoreRef&) = delete;
  UnalignedStoreRef& operator=(const UnalignedStoreRef&) = delete;

  // Not a template: `s.p = nullptr`, `s.p = 0` and `s.v = {1, 2}` convert as the built-in `=`.
  [[gnu::always_inline]] constexpr T operator=(T v) const noexcept
    requires(!std::is_arithmetic_v<T>)
  {
    Store(v);
    return v;
  }
  // An arithmetic T: `s.x = v` converts into the local as the built-in `=` does. A braced value
  // (`s.x = {3}`, `s.x = {}`) initialises a Braced, narrowing checked, as the built-in `=`
  // initialises the scalar: through a parameter of type T, clang would warn of braces around a
  // scalar initializer (-Wbraced-scalar-init), which the built-in `=` does not.
  // A scalar right-hand side is taken by value: it may itself be a member with reduced alignment
  // or a bit-field, which a reference must not bind to (UBSan: misaligned reference binding).
  template <class U>
    requires(std::is_arithmetic_v<T> && std::is_scalar_v<U> && std::is_convertible_v<U, T>)
  [[gnu::always_inline]] constexpr T operator=(U v) const noexcept {
    const T t = v;
    Store(t);
    return t;
  }
  template <class U>
    requires(std::is_arithmetic_v<T> && !std::is_scalar_v<std::remove_cvref_t<U>> &&
             std::is_convertible_v<U, T>)
  [[gnu::always_inline]] constexpr T operator=(U&& v) const noexcept {
    const T t = static_cast<U&&>(v);
    Store(t);
    return t;
  }
  struct Braced {
    T value;
  };
  [[gnu::always_inline]] constexpr T operator=(Braced b) const noexcept
    requires(std::is_arithmetic_v<T>)
  {
    Store(b.value);
    return b.value;
  }

// As for `=`, a scalar right-hand side is taken by value (it may be a misaligned member or a
// bit-field); anything else is forwarded.
#define MMSB_UNALIGNED_COMPOUND(op)                                      \
  template <class U>                                                     \
    requires(std::is_scalar_v<U>)                                        \
  [[gnu::always_inline]] constexpr T operator op(U v) const noexcept {   \
    T t = Load();                                                        \
    t op v;                                                              \
    Store(t);                                                            \
    return t;                                                            \
  }                                                                      \
  template <class U>                                                     \
    requires(!std::is_scalar_v<std::remove_cvref_t<U>>)                  \
  [[gnu::always_inline]] constexpr T operator op(U&& v) const noexcept { \
    T t = Load();                                                        \
    t op static_cast<U&&>(v);                                            \
    Store(t);                                                            \
    return t;                                                            \
  }
  MMSB_UNALIGNED_COMPOUND(+=)
  MMSB_UNALIGNED_COMPOUND(-=)
  MMSB_UNALIGNED_COMPOUND(*=)
  MMSB_UNALIGNED_COMPOUND(/=)
  MMSB_UNALIGNED_COMPOUND(%=)
  MMSB_UNALIGNED_COMPOUND(&=)
  MMSB_UNALIGNED_COMPOUND(|=)
  MMSB_UNALIGNED_COMPOUND(^=)
  MMSB_UNALIGNED_COMPOUND(<<=)
  MMSB_UNALIGNED_COMPOUND(>>=)
#undef MMSB_UNALIGNED_COMPOUND

  [[gnu::always_inline]] constexpr T operator++() const noexcept {
    T t = Load();
    ++t;
    Store(t);
    return t;
  }
  [[gnu::always_inline]] constexpr T operator--() const noexcept {
    T t = Load();
    --t;
    Store(t);
    return t;
  }
  [[gnu::always_inline]] constexpr T operator++(int) const noexcept {
    T t = Load();
    T old = t;
    ++t;
    Store(t);
    return old;
  }
  [[gnu::always_inline]] constexpr T operator--(int) const noexcept {
    T t = Load();
    T old = t;
    --t;
    Store(t);
    return old;
  }

 private:
  [[gnu::always_inline]] constexpr T Load() const noexcept {
    if (__builtin_is_constant_evaluated()) return *p_;
    T t;
    __builtin_memcpy(&t, static_cast<const void*>(p_), sizeof(T));
    return t;
  }
  // Store, then mark (as StoreRef): the mark's asm reads the stored bytes as RawBytes.
  [[gnu::always_inline]] constexpr void Store(const T& t) const noexcept {
    if (__builtin_is_constant_evaluated()) {
      *p_ = t;
      return;
    }
    __builtin_memcpy(static_cast<void*>(p_), &t, sizeof(T));
    detail::MarkStored(reinterpret_cast<const detail::RawBytes<sizeof(T)>*>(p_));
  }

  T* p_;
};

// Store-then-mark for a destination with reduced alignment: see UnalignedStoreRef.
template <class T>
[[gnu::always_inline]] constexpr UnalignedStoreRef<T> wsu(T* p) noexcept {
  return UnalignedStoreRef<T>(p);
}

// Store-then-mark: see StoreRef.
template <class T>
[[gnu::always_inline]] constexpr StoreRef<T> ws(T* p) noexcept {
  return StoreRef<T>(p);
}

// Marks the bytes of *p as written and returns p (the mark-first form).
template <class T>
[[gnu::always_inline]] inline T* w(T* p) noexcept {
  const std::uintptr_t off = reinterpret_cast<std::uintptr_t>(p) - g_region.base;
  if (off < g_region.span) detail::MarkFixed<sizeof(T)>(g_region, off);
  return p;
}

// Range form: marks [p, p+n) as written. For memcpy/memset-like stores and escaped ranges.
inline void MarkRange(const void* p, std::size_t n) noexcept {
  const std::uintptr_t off = reinterpret_cast<std::uintptr_t>(p) - g_region.base;
  if (off < g_region.span) detail::MarkSpanSlow(g_region, off, n);
}

// Returns p after marking [p, p+n); handy in expressions.
template <class T>
inline T* w(T* p, std::size_t n) noexcept {
  MarkRange(p, n);
  return p;
}

// True when p lies in the tracked range (heap arena, static window, or the bytes between them).
inline bool IsTracked(const void* p) noexcept {
  return reinterpret_cast<std::uintptr_t>(p) - g_region.base < g_region.span;
}

}  // namespace mmsb::rt
