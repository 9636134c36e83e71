// Arena: the reserved address ranges that hold heap page storage, their twins and shadow map.
//
// Three parallel reservations of the same geometry, all MAP_NORESERVE and backed lazily:
//   data   [base, base+capacity)            page bytes
//   twin   [twin_base, twin_base+capacity)  last-commit image of each page (same offset)
//   shadow [shadow, shadow+capacity/64)     one "touched this epoch" byte per 64-byte granule
// so a page's twin and shadow are found by offset arithmetic, with no lookup.
//
// The shadow map can cover more than the data range: Create places the data next to another range
// (the program image, where static pages live) and reserves one shadow map over both, so the
// barrier tells any tracked address from an untracked one with a single range check
// (mmsb/barrier.h, g_region).
//
// Storage of 4 KiB or less comes from pooled size classes (64 B .. 4 KiB, slabs carved from the
// bump region); a freed slot is recycled without a syscall. Larger storage is 4 KiB-granular,
// recycled first-fit, and returned to the OS with madvise(MADV_DONTNEED) on free.
//
// Lazy zeroing: slots record whether they may hold non-zero bytes; a fresh or clean slot is
// handed out as is, a dirty one is zeroed only when the caller asks for zeroed storage.
//
// Thread-safety: Allocate/Free may be called from many threads (an internal mutex guards the
// free lists; the bump pointer is atomic). Address queries are lock-free and const.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "mmsb/status.h"

#include "core/mutex.h"

namespace mmsb {

class Arena {
 public:
  static constexpr std::size_t kSmallMax = 4096;
  static constexpr int kNumSmallClasses = 7;  // 64, 128, ..., 4096
  static constexpr std::uint8_t kLargeClass = 0xff;
  static constexpr std::size_t kSlabBytes = 256 * 1024;
  static constexpr std::size_t kLargeAlign = 4096;

  struct Block {
    std::uint8_t* data = nullptr;
    std::size_t capacity = 0;     // usable bytes (class size or rounded large size)
    std::uint8_t size_class = 0;  // 0..6 or kLargeClass
    bool zero = true;             // all bytes of [data, data+capacity) are known zero
  };

  // The range to reserve the data next to: [lo, hi), granule-aligned (empty: anywhere).
  struct Near {
    std::uintptr_t lo = 0;
    std::uintptr_t hi = 0;
  };
  // How far the data range may lie from the Near range for one shadow map to cover both; the
  // bytes between them cost address space only (1/64 of the gap, reserved, never backed unless an
  // untracked object there is passed to a barrier).
  static constexpr std::size_t kNearGap = std::size_t{64} << 30;

  // Reserves `capacity` bytes of address space (rounded to 4 KiB) for data and twins. With a
  // non-empty `near`, the data is placed right below it, else kNearGap above it (past room for
  // the brk heap of a non-PIE program), else anywhere; when it lands within kNearGap of `near`,
  // the shadow map covers both (covers_near()).
  static Expected<Arena*> Create(std::size_t capacity, Near near);
  static Expected<Arena*> Create(std::size_t capacity) { return Create(capacity, Near{}); }
  // The capacity to use: MMSB_ARENA_BYTES when set (bytes, or with a K/M/G/T suffix, powers of
  // 1024: "4G"), else `configured` (Options::arena_bytes). InvalidArgument names a bad value.
  static Expected<std::size_t> CapacityFromEnv(std::size_t configured);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Storage for `size` bytes. When `zeroed`, the returned bytes are zero.
  Expected<Block> Allocate(std::size_t size, bool zeroed);
  // Returns storage; `may_be_nonzero` false means the caller knows every byte is still zero.
  void Free(const Block& block, bool may_be_nonzero);

  // Which 4 KiB pages of [p, p + n) (p 4 KiB-aligned, inside the data range) may hold non-zero
  // bytes: out[k] for page k is 1 when the process's page table (/proc/self/pagemap) has it
  // present or swapped out, 0 when it has neither, i.e. the page was never written since it was
  // mapped or returned with MADV_DONTNEED and reads as zeros (the arena is private anonymous
  // memory). False when the page table cannot be read; then every page must be read.
  static bool MayHoldData(const std::uint8_t* p, std::size_t n, std::vector<std::uint8_t>* out);

  std::uintptr_t base() const { return reinterpret_cast<std::uintptr_t>(data_); }
  std::size_t capacity() const { return capacity_; }
  std::uint8_t* shadow() const { return shadow_; }
  // The range the shadow map covers, [cover_base(), cover_base() + cover_span()), and its shadow
  // (the byte for address a is cover_shadow()[(a - cover_base()) >> 6]). It holds the data range,
  // and the Near range when covers_near().
  std::uintptr_t cover_base() const { return cover_base_; }
  std::size_t cover_span() const { return cover_span_; }
  std::uint8_t* cover_shadow() const { return cover_shadow_; }
  bool covers_near() const { return covers_near_; }
  bool Contains(const void* p) const {
    return reinterpret_cast<std::uintptr_t>(p) - base() < capacity_;
  }
  std::uint8_t* TwinOf(const std::uint8_t* p) const { return twin_ + (p - data_); }
  std::uint8_t* ShadowOf(const std::uint8_t* p) const {
    return shadow_ + (static_cast<std::size_t>(p - data_) >> 6);
  }
  // Bytes of address space handed out so far (high-water mark).
  std::size_t used() const { return bump_.load(std::memory_order_relaxed); }

  // Owner lookup: the runtime records which page owns a block so that an interior address
  // (from a barrier-free escape, or FreePageStorage) finds its page. Lock-free for small blocks.
  void SetOwner(const Block& block, void* owner);
  void ClearOwner(const Block& block);
  // The owner of the block containing `p`, or null.
  void* FindOwner(const void* p);

  static int ClassFor(std::size_t size);  // -1 when larger than kSmallMax
  static std::size_t ClassSize(int c) { return std::size_t{64} << c; }

 private:
  Arena() = default;
  Expected<std::uint8_t*> Bump(std::size_t bytes, std::size_t align);
  Status RefillClass(int c) REQUIRES(mu_);

  std::uint8_t* data_ = nullptr;
  std::uint8_t* twin_ = nullptr;
  std::uint8_t* shadow_ = nullptr;  // inside cover_shadow_, at data_'s offset
  std::size_t capacity_ = 0;
  std::uintptr_t cover_base_ = 0;
  std::size_t cover_span_ = 0;
  std::uint8_t* cover_shadow_ = nullptr;
  std::size_t cover_shadow_bytes_ = 0;
  bool covers_near_ = false;
  std::atomic<std::size_t> bump_{0};
  // Per 256 KiB slab: its small size class, or kLargeClass. Written once when carved.
  std::atomic<std::uint8_t>* slab_class_ = nullptr;
  // Owner of the block starting at each granule (reserved, lazily backed).
  std::atomic<void*>* owner_ = nullptr;

  struct FreeSlot {
    std::uint8_t* data;
    bool zero;
  };
  Mutex mu_;
  std::array<std::vector<FreeSlot>, kNumSmallClasses> small_free_ GUARDED_BY(mu_);
  std::multimap<std::size_t, std::uint8_t*> large_free_ GUARDED_BY(mu_);  // size -> start
  std::map<std::uintptr_t, std::pair<std::size_t, void*>> large_owner_ GUARDED_BY(mu_);
};

}  // namespace mmsb
