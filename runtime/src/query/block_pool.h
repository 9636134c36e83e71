// BlockPool: the memory of one LogIndex's encoded blocks while they are built and held (ByteBuf).
//
// Why not malloc: building the index of a large log grows a thousand page blocks of tens of KiB
// each by doubling, so it touches tens of MiB of fresh memory, one 4 KiB page fault at a time. On
// a virtual machine a fault costs far more than the bytes it maps (17 us per page measured on the
// bench machine, docs/Performance.md), which made faults a fifth of the build. The pool maps its
// memory in slabs that ask for transparent huge pages (MADV_HUGEPAGE: one fault per 2 MiB where
// the kernel allows it, 4 KiB pages otherwise, with the same results) and keeps the buffers that
// growth leaves behind on per-size free lists, so a doubling reuses them instead of new memory.
//
// Buffers are powers of two from kMinBuffer bytes; those above kMaxPooled get a mapping of their
// own (grown by mremap). Memory goes back to the system when the pool is destroyed (its last
// ByteBuf and LogIndex gone). Not thread-safe: a LogIndex is used by one thread at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace mmsb::query {

class BlockPool {
 public:
  static constexpr std::size_t kMinBuffer = 256;
  static constexpr std::size_t kMaxPooled = std::size_t{1} << 20;

  BlockPool() = default;
  ~BlockPool();
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // The capacity Grow gives for at least `n` bytes: a power of two, at least kMinBuffer.
  static std::size_t CapacityFor(std::size_t n);
  // A buffer of CapacityFor(n) bytes holding the first `used` bytes of `old` (of capacity
  // `old_cap`, from this pool, or null with 0), which is given back. Throws std::bad_alloc when
  // the system has no memory left.
  std::uint8_t* Grow(std::uint8_t* old, std::size_t old_cap, std::size_t used, std::size_t n);
  // Gives back a buffer of capacity `cap` from this pool (null is ignored).
  void Free(std::uint8_t* p, std::size_t cap);

 private:
  static constexpr unsigned kClasses = 13;      // kMinBuffer << 0 .. kMaxPooled
  std::uint8_t* Take(std::size_t cap);          // from a free list or the current slab
  std::array<std::uint8_t*, kClasses> free_{};  // singly linked through each buffer's first word
  std::vector<std::pair<std::uint8_t*, std::size_t>> slabs_;
  std::uint8_t* bump_ = nullptr;  // the current slab's unused bytes
  std::size_t bump_left_ = 0;
};

}  // namespace mmsb::query
