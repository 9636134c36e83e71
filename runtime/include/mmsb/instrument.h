// The ABI that plugin-generated code calls. Users do not call these directly.
//
// The rewriter turns
//   - stores into page storage into `::mmsb::rt::ws(&(lhs)) = rhs` (store, then mark; barrier.h),
//     or `wst(lhs) = rhs` in template code, or `wsu(&(lhs)) = rhs` where lhs is less aligned than
//     its type (a packed member: stored through memcpy); the mark-first forms `*w(&(obj))`,
//     `w(p)->`, `wt(obj)` and `*wc(&(obj))` (constexpr functions) stay for member calls and
//     bit-fields;
//   - pointers and references into page storage that leave what it can follow into Escape(p) /
//     EscapeRef(r), or MarkFrom(p) / MarkRef(r) for calls known not to keep them (memcpy,
//     std::fill);
//   - `new T` of a [[mmsb::page]] type into class-scope operator new/delete that call
//     AllocPageStorage / FreePageStorage, so the object lives in its own page;
//   - a [[mmsb::page]] variable with static storage duration into a 64-byte aligned object in the
//     `mmsb_pages` section plus a StaticPageRegistrar that registers it at dynamic initialisation;
//   - a [[mmsb::transaction]] function body into one that holds a TransactionScope, so commit()
//     runs at every exit (returns and exceptions) of the outermost transaction.
// The bus starts on first use (EnsureStarted) with default Options unless the program started it.
//
// Thread-safety: as for the functions they wrap (page.h, mmsb.h). TransactionScope nesting is
// tracked per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <new>
#include <source_location>

#include "mmsb/barrier.h"
#include "mmsb/provenance.h"

// Every instrumented translation unit includes this header: it stays light (no <string>,
// <vector>; mmsb/type_desc.h is only named).
namespace mmsb {
struct TypeDescriptor;
}  // namespace mmsb

namespace mmsb::rt {

// Starts the bus with default options (verify from MMSB_VERIFY) when not yet started.
void EnsureStarted() noexcept;

// Page storage for one object of a page type. Returns null on failure (operator new then throws
// std::bad_alloc); the failure reason is printed once to stderr.
void* AllocPageStorage(std::size_t size, std::size_t align, const TypeDescriptor* type) noexcept;
// Frees storage from AllocPageStorage. Null is a no-op. Storage not from the arena aborts.
void FreePageStorage(void* p) noexcept;

// Registers a static page (see RegisterStaticPage). Failures are printed and leave the object
// untracked; they never abort the program.
void RegisterStatic(void* addr, std::size_t size, const char* name,
                    const TypeDescriptor* type) noexcept;

// Registers a descriptor once and returns the interned copy (null on a conflicting layout,
// reported to stderr).
const TypeDescriptor* InternType(const TypeDescriptor& type) noexcept;

// Layout descriptors as the plugin emits them: literal tables that InternLayout turns into a
// TypeDescriptor (mmsb/type_desc.h) and interns. Kinds are ScalarKind's values.
namespace kind {
inline constexpr std::uint8_t kBytes = 0, kBool = 1, kChar = 2, kI8 = 3, kU8 = 4, kI16 = 5,
                              kU16 = 6, kI32 = 7, kU32 = 8, kI64 = 9, kU64 = 10, kF32 = 11,
                              kF64 = 12, kPointer = 13, kRecord = 14;
}  // namespace kind

struct LayoutField {
  const char* name;
  std::uint32_t offset;
  std::uint32_t size;
  std::uint8_t kind;
  std::uint32_t elem_size;
  std::initializer_list<std::uint32_t> extents;  // outermost first
  const char* record_type;                       // kind::kRecord only
};

const TypeDescriptor* InternLayout(const char* name, std::uint32_t size, std::uint32_t align,
                                   std::initializer_list<LayoutField> fields) noexcept;

// Marks the page holding `p` escaped (fully diffed at every commit). No-op for untracked memory.
void MarkEscapedAt(const void* p) noexcept;

// Marks the bytes from `p` to the end of the page holding it as written. No-op for untracked
// memory. For calls that write through a pointer without keeping it (memcpy, std::fill).
void MarkToPageEnd(const void* p) noexcept;

namespace detail {
template <class T>
constexpr const void* Bytes(T* p) noexcept {
  return const_cast<const void*>(static_cast<const volatile void*>(p));
}
}  // namespace detail

// The forms the rewriter wraps expressions in. Each returns its argument unchanged (same type and
// value category) and does nothing during constant evaluation, so they are usable in constexpr
// functions and lambdas.

// A store through a reference whose destination may be page storage (template code shared by
// instantiations over page and plain types): `wt(t.v) = x`.
template <class T>
[[gnu::always_inline]] constexpr T&& wt(T&& x) noexcept {
  if (!__builtin_is_constant_evaluated()) w(__builtin_addressof(x));
  return static_cast<T&&>(x);
}
// The store-then-mark form in template code: `wst(t.v) = x` (ws() with the address taken by
// __builtin_addressof, so a class's overloaded operator& is never called).
template <class T>
[[gnu::always_inline]] constexpr StoreRef<std::remove_reference_t<T>> wst(T&& x) noexcept {
  return StoreRef<std::remove_reference_t<T>>(__builtin_addressof(x));
}
// `*w(&(lhs))` for constexpr functions.
template <class T>
[[gnu::always_inline]] constexpr T* wc(T* p) noexcept {
  return __builtin_is_constant_evaluated() ? p : w(p);
}
// A pointer into page storage leaves what the rewriter can follow: mark its page escaped.
template <class T>
constexpr T* Escape(T* p) noexcept {
  if (!__builtin_is_constant_evaluated()) MarkEscapedAt(detail::Bytes(p));
  return p;
}
// The same for a reference (keeps lvalues lvalues and xvalues xvalues).
template <class T>
constexpr T&& EscapeRef(T&& x) noexcept {
  if (!__builtin_is_constant_evaluated()) MarkEscapedAt(detail::Bytes(__builtin_addressof(x)));
  return static_cast<T&&>(x);
}
// A pointer passed to a call that writes through it but does not keep it: mark up to the end of
// its page for this epoch.
template <class T>
constexpr T* MarkFrom(T* p) noexcept {
  if (!__builtin_is_constant_evaluated()) MarkToPageEnd(detail::Bytes(p));
  return p;
}
// A counted loop writes elements [0, n) of the array starting at p: the rewriter marks them once
// before the loop instead of barriering every store in it.
template <class T>
constexpr void MarkSpan(T* p, std::size_t n) noexcept {
  if (!__builtin_is_constant_evaluated()) MarkRange(detail::Bytes(p), n * sizeof(T));
}
// A reference passed to such a call (std::swap): mark the referenced object.
template <class T>
constexpr T&& MarkRef(T&& x) noexcept {
  if (!__builtin_is_constant_evaluated())
    MarkRange(detail::Bytes(__builtin_addressof(x)), sizeof(x));
  return static_cast<T&&>(x);
}

// The descriptor of a page class template's instantiation when the rewriter saw none: the
// rewriter adds an overload for each instantiation it sees, found by argument-dependent lookup.
inline const TypeDescriptor* _mmsb_describe(const void*) noexcept { return nullptr; }

// A variable of static storage duration whose initialiser points into the page at `addr` (the
// rewriter saw `int* p = &g.a[3];` at namespace scope, or a static local): a constant
// initialiser never runs the Escape around it, and a dynamic one may run before the page is
// registered (in another translation unit). The page is marked escaped now if it is registered,
// and by RegisterStatic when it is.
void EscapeStatic(const void* addr) noexcept;
struct StaticEscape {
  explicit StaticEscape(const void* addr) noexcept { EscapeStatic(addr); }
};

struct StaticPageRegistrar {
  StaticPageRegistrar(void* addr, std::size_t size, const char* name,
                      const TypeDescriptor* type) noexcept {
    RegisterStatic(addr, size, name, type);
  }
};

// A transaction: the stores made while the outermost scope on this thread is alive share one
// epoch, whatever commits other threads run meanwhile (a commit waits for the transactions that
// began before its cut; a transaction does not begin while a commit collects). The outermost
// scope's exit commits, on return and on an exception alike (a throwing transaction commits what
// it wrote); if a commit on another thread was already waiting for it, the exit joins that commit
// instead. commit() inside a transaction fails with FailedPrecondition. Never wait inside a
// transaction for another thread that may commit: that commit waits for this transaction (a
// watchdog names it on stderr after a second). Commit errors are printed to stderr and counted in
// stats; they never throw into user code.
class TransactionScope {
 public:
  // `site`: where the rewriter placed the scope (the transaction function's body), recorded in
  // the log as what committed. Generated code leaves it defaulted.
  explicit TransactionScope(std::source_location site = std::source_location::current()) noexcept;
  ~TransactionScope();
  TransactionScope(const TransactionScope&) = delete;
  TransactionScope& operator=(const TransactionScope&) = delete;
};

}  // namespace mmsb::rt
