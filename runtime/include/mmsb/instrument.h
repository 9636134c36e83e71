// The ABI that plugin-generated code calls. Users do not call these directly.
//
// The rewriter turns
//   - stores into page storage into `*::mmsb::rt::w(&(lhs)) = rhs` (barrier.h);
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

#include "mmsb/barrier.h"
#include "mmsb/type_desc.h"

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

// Marks the page holding `p` escaped (fully diffed at every commit). No-op for untracked memory.
void MarkEscapedAt(const void* p) noexcept;

struct StaticPageRegistrar {
  StaticPageRegistrar(void* addr, std::size_t size, const char* name,
                      const TypeDescriptor* type) noexcept {
    RegisterStatic(addr, size, name, type);
  }
};

// Commits when the outermost scope on this thread exits. Commit errors are printed to stderr and
// counted in stats; they never throw into user code.
class TransactionScope {
 public:
  TransactionScope() noexcept;
  ~TransactionScope();
  TransactionScope(const TransactionScope&) = delete;
  TransactionScope& operator=(const TransactionScope&) = delete;
};

}  // namespace mmsb::rt
