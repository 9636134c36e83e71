// Marks that are made once more after the stores they cover: the forms the rewriter uses where it
// replaces per-store barriers by one mark (loop range marks, marks of page storage passed to
// uninstrumented code). See docs/PluginGuide.md, "Elision invariants".
//
// A mark made only before the stores it covers is lost when a commit runs between the mark and a
// store (a [[mmsb::transaction]] in a later argument of the same call, a commit on another thread).
// These forms mark when the covered code starts and again when it has finished (at the end of the
// scope, or of the full-expression), so that every covered store is followed by a mark before any
// commit that follows the store in happens-before order can miss it.
//
// Header-only; every instrumented translation unit includes it (the plugin's inner compile and
// mmsb-rewrite's prologue). Thread-safety: the objects are local to one thread.
#pragma once

#include <cstddef>

#include "mmsb/instrument.h"

namespace mmsb::rt {

// Marks [p, p+n) when constructed and again when destroyed. The rewriter declares one in a scope
// of its own around a loop whose stores it does not barrier.
class ScopedMark {
 public:
  ScopedMark(const void* p, std::size_t n) noexcept : p_(p), n_(n) { MarkRange(p_, n_); }
  ~ScopedMark() { MarkRange(p_, n_); }
  ScopedMark(const ScopedMark&) = delete;
  ScopedMark& operator=(const ScopedMark&) = delete;

 private:
  const void* p_;
  std::size_t n_;
};

// The second mark of MarkHeld/MarkFromHeld: a temporary created by a default argument, so it is
// destroyed (and marks) at the end of the full-expression that contains the call.
class HeldMark {
 public:
  HeldMark() = default;
  ~HeldMark() {
    if (p_ == nullptr) return;
    if (to_page_end_) {
      MarkToPageEnd(p_);
    } else {
      MarkRange(p_, n_);
    }
  }
  HeldMark(const HeldMark&) = delete;
  HeldMark& operator=(const HeldMark&) = delete;

  void Set(const void* p, std::size_t n, bool to_page_end) noexcept {
    p_ = p;
    n_ = n;
    to_page_end_ = to_page_end;
  }

 private:
  const void* p_ = nullptr;
  std::size_t n_ = 0;
  bool to_page_end_ = false;
};

// The object `x` (page storage handed to uninstrumented code: a member call on it, a reference
// argument of std::swap) is marked now and at the end of the enclosing full-expression.
template <class T>
T&& MarkHeld(T&& x, HeldMark&& held = HeldMark()) noexcept {
  const void* p = detail::Bytes(__builtin_addressof(x));
  MarkRange(p, sizeof(x));
  held.Set(p, sizeof(x), false);
  return static_cast<T&&>(x);
}

// A pointer passed to a call that writes through it without keeping it (memcpy, std::fill): the
// bytes from `p` to the end of its page are marked now and at the end of the full-expression.
template <class T>
T* MarkFromHeld(T* p, HeldMark&& held = HeldMark()) noexcept {
  if (p == nullptr) return p;
  MarkToPageEnd(detail::Bytes(p));
  held.Set(detail::Bytes(p), 0, true);
  return p;
}

}  // namespace mmsb::rt
