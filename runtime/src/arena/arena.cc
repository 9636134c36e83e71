#include "arena/arena.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>

#include "mmsb/types.h"

namespace mmsb {
namespace {

constexpr std::size_t kOsPage = 4096;

std::size_t RoundUp(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }

Expected<std::uint8_t*> Reserve(std::size_t bytes, const char* what, std::uintptr_t hint = 0) {
  // The hint is an address near the program image (Arena::Near), never dereferenced: mmap only
  // reads it as a placement preference.
  void* p = mmap(reinterpret_cast<void*>(hint),  // NOLINT(performance-no-int-to-ptr)
                 bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return OutOfMemory("cannot reserve " + std::to_string(bytes >> 20) +
                       " MiB of address space for the " + what + ": " + std::strerror(errno) +
                       " (lower Options::arena_bytes or MMSB_ARENA_BYTES)");
  }
  return static_cast<std::uint8_t*>(p);
}

// The distance between [a, a + n) and [lo, hi), 0 when they touch or overlap.
std::uintptr_t Distance(std::uintptr_t a, std::size_t n, std::uintptr_t lo, std::uintptr_t hi) {
  if (a + n <= lo) return lo - (a + n);
  if (hi <= a) return a - hi;
  return 0;
}

// Reserves the data range: below `near`, else above it, else anywhere (a hint, never MAP_FIXED:
// an address in use is never replaced). Sets *close when it lies within kNearGap of `near`.
Expected<std::uint8_t*> ReserveData(std::size_t capacity, Arena::Near near, bool* close) {
  *close = false;
  if (near.hi > near.lo) {
    std::uintptr_t hints[2] = {0, 0};
    if (near.lo > capacity + (std::uintptr_t{1} << 20))
      hints[0] = (near.lo & ~std::uintptr_t{kOsPage - 1}) - capacity;
    if (near.hi + Arena::kNearGap + capacity > near.hi)  // no wrap
      hints[1] = RoundUp(near.hi, kOsPage) + Arena::kNearGap / 2;
    for (std::uintptr_t hint : hints) {
      if (hint == 0) continue;
      auto data = Reserve(capacity, "page arena", hint);
      if (!data.ok()) return data.status();
      const auto a = reinterpret_cast<std::uintptr_t>(*data);
      if (Distance(a, capacity, near.lo, near.hi) <= Arena::kNearGap) {
        *close = true;
        return data;
      }
      munmap(*data, capacity);
    }
  }
  return Reserve(capacity, "page arena");
}

}  // namespace

Expected<std::size_t> Arena::CapacityFromEnv(std::size_t configured) {
  const char* env = std::getenv("MMSB_ARENA_BYTES");
  if (env == nullptr || env[0] == '\0') return configured;
  const std::string v(env);
  std::size_t digits = 0;
  while (digits < v.size() && v[digits] >= '0' && v[digits] <= '9') ++digits;
  int shift = 0;
  const std::string suffix = v.substr(digits);
  if (suffix == "K" || suffix == "k")
    shift = 10;
  else if (suffix == "M" || suffix == "m")
    shift = 20;
  else if (suffix == "G" || suffix == "g")
    shift = 30;
  else if (suffix == "T" || suffix == "t")
    shift = 40;
  else if (!suffix.empty())
    digits = 0;
  std::uint64_t n = 0;
  bool ok = digits > 0 && digits <= 15;
  for (std::size_t i = 0; ok && i < digits; ++i) n = n * 10 + static_cast<unsigned>(v[i] - '0');
  ok = ok && n > 0 && (n << shift >> shift) == n && (n << shift) <= (std::uint64_t{1} << 46);
  if (!ok) {
    return InvalidArgument("MMSB_ARENA_BYTES='" + v +
                           "' is not a size: bytes, or a number with K, M, G or T (e.g. 4G), "
                           "between 1 byte and 64 TiB");
  }
  return static_cast<std::size_t>(n << shift);
}

int Arena::ClassFor(std::size_t size) {
  if (size > kSmallMax) return -1;
  if (size <= 64) return 0;
  return static_cast<int>(std::bit_width(size - 1)) - 6;  // the smallest c with 64 << c >= size
}

Expected<Arena*> Arena::Create(std::size_t capacity, Near near) {
  if (capacity < kSlabBytes) return InvalidArgument("arena capacity must be at least 256 KiB");
  capacity = RoundUp(capacity, kOsPage);
  bool close = false;
  auto data = ReserveData(capacity, near, &close);
  if (!data.ok()) return data.status();
  // The shadow map covers the data range, and the near range with the gap between when close.
  std::uintptr_t lo = reinterpret_cast<std::uintptr_t>(*data);
  std::uintptr_t hi = lo + capacity;
  if (close) {
    lo = std::min(lo, near.lo & ~std::uintptr_t{kGranuleSize - 1});
    hi = std::max(hi, RoundUp(near.hi, kGranuleSize));
  }
  const std::size_t shadow_bytes = RoundUp((hi - lo) >> kGranuleShift, kOsPage);
  auto twin = Reserve(capacity, "page twins");
  if (!twin.ok()) {
    munmap(*data, capacity);
    return twin.status();
  }
  auto shadow = Reserve(shadow_bytes, "shadow map");
  if (!shadow.ok()) {
    munmap(*data, capacity);
    munmap(*twin, capacity);
    return shadow.status();
  }
  auto owner = Reserve(RoundUp((capacity >> 6) * sizeof(void*), kOsPage), "page owner table");
  auto slab = Reserve(RoundUp(capacity / kSlabBytes, kOsPage), "slab table");
  if (!owner.ok() || !slab.ok()) {
    munmap(*data, capacity);
    munmap(*twin, capacity);
    munmap(*shadow, shadow_bytes);
    if (owner.ok()) munmap(*owner, RoundUp((capacity >> 6) * sizeof(void*), kOsPage));
    return !owner.ok() ? owner.status() : slab.status();
  }
  auto* a = new Arena();
  a->owner_ = reinterpret_cast<std::atomic<void*>*>(*owner);
  a->slab_class_ = reinterpret_cast<std::atomic<std::uint8_t>*>(*slab);
  a->data_ = *data;
  a->twin_ = *twin;
  a->cover_base_ = lo;
  a->cover_span_ = hi - lo;
  a->cover_shadow_ = *shadow;
  a->cover_shadow_bytes_ = shadow_bytes;
  a->covers_near_ = close;
  a->shadow_ = *shadow + ((a->base() - lo) >> kGranuleShift);
  a->capacity_ = capacity;
  return a;
}

Arena::~Arena() {
  if (data_) munmap(data_, capacity_);
  if (twin_) munmap(twin_, capacity_);
  if (cover_shadow_) munmap(cover_shadow_, cover_shadow_bytes_);
  if (owner_) munmap(owner_, RoundUp((capacity_ >> 6) * sizeof(void*), kOsPage));
  if (slab_class_) munmap(slab_class_, RoundUp(capacity_ / kSlabBytes, kOsPage));
}

Expected<std::uint8_t*> Arena::Bump(std::size_t bytes, std::size_t align) {
  std::size_t cur = bump_.load(std::memory_order_relaxed);
  for (;;) {
    const std::size_t start = RoundUp(cur, align);
    if (start + bytes > capacity_ || start + bytes < start) {
      return OutOfMemory("page arena exhausted: " + std::to_string(capacity_ >> 20) +
                         " MiB reserved (raise Options::arena_bytes or MMSB_ARENA_BYTES)");
    }
    if (bump_.compare_exchange_weak(cur, start + bytes, std::memory_order_relaxed)) {
      return data_ + start;
    }
  }
}

Status Arena::RefillClass(int c) {
  auto slab = Bump(kSlabBytes, kSlabBytes);
  if (!slab.ok()) return slab.status();
  // The table starts zeroed; store class+1 so 0 means "not a small slab".
  slab_class_[(*slab - data_) / kSlabBytes].store(static_cast<std::uint8_t>(c + 1),
                                                  std::memory_order_release);
  const std::size_t sz = ClassSize(c);
  auto& list = small_free_[c];
  const std::size_t n = kSlabBytes / sz;
  list.reserve(list.size() + n);
  // Push in reverse so slots are handed out in address order (friendlier to prefetchers).
  for (std::size_t i = n; i-- > 0;) list.push_back({*slab + i * sz, true});
  return Status::Ok();
}

Expected<Arena::Block> Arena::Allocate(std::size_t size, bool zeroed) {
  const int c = ClassFor(size);
  Block b;
  if (c >= 0) {
    FreeSlot slot;
    {
      MutexLock lock(&mu_);
      auto& list = small_free_[c];
      if (list.empty()) MMSB_RETURN_IF_ERROR(RefillClass(c));
      slot = list.back();
      list.pop_back();
    }
    b = {slot.data, ClassSize(c), static_cast<std::uint8_t>(c), slot.zero};
  } else {
    const std::size_t need = RoundUp(size, kLargeAlign);
    std::uint8_t* p = nullptr;
    std::size_t got = need;
    {
      MutexLock lock(&mu_);
      auto it = large_free_.lower_bound(need);
      if (it != large_free_.end()) {
        p = it->second;
        got = it->first;
        large_free_.erase(it);
        if (got > need) {  // split: keep the tail for later
          large_free_.emplace(got - need, p + need);
          got = need;
        }
      }
    }
    if (p == nullptr) {
      auto r = Bump(need, kLargeAlign);
      if (!r.ok()) return r.status();
      p = *r;
    }
    // Large blocks are returned to the OS on free, so they come back zero.
    b = {p, got, kLargeClass, true};
  }
  if (zeroed && !b.zero) {
    // The whole slot, not `size` bytes: `zero` speaks for the slot, and a later, larger page on
    // it trusts the flag (only small slots get here; large blocks come back zero).
    std::memset(b.data, 0, b.capacity);
    b.zero = true;
  }
  return b;
}

bool Arena::MayHoldData(const std::uint8_t* p, std::size_t n, std::vector<std::uint8_t>* out) {
  constexpr std::size_t kPage = 4096;
  const std::size_t pages = (n + kPage - 1) / kPage;
  out->assign(pages, 1);
  const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  // One 64-bit entry per page: bit 63 present, bit 62 swapped (Documentation/admin-guide/mm/
  // pagemap.rst). Read in chunks of 8192 entries (32 MiB of address space).
  std::uint64_t entries[8192];
  const std::uint64_t first = reinterpret_cast<std::uintptr_t>(p) / kPage;
  bool ok = true;
  for (std::size_t k = 0; k < pages && ok;) {
    const std::size_t want = std::min<std::size_t>(pages - k, std::size(entries));
    const ssize_t got = ::pread(fd, entries, want * sizeof entries[0],
                                static_cast<off_t>((first + k) * sizeof entries[0]));
    if (got <= 0 || got % sizeof entries[0] != 0) {
      ok = false;
      break;
    }
    const std::size_t m = static_cast<std::size_t>(got) / sizeof entries[0];
    for (std::size_t i = 0; i < m; ++i) (*out)[k + i] = (entries[i] >> 62) != 0;
    k += m;
  }
  ::close(fd);
  if (!ok) out->assign(pages, 1);
  return ok;
}

void Arena::Free(const Block& block, bool may_be_nonzero) {
  // Shadow marks of the block are cleared so a future page starts with no stale touches.
  std::memset(ShadowOf(block.data), 0, GranuleCount(block.capacity));
  if (block.size_class == kLargeClass) {
    madvise(block.data, block.capacity, MADV_DONTNEED);
    madvise(TwinOf(block.data), block.capacity, MADV_DONTNEED);
    MutexLock lock(&mu_);
    large_free_.emplace(block.capacity, block.data);
    return;
  }
  MutexLock lock(&mu_);
  small_free_[block.size_class].push_back({block.data, !may_be_nonzero});
}

void Arena::SetOwner(const Block& block, void* owner) {
  if (block.size_class == kLargeClass) {
    MutexLock lock(&mu_);
    large_owner_[reinterpret_cast<std::uintptr_t>(block.data)] = {block.capacity, owner};
  }
  owner_[static_cast<std::size_t>(block.data - data_) >> 6].store(owner, std::memory_order_release);
}

void Arena::ClearOwner(const Block& block) {
  owner_[static_cast<std::size_t>(block.data - data_) >> 6].store(nullptr,
                                                                  std::memory_order_release);
  if (block.size_class == kLargeClass) {
    MutexLock lock(&mu_);
    large_owner_.erase(reinterpret_cast<std::uintptr_t>(block.data));
  }
}

void* Arena::FindOwner(const void* p) {
  const std::uintptr_t off = reinterpret_cast<std::uintptr_t>(p) - base();
  if (off >= capacity_ || off >= used()) return nullptr;
  const std::uint8_t tag = slab_class_[off / kSlabBytes].load(std::memory_order_acquire);
  if (tag != 0) {
    const std::size_t sz = ClassSize(tag - 1);
    const std::size_t slab_start = off / kSlabBytes * kSlabBytes;
    const std::size_t start = slab_start + (off - slab_start) / sz * sz;
    return owner_[start >> 6].load(std::memory_order_acquire);
  }
  MutexLock lock(&mu_);
  auto it = large_owner_.upper_bound(reinterpret_cast<std::uintptr_t>(p));
  if (it == large_owner_.begin()) return nullptr;
  --it;
  if (reinterpret_cast<std::uintptr_t>(p) - it->first < it->second.first) return it->second.second;
  return nullptr;
}

}  // namespace mmsb
