// The diff engine: exact byte masks of (before != now), SIMD through Highway with runtime
// dispatch (compiled for every attainable x86 target, the best one picked at first use), and a
// scalar reference with identical results.
//
// Work is organised by 64-byte granules, the shadow map's unit: the kernel produces one 64-bit
// mask per granule (bit j = byte j differs). A granule whose two images are equal costs two
// vector loads per vector lane-width and an OR, so an unchanged region streams at load speed.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "delta/diff.cc"
#include <bit>
#include <cstdint>
#include <cstring>

#include <hwy/cache_control.h>
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace mmsb {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Mask of the 64 bytes at a/b (a full granule).
HWY_INLINE std::uint64_t GranuleMask(const std::uint8_t* HWY_RESTRICT a,
                                     const std::uint8_t* HWY_RESTRICT b) {
  const hn::ScalableTag<std::uint8_t> d;
  const std::size_t lanes = hn::Lanes(d);
  if (lanes < 8 || 64 % lanes != 0) {
    std::uint64_t m = 0;
    for (unsigned j = 0; j < 64; ++j) m |= std::uint64_t{a[j] != b[j]} << j;
    return m;
  }
  // The compare masks are the answer: with 512-bit vectors one compare yields the granule's
  // 64 bits directly, with 256-bit two. (A separate any-difference test first only adds work.)
  std::uint8_t bits[64 / 8 + 8];
  for (std::size_t j = 0; j < 64; j += lanes) {
    hn::StoreMaskBits(d, hn::Ne(hn::LoadU(d, a + j), hn::LoadU(d, b + j)), bits + j / 8);
  }
  std::uint64_t m;
  std::memcpy(&m, bits, 8);
  return m;
}

// mask64[g] for every full granule g in [0, granules); returns the number of differing bytes.
std::size_t DiffMaskFull(const std::uint8_t* HWY_RESTRICT a, const std::uint8_t* HWY_RESTRICT b,
                         std::size_t granules, std::uint64_t* HWY_RESTRICT mask64) {
  std::size_t count = 0;
  for (std::size_t g = 0; g < granules; ++g) {
    const std::uint64_t m = GranuleMask(a + g * 64, b + g * 64);
    mask64[g] = m;
    count += static_cast<std::size_t>(std::popcount(m));
  }
  return count;
}

// As DiffMaskFull, for images far larger than the caches: the masks are written with
// non-temporal stores (x86 MOVNTI; eight consecutive ones fill a write-combining line), so the
// mask array, an eighth of an image, is not read from memory before it is overwritten (the
// read-for-ownership a normal store of a missing line costs) and does not evict the images'
// lines. The caller fences (DiffMask).
std::size_t DiffMaskFullStream(const std::uint8_t* HWY_RESTRICT a,
                               const std::uint8_t* HWY_RESTRICT b, std::size_t granules,
                               std::uint64_t* HWY_RESTRICT mask64) {
#if HWY_ARCH_X86 && HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
  std::size_t count = 0;
  for (std::size_t g = 0; g < granules; ++g) {
    const std::uint64_t m = GranuleMask(a + g * 64, b + g * 64);
    _mm_stream_si64(reinterpret_cast<long long*>(mask64 + g), static_cast<long long>(m));
    count += static_cast<std::size_t>(std::popcount(m));
  }
  return count;
#else
  return DiffMaskFull(a, b, granules, mask64);
#endif
}

// As DiffMaskFull for the granules idx[0, n) (increasing), scattered over a large page:
// mask64[k] for granule idx[k]. A sparsely written huge page has one marked granule per OS page
// or so, each a cache and TLB miss in both images; prefetching a few granules ahead overlaps
// those misses instead of paying them one after another.
std::size_t DiffMaskList(const std::uint8_t* HWY_RESTRICT a, const std::uint8_t* HWY_RESTRICT b,
                         const std::uint32_t* HWY_RESTRICT idx, std::size_t n,
                         std::uint64_t* HWY_RESTRICT mask64) {
  constexpr std::size_t kAhead = 16;
  for (std::size_t k = 0; k < n && k < kAhead; ++k) {
    hwy::Prefetch(a + std::size_t{idx[k]} * 64);
    hwy::Prefetch(b + std::size_t{idx[k]} * 64);
  }
  std::size_t count = 0;
  for (std::size_t k = 0; k < n; ++k) {
    if (k + kAhead < n) {
      hwy::Prefetch(a + std::size_t{idx[k + kAhead]} * 64);
      hwy::Prefetch(b + std::size_t{idx[k + kAhead]} * 64);
    }
    const std::size_t off = std::size_t{idx[k]} * 64;
    const std::uint64_t m = GranuleMask(a + off, b + off);
    mask64[k] = m;
    count += static_cast<std::size_t>(std::popcount(m));
  }
  return count;
}

// As DiffMaskList, with `twin` as the before image, and the diff applied to it in the same pass:
// each granule of `now` is loaded once; that load is compared with the twin, copied to
// snap[64 k, 64 k + 64) (the bytes the delta takes, so the delta and the twin hold the same
// values even while other threads store to `now`), and its differing bytes are stored into the
// twin (a masked store, while the twin's line is in cache). Granules are whole (64 bytes).
std::size_t DiffApplyList(std::uint8_t* HWY_RESTRICT twin, const std::uint8_t* HWY_RESTRICT now,
                          const std::uint32_t* HWY_RESTRICT idx, std::size_t n,
                          std::uint64_t* HWY_RESTRICT mask64, std::uint8_t* HWY_RESTRICT snap) {
  constexpr std::size_t kAhead = 16;
  const hn::ScalableTag<std::uint8_t> d;
  const std::size_t lanes = hn::Lanes(d);
  for (std::size_t k = 0; k < n && k < kAhead; ++k) {
    hwy::Prefetch(twin + std::size_t{idx[k]} * 64);
    hwy::Prefetch(now + std::size_t{idx[k]} * 64);
  }
  std::size_t count = 0;
  for (std::size_t k = 0; k < n; ++k) {
    if (k + kAhead < n) {
      hwy::Prefetch(twin + std::size_t{idx[k + kAhead]} * 64);
      hwy::Prefetch(now + std::size_t{idx[k + kAhead]} * 64);
    }
    const std::size_t off = std::size_t{idx[k]} * 64;
    std::uint8_t* out = snap + k * 64;
    std::uint64_t m = 0;
    if (lanes < 8 || 64 % lanes != 0) {
      std::memcpy(out, now + off, 64);
      for (unsigned j = 0; j < 64; ++j) {
        if (out[j] != twin[off + j]) {
          m |= std::uint64_t{1} << j;
          twin[off + j] = out[j];
        }
      }
    } else {
      std::uint8_t bits[64 / 8 + 8];
      for (std::size_t j = 0; j < 64; j += lanes) {
        const auto v = hn::LoadU(d, now + off + j);
        hn::StoreU(v, d, out + j);
        const auto ne = hn::Ne(v, hn::LoadU(d, twin + off + j));
        hn::StoreMaskBits(d, ne, bits + j / 8);
        hn::BlendedStore(v, ne, d, twin + off + j);
      }
      std::memcpy(&m, bits, 8);
    }
    mask64[k] = m;
    count += static_cast<std::size_t>(std::popcount(m));
  }
  return count;
}

// The name of the target this copy of the kernels was compiled for.
const char* CompiledTargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace mmsb
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include <algorithm>

#include "mmsb/delta.h"

#include "delta/delta_internal.h"

namespace mmsb {

HWY_EXPORT(DiffMaskFull);
HWY_EXPORT(DiffMaskFullStream);
HWY_EXPORT(DiffMaskList);
HWY_EXPORT(DiffApplyList);
HWY_EXPORT(CompiledTargetName);

namespace {

// Granules per block: masks for one block live on the stack (4 KiB of page per 64 granules).
constexpr std::size_t kBlockGranules = 64;

// From this many granules (8 MiB per image, 1 MiB of masks: beyond what a core's caches keep) on,
// DiffMask streams its masks past the caches.
constexpr std::size_t kStreamGranules = std::size_t{1} << 17;

// Highway picks its target at the first dynamic dispatch through a trampoline that asks the CPU
// (CPUID) which targets it supports, on every call until one updates the choice. A function
// pointer taken from HWY_DYNAMIC_DISPATCH before any call is that trampoline: a diff loop that
// calls through it pays a CPUID per block (a trap under some hypervisors: a 1 GiB page's first
// diff took 20 s). Choosing first makes the pointers the kernels themselves.
void ChooseTarget() {
  static const bool kChosen = [] {
    hwy::ChosenTarget& t = hwy::GetChosenTarget();
    if (!t.IsInitialized()) t.Update(hwy::SupportedTargets());
    return true;
  }();
  (void)kChosen;
}

// Granules gathered per DiffMaskList call by the sparse path of DiffPage.
constexpr std::size_t kListGranules = 512;

// Whether all 8 bytes of w are non-zero.
bool NoZeroByte(std::uint64_t w) {
  constexpr std::uint64_t kLow = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  return ((w - kLow) & ~w & kHigh) == 0;
}

std::uint64_t ScalarMask(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) {
  std::uint64_t m = 0;
  for (std::size_t j = 0; j < n; ++j) m |= std::uint64_t{a[j] != b[j]} << j;
  return m;
}

void CheckSameSize(std::span<const std::uint8_t> before, std::span<const std::uint8_t> now) {
  MMSB_CHECK(before.size() == now.size());
  MMSB_CHECK(now.size() < (std::size_t{1} << 32));
}

}  // namespace

std::size_t DiffMask(std::span<const std::uint8_t> before, std::span<const std::uint8_t> now,
                     std::span<std::uint64_t> mask64) {
  MMSB_CHECK(before.size() == now.size());
  const std::size_t full = now.size() / 64;
  const std::size_t tail = now.size() % 64;
  MMSB_CHECK(mask64.size() >= full + (tail != 0));
  std::size_t count = 0;
  if (full >= kStreamGranules) {
    count =
        HWY_DYNAMIC_DISPATCH(DiffMaskFullStream)(before.data(), now.data(), full, mask64.data());
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_sfence();  // the streamed masks are visible before DiffMask returns
#endif
  } else {
    count = HWY_DYNAMIC_DISPATCH(DiffMaskFull)(before.data(), now.data(), full, mask64.data());
  }
  if (tail != 0) {
    const std::uint64_t m = ScalarMask(before.data() + full * 64, now.data() + full * 64, tail);
    mask64[full] = m;
    count += static_cast<std::size_t>(std::popcount(m));
  }
  return count;
}

Delta Diff(PageId page, Epoch base_epoch, std::span<const std::uint8_t> before,
           std::span<const std::uint8_t> now) {
  CheckSameSize(before, now);
  return delta_internal::DiffPage(page, base_epoch, before.data(), now.data(),
                                  static_cast<std::uint32_t>(now.size()), nullptr, nullptr);
}

namespace delta_internal {

Delta DiffPage(PageId page, Epoch base_epoch, const std::uint8_t* before, const std::uint8_t* now,
               std::uint32_t size, const std::uint8_t* touched, std::uint8_t* apply) {
  MMSB_CHECK(apply == nullptr || (touched != nullptr && apply == before));
  ChooseTarget();
  const std::size_t full = size / 64;
  const std::size_t tail = size % 64;
  DeltaBuilder b(page, base_epoch, size);
  std::uint64_t masks[kListGranules > kBlockGranules ? kListGranules : kBlockGranules];
  const auto full_fn = HWY_DYNAMIC_DISPATCH(DiffMaskFull);
  const auto list_fn = HWY_DYNAMIC_DISPATCH(DiffMaskList);
  const auto apply_fn = HWY_DYNAMIC_DISPATCH(DiffApplyList);
  // Touched granules of partly touched blocks wait here, in increasing order, and are diffed a
  // list at a time (prefetched ahead); the list is flushed before any later granule is added.
  // Applying, every touched granule goes through the list: its bytes are read once, into `snap`.
  std::uint32_t list[kListGranules];
  thread_local std::vector<std::uint8_t> snap_buffer;
  std::uint8_t* snap = nullptr;
  if (apply != nullptr) {
    if (snap_buffer.size() < kListGranules * 64) snap_buffer.resize(kListGranules * 64);
    snap = snap_buffer.data();
  }
  std::size_t listed = 0;
  auto flush = [&] {
    if (listed == 0) return;
    const std::size_t changed = apply != nullptr ? apply_fn(apply, now, list, listed, masks, snap)
                                                 : list_fn(before, now, list, listed, masks);
    if (changed != 0) {
      for (std::size_t k = 0; k < listed; ++k) {
        if (masks[k] != 0) {
          const std::size_t off = std::size_t{list[k]} * 64;
          b.AddMask64(static_cast<std::uint32_t>(off), masks[k],
                      apply != nullptr ? snap + k * 64 : now + off);
        }
      }
    }
    listed = 0;
  };
  for (std::size_t g0 = 0; g0 < full; g0 += kBlockGranules) {
    const std::size_t n = std::min(kBlockGranules, full - g0);
    if (touched != nullptr) {
      // Skip untouched blocks without a call: 64 shadow bytes at a time, then 8.
      std::uint64_t w[kBlockGranules / 8] = {};
      std::memcpy(w, touched + g0, n);
      std::uint64_t any = 0;
      for (std::uint64_t x : w) any |= x;
      if (any == 0) continue;
      bool all = n == kBlockGranules && apply == nullptr;
      for (std::size_t i = 0; all && i < n / 8; ++i) all = NoZeroByte(w[i]);
      if (!all) {
        for (std::size_t i = 0; i < n; i += 8) {
          if (w[i / 8] == 0) continue;
          for (std::size_t j = i; j < std::min(n, i + 8); ++j) {
            if (touched[g0 + j] == 0) continue;
            if (listed == kListGranules) flush();
            list[listed++] = static_cast<std::uint32_t>(g0 + j);
          }
        }
        continue;
      }
      flush();  // a wholly touched block streams: diffed in place, after the listed granules
    }
    if (full_fn(before + g0 * 64, now + g0 * 64, n, masks) == 0) continue;
    for (std::size_t i = 0; i < n; ++i) {
      if (masks[i] != 0)
        b.AddMask64(static_cast<std::uint32_t>((g0 + i) * 64), masks[i], now + (g0 + i) * 64);
    }
  }
  flush();
  if (tail != 0 && (touched == nullptr || touched[full] != 0)) {
    const std::size_t off = full * 64;
    std::uint8_t t[64];
    std::memcpy(t, now + off, tail);  // one read, for the delta and the twin alike
    const std::uint64_t m = ScalarMask(before + off, t, tail);
    b.AddMask64(static_cast<std::uint32_t>(off), m, t);
    if (apply != nullptr) {
      for (std::size_t j = 0; j < tail; ++j) {
        if ((m >> j) & 1) apply[off + j] = t[j];
      }
    }
  }
  return b.Finish();
}

Delta DiffPageFromZeros(PageId page, Epoch base_epoch, const std::uint8_t* now, std::uint32_t size,
                        const std::uint8_t* present) {
  static_assert(kBlockGranules * 64 == 4096, "a block is one 4 KiB page");
  alignas(64) static const std::uint8_t kZeroBlock[kBlockGranules * 64] = {};
  const std::size_t full = size / 64;
  const std::size_t tail = size % 64;
  ChooseTarget();
  DeltaBuilder b(page, base_epoch, size);
  std::uint64_t masks[kBlockGranules];
  const auto full_fn = HWY_DYNAMIC_DISPATCH(DiffMaskFull);
  for (std::size_t g0 = 0; g0 < full; g0 += kBlockGranules) {
    if (present != nullptr && present[g0 / kBlockGranules] == 0) continue;
    const std::size_t n = std::min(kBlockGranules, full - g0);
    if (full_fn(kZeroBlock, now + g0 * 64, n, masks) == 0) continue;
    for (std::size_t i = 0; i < n; ++i) {
      if (masks[i] != 0)
        b.AddMask64(static_cast<std::uint32_t>((g0 + i) * 64), masks[i], now + (g0 + i) * 64);
    }
  }
  if (tail != 0 && (present == nullptr || present[full / kBlockGranules] != 0)) {
    const std::size_t off = full * 64;
    b.AddMask64(static_cast<std::uint32_t>(off), ScalarMask(kZeroBlock, now + off, tail),
                now + off);
  }
  return b.Finish();
}

}  // namespace delta_internal

Delta DiffScalar(PageId page, Epoch base_epoch, std::span<const std::uint8_t> before,
                 std::span<const std::uint8_t> now) {
  CheckSameSize(before, now);
  DeltaBuilder b(page, base_epoch, static_cast<std::uint32_t>(now.size()));
  std::size_t i = 0;
  const std::size_t n = now.size();
  while (i < n) {
    while (i < n && before[i] == now[i]) ++i;
    std::size_t j = i;
    while (j < n && before[j] != now[j]) ++j;
    if (j > i)
      b.AddRun(static_cast<std::uint32_t>(i), now.data() + i, static_cast<std::uint32_t>(j - i));
    i = j;
  }
  return b.Finish();
}

Delta DiffGranules(PageId page, Epoch base_epoch, std::span<const std::uint8_t> before,
                   std::span<const std::uint8_t> now, std::span<const std::uint8_t> touched) {
  CheckSameSize(before, now);
  MMSB_CHECK(touched.size() >= GranuleCount(now.size()));
  return delta_internal::DiffPage(page, base_epoch, before.data(), now.data(),
                                  static_cast<std::uint32_t>(now.size()), touched.data(), nullptr);
}

const char* DiffTargetName() { return HWY_DYNAMIC_DISPATCH(CompiledTargetName)(); }

}  // namespace mmsb

#endif  // HWY_ONCE
