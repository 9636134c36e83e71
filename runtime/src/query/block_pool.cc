#include "query/block_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>

namespace mmsb::query {
namespace {

constexpr std::size_t kHuge = std::size_t{2} << 20;
constexpr std::size_t kFirstSlab = kHuge;
constexpr std::size_t kLargestSlab = std::size_t{64} << 20;

// `n` bytes (a multiple of kHuge) at a kHuge boundary, asking for huge pages.
std::uint8_t* MapHuge(std::size_t n) {
  void* m = ::mmap(nullptr, n + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) throw std::bad_alloc();
  auto* raw = static_cast<std::uint8_t*>(m);
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(raw);
  auto* p = raw + ((kHuge - a % kHuge) % kHuge);
  if (p > raw) ::munmap(raw, static_cast<std::size_t>(p - raw));
  if (p + n < raw + n + kHuge) ::munmap(p + n, static_cast<std::size_t>(raw + n + kHuge - (p + n)));
  (void)::madvise(p, n, MADV_HUGEPAGE);  // advice only: without it the pages are 4 KiB
  return p;
}

unsigned ClassOf(std::size_t cap) {
  return static_cast<unsigned>(std::countr_zero(cap / BlockPool::kMinBuffer));
}

}  // namespace

BlockPool::~BlockPool() {
  for (auto [p, n] : slabs_) ::munmap(p, n);
}

std::size_t BlockPool::CapacityFor(std::size_t n) { return std::bit_ceil(std::max(n, kMinBuffer)); }

std::uint8_t* BlockPool::Take(std::size_t cap) {
  std::uint8_t*& head = free_[ClassOf(cap)];
  if (head != nullptr) {
    std::uint8_t* p = head;
    std::memcpy(static_cast<void*>(&head), p, sizeof head);  // the next free buffer's address
    return p;
  }
  if (bump_left_ < cap) {
    // The rest of the slab goes to the free lists, largest pieces first (powers of two of at
    // least kMinBuffer; a smaller rest is left unused).
    while (bump_left_ >= kMinBuffer) {
      const std::size_t piece = std::min(std::bit_floor(bump_left_), kMaxPooled);
      Free(bump_, piece);
      bump_ += piece;
      bump_left_ -= piece;
    }
    const std::size_t n =
        slabs_.empty() ? kFirstSlab : std::min(slabs_.back().second * 2, kLargestSlab);
    bump_ = MapHuge(n);
    bump_left_ = n;
    slabs_.emplace_back(bump_, n);
  }
  std::uint8_t* p = bump_;
  bump_ += cap;
  bump_left_ -= cap;
  return p;
}

std::uint8_t* BlockPool::Grow(std::uint8_t* old, std::size_t old_cap, std::size_t used,
                              std::size_t n) {
  const std::size_t cap = CapacityFor(n);
  if (cap > kMaxPooled && old_cap > kMaxPooled) {  // a mapping of its own, moved by the kernel
    void* m = ::mremap(old, old_cap, cap, MREMAP_MAYMOVE);
    if (m == MAP_FAILED) throw std::bad_alloc();
    (void)::madvise(m, cap, MADV_HUGEPAGE);
    return static_cast<std::uint8_t*>(m);
  }
  std::uint8_t* p = cap > kMaxPooled ? MapHuge(cap) : Take(cap);
  if (used > 0) std::memcpy(p, old, used);
  Free(old, old_cap);
  return p;
}

void BlockPool::Free(std::uint8_t* p, std::size_t cap) {
  if (p == nullptr) return;
  if (cap > kMaxPooled) {
    ::munmap(p, cap);
    return;
  }
  std::uint8_t*& head = free_[ClassOf(cap)];
  std::memcpy(p, static_cast<const void*>(&head), sizeof head);
  head = p;
}

}  // namespace mmsb::query
