// Per-thread bodies of the custom CUDA kernels, shared by the kernels (cuda/kernels.cu) and a host
// emulation that runs them sequentially in unit tests
// (tests/unit/kernels/kernel_emulation_test.cc).
//
// Every body is written as "thread `tid` of `nthreads` in a grid-stride loop" and touches only its
// own outputs, so running the threads one after another on the host computes exactly what the
// device computes in parallel. That is how the index arithmetic, tails, partial granules and page
// boundaries of the kernels are verified byte for byte on machines without a GPU; the kernels add
// nothing but the launch.
//
// Memory-bound habits: 16-byte vector loads and stores (Word16 is uint4 under nvcc) where the
// pointers are 16-byte aligned, a byte path only for tails and misaligned ranges, loops with a
// trip count that is the same for every thread of a warp (per-byte choices are predicated, not
// branched), and enough independent loads per thread to keep bytes in flight.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mmsb/device_layout.h"
#include "mmsb/types.h"

// A body both backends compile: a forced-inline host and device function under nvcc, a plain
// inline function in the CPU reference.
#if defined(__CUDACC__)
#define MMSB_HOST_DEVICE_INLINE __host__ __device__ __forceinline__
#include <vector_types.h>
#else
#define MMSB_HOST_DEVICE_INLINE inline
#endif

// `#pragma unroll` for nvcc's device pass and clang; the GCC host pass of nvcc does not know it.
#if defined(__CUDA_ARCH__) || defined(__clang__)
#define MMSB_UNROLL _Pragma("unroll")
#else
#define MMSB_UNROLL
#endif

namespace mmsb::kernels {

#if defined(__CUDACC__)
using Word16 = uint4;
#else
struct alignas(16) Word16 {
  std::uint32_t x, y, z, w;
};
#endif

MMSB_HOST_DEVICE_INLINE int Popc64(std::uint64_t v) {
#if defined(__CUDA_ARCH__)
  return __popcll(v);
#else
  return __builtin_popcountll(v);
#endif
}

// Index of the lowest set bit; v != 0.
MMSB_HOST_DEVICE_INLINE int Ctz64(std::uint64_t v) {
#if defined(__CUDA_ARCH__)
  return __ffsll(static_cast<long long>(v)) - 1;
#else
  return __builtin_ctzll(v);
#endif
}

MMSB_HOST_DEVICE_INLINE bool Aligned16(const void* p) {
  return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0;
}

MMSB_HOST_DEVICE_INLINE std::uint32_t Bits(const Word16& w, int i) {
  return i == 0 ? w.x : i == 1 ? w.y : i == 2 ? w.z : w.w;
}

// ---- Dense masked merge ------------------------------------------------------------------------

MMSB_HOST_DEVICE_INLINE Word16 Merge(const Word16& p, const Word16& d, const Word16& m) {
  Word16 r;
  r.x = (p.x & ~m.x) | (d.x & m.x);
  r.y = (p.y & ~m.y) | (d.y & m.y);
  r.z = (p.z & ~m.z) | (d.z & m.z);
  r.w = (p.w & ~m.w) | (d.w & m.w);
  return r;
}

// 16-byte words [0, words): out = (page & ~mask) | (delta & mask). Thread tid handles words
// tid, tid + nthreads, ... in groups of kUnroll: all loads of a group are issued before its stores
// (kUnroll * 48 bytes in flight per thread), and a warp's accesses are contiguous. out may alias
// page: each word is read before it is written, by the same thread.
template <int kUnroll>
MMSB_HOST_DEVICE_INLINE void MaskedMergeWords(Word16* out, const Word16* page, const Word16* delta,
                                              const Word16* mask, std::uint64_t words,
                                              std::uint64_t tid, std::uint64_t nthreads) {
  for (std::uint64_t base = tid; base < words; base += kUnroll * nthreads) {
    Word16 p[kUnroll], d[kUnroll], m[kUnroll];
    MMSB_UNROLL
    for (int k = 0; k < kUnroll; ++k) {
      const std::uint64_t i = base + k * nthreads;
      if (i < words) {
        p[k] = page[i];
        d[k] = delta[i];
        m[k] = mask[i];
      }
    }
    MMSB_UNROLL
    for (int k = 0; k < kUnroll; ++k) {
      const std::uint64_t i = base + k * nthreads;
      if (i < words) out[i] = Merge(p[k], d[k], m[k]);
    }
  }
}

// Bytes [begin, end): the tail after the vector words, or a whole misaligned range.
MMSB_HOST_DEVICE_INLINE void MaskedMergeBytes(std::uint8_t* out, const std::uint8_t* page,
                                              const std::uint8_t* delta, const std::uint8_t* mask,
                                              std::uint64_t begin, std::uint64_t end,
                                              std::uint64_t tid, std::uint64_t nthreads) {
  for (std::uint64_t i = begin + tid; i < end; i += nthreads) {
    out[i] = static_cast<std::uint8_t>((page[i] & ~mask[i]) | (delta[i] & mask[i]));
  }
}

MMSB_HOST_DEVICE_INLINE bool AllAligned16(const void* a, const void* b, const void* c,
                                          const void* d) {
  return Aligned16(a) && Aligned16(b) && Aligned16(c) && Aligned16(d);
}

// The whole merge of `bytes` bytes: 16-byte words then the tail when every pointer is aligned,
// bytes otherwise. The choice is the same for every thread.
template <int kUnroll>
MMSB_HOST_DEVICE_INLINE void MaskedMergeAll(std::uint8_t* out, const std::uint8_t* page,
                                            const std::uint8_t* delta, const std::uint8_t* mask,
                                            std::uint64_t bytes, std::uint64_t tid,
                                            std::uint64_t nthreads) {
  if (AllAligned16(out, page, delta, mask)) {
    const std::uint64_t words = bytes / 16;
    MaskedMergeWords<kUnroll>(reinterpret_cast<Word16*>(out), reinterpret_cast<const Word16*>(page),
                              reinterpret_cast<const Word16*>(delta),
                              reinterpret_cast<const Word16*>(mask), words, tid, nthreads);
    MaskedMergeBytes(out, page, delta, mask, words * 16, bytes, tid, nthreads);
  } else {
    MaskedMergeBytes(out, page, delta, mask, 0, bytes, tid, nthreads);
  }
}

// ---- Byte-difference masks ---------------------------------------------------------------------

// Bit i (0..3) set when byte i of x is non-zero. Branch-free: a byte's low seven bits plus 0x7f
// carry into its bit 7 exactly when they are non-zero (never into the next byte), the multiply
// gathers bits 0, 8, 16, 24 into bits 24..27 without collisions.
MMSB_HOST_DEVICE_INLINE std::uint32_t NonZeroBytes4(std::uint32_t x) {
  const std::uint32_t t = ((((x & 0x7f7f7f7fu) + 0x7f7f7f7fu) | x) >> 7) & 0x01010101u;
  return (t * 0x01020408u) >> 24;
}

// Mask of the bytes where a[0, len) and b[0, len) differ (len <= 64). 16-byte loads when the
// granule is whole and both pointers are aligned; bytes otherwise (a partial last granule).
MMSB_HOST_DEVICE_INLINE std::uint64_t CompareGranule(const std::uint8_t* a, const std::uint8_t* b,
                                                     std::uint32_t len) {
  std::uint64_t m = 0;
  if (len == 64 && Aligned16(a) && Aligned16(b)) {
    const Word16* wa = reinterpret_cast<const Word16*>(a);
    const Word16* wb = reinterpret_cast<const Word16*>(b);
    Word16 va[4], vb[4];
    MMSB_UNROLL
    for (int q = 0; q < 4; ++q) {
      va[q] = wa[q];
      vb[q] = wb[q];
    }
    MMSB_UNROLL
    for (int q = 0; q < 4; ++q) {
      MMSB_UNROLL
      for (int i = 0; i < 4; ++i) {
        const std::uint32_t nz = NonZeroBytes4(Bits(va[q], i) ^ Bits(vb[q], i));
        m |= static_cast<std::uint64_t>(nz) << (16 * q + 4 * i);
      }
    }
    return m;
  }
  for (std::uint32_t j = 0; j < len; ++j) m |= static_cast<std::uint64_t>(a[j] != b[j]) << j;
  return m;
}

// CompareMask over one buffer of `bytes` bytes: one granule (64 bytes) per thread step.
MMSB_HOST_DEVICE_INLINE void CompareMaskGranules(const std::uint8_t* a, const std::uint8_t* b,
                                                 std::uint64_t bytes, std::uint64_t* mask64,
                                                 std::uint64_t tid, std::uint64_t nthreads) {
  const std::uint64_t granules = (bytes + kGranuleSize - 1) >> kGranuleShift;
  for (std::uint64_t g = tid; g < granules; g += nthreads) {
    const std::uint64_t off = g * 64;
    const std::uint32_t len = static_cast<std::uint32_t>(bytes - off < 64 ? bytes - off : 64);
    mask64[g] = CompareGranule(a + off, b + off, len);
  }
}

// ---- Merging selected bytes into a granule -----------------------------------------------------

// Writes src[0..popc(m)) into the bytes of dst[0, len) selected by m, in order (len <= 64, bits at
// or past len are clear). A whole aligned granule is loaded as four 16-byte words, merged in
// registers (the byte positions are compile-time after unrolling; each byte's choice is a
// predicated select, so the warp does not diverge) and stored as four words.
MMSB_HOST_DEVICE_INLINE void ExpandIntoGranule(std::uint8_t* dst, std::uint32_t len,
                                               std::uint64_t m, const std::uint8_t* src) {
  if (len == 64 && Aligned16(dst)) {
    Word16* w = reinterpret_cast<Word16*>(dst);
    std::uint32_t v[16];
    MMSB_UNROLL
    for (int q = 0; q < 4; ++q) {
      const Word16 x = w[q];
      v[4 * q + 0] = x.x;
      v[4 * q + 1] = x.y;
      v[4 * q + 2] = x.z;
      v[4 * q + 3] = x.w;
    }
    std::uint32_t k = 0;
    MMSB_UNROLL
    for (int j = 0; j < 64; ++j) {
      if ((m >> j) & 1u) {
        const std::uint32_t shift = 8 * (j & 3);
        v[j >> 2] = (v[j >> 2] & ~(0xffu << shift)) | (static_cast<std::uint32_t>(src[k]) << shift);
        ++k;
      }
    }
    MMSB_UNROLL
    for (int q = 0; q < 4; ++q) {
      Word16 x;
      x.x = v[4 * q + 0];
      x.y = v[4 * q + 1];
      x.z = v[4 * q + 2];
      x.w = v[4 * q + 3];
      w[q] = x;
    }
    return;
  }
  std::uint32_t k = 0;
  for (std::uint32_t j = 0; j < len; ++j) {
    if ((m >> j) & 1u) dst[j] = src[k++];
  }
}

// Writes the bytes of src[0, len) selected by m to dst[0..popc(m)), in order. The inverse of
// ExpandIntoGranule; the granule is read with 16-byte loads when whole and aligned.
MMSB_HOST_DEVICE_INLINE void CompactFromGranule(std::uint8_t* dst, const std::uint8_t* src,
                                                std::uint32_t len, std::uint64_t m) {
  if (len == 64 && Aligned16(src)) {
    const Word16* w = reinterpret_cast<const Word16*>(src);
    std::uint32_t v[16];
    MMSB_UNROLL
    for (int q = 0; q < 4; ++q) {
      const Word16 x = w[q];
      v[4 * q + 0] = x.x;
      v[4 * q + 1] = x.y;
      v[4 * q + 2] = x.z;
      v[4 * q + 3] = x.w;
    }
    std::uint32_t k = 0;
    MMSB_UNROLL
    for (int j = 0; j < 64; ++j) {
      if ((m >> j) & 1u) {
        dst[k] = static_cast<std::uint8_t>(v[j >> 2] >> (8 * (j & 3)));
        ++k;
      }
    }
    return;
  }
  std::uint32_t k = 0;
  for (std::uint32_t j = 0; j < len; ++j) {
    if ((m >> j) & 1u) dst[k++] = src[j];
  }
}

// ---- Batched dense apply -----------------------------------------------------------------------

// The dense segment owning granule g: the last one whose first_granule <= g (segments are sorted).
MMSB_HOST_DEVICE_INLINE std::uint32_t DenseSegmentOf(const DenseSegment* dense, std::uint32_t count,
                                                     std::uint64_t g) {
  std::uint32_t lo = 0, hi = count;  // answer in [lo, hi)
  while (hi - lo > 1) {
    const std::uint32_t mid = lo + (hi - lo) / 2;
    if (dense[mid].first_granule <= g) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// One granule of the batch's dense part per thread step. The granule's first payload byte is its
// tile's prefix plus the popcounts of the tile's earlier granules: a loop of kTileGranules steps
// for every thread (uniform trip count; the words are shared by the warp and hit in L1).
MMSB_HOST_DEVICE_INLINE void DenseApplyGranules(const ApplyBatchView& b, std::uint64_t tid,
                                                std::uint64_t nthreads) {
  for (std::uint64_t g = tid; g < b.num_granules; g += nthreads) {
    const std::uint64_t m = b.masks[g];
    if (m == 0) continue;
    const std::uint64_t tile = g / kTileGranules;
    std::uint64_t k = b.tile_prefix[tile];
    const std::uint64_t tile_first = tile * kTileGranules;
    for (std::uint32_t j = 0; j < kTileGranules; ++j) {
      const std::uint64_t gj = tile_first + j;
      k += gj < g ? static_cast<std::uint64_t>(Popc64(b.masks[gj])) : 0;
    }
    const DenseSegment& seg = b.dense[DenseSegmentOf(b.dense, b.num_dense, g)];
    const std::uint64_t off = (g - seg.first_granule) * 64;
    if (off >= seg.size) continue;  // padding (its mask is zero anyway)
    const std::uint32_t len = static_cast<std::uint32_t>(seg.size - off < 64 ? seg.size - off : 64);
    const ApplyTarget& t = b.targets[seg.target];
    ExpandIntoGranule(t.primary + off, len, m, b.payload + k);
    if (t.secondary != nullptr) ExpandIntoGranule(t.secondary + off, len, m, b.payload + k);
  }
}

// ---- Device-side diff to runs ------------------------------------------------------------------
// Three steps: DiffCountGranules (masks + per-granule counts), an exclusive scan of the counts
// (cub::DeviceScan on the device, a loop in the emulation), DiffEmitGranules (runs + bytes).
// A count packs (run starts << 32) | changed bytes, so one 64-bit scan yields both prefixes; the
// caller keeps the compared bytes per call below 2^32 so the low half cannot carry.

MMSB_HOST_DEVICE_INLINE std::uint32_t DiffTargetOf(const DiffTarget* t, std::uint32_t count,
                                                   std::uint64_t g) {
  std::uint32_t lo = 0, hi = count;
  while (hi - lo > 1) {
    const std::uint32_t mid = lo + (hi - lo) / 2;
    if (t[mid].first_granule <= g) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

MMSB_HOST_DEVICE_INLINE std::uint64_t GranulesOf(std::uint32_t size) {
  return (std::uint64_t{size} + kGranuleSize - 1) >> kGranuleShift;
}

// masks[g] = the granule's difference mask; counts[g] = (run starts << 32) | changed bytes.
// A run starts at byte j when j differs and byte j-1 does not (or j is the page's first byte); the
// byte before the granule is compared directly, so no thread reads another's output.
MMSB_HOST_DEVICE_INLINE void DiffCountGranules(const DiffTarget* targets, std::uint32_t num_targets,
                                               std::uint64_t num_granules, std::uint64_t* masks,
                                               std::uint64_t* counts, std::uint64_t tid,
                                               std::uint64_t nthreads) {
  for (std::uint64_t g = tid; g < num_granules; g += nthreads) {
    const DiffTarget& t = targets[DiffTargetOf(targets, num_targets, g)];
    const std::uint64_t off = (g - t.first_granule) * 64;
    const std::uint32_t len = static_cast<std::uint32_t>(t.size - off < 64 ? t.size - off : 64);
    const std::uint64_t m = CompareGranule(t.now + off, t.base + off, len);
    const std::uint64_t prev =
        off > 0 ? static_cast<std::uint64_t>(t.now[off - 1] != t.base[off - 1]) : 0;
    const std::uint64_t starts = m & ~((m << 1) | prev);
    masks[g] = m;
    counts[g] =
        (static_cast<std::uint64_t>(Popc64(starts)) << 32) | static_cast<std::uint64_t>(Popc64(m));
  }
}

// Writes runs and packed bytes from the masks and the exclusive prefix of the counts (prefix has
// num_granules + 1 entries; the last is the totals). Run r's begin and packed offset are written by
// the thread of the granule where it starts, its end by the thread where it ends: the k-th end of
// the batch belongs to the k-th run, and the ends before granule g number the starts before g
// less one when a run crosses into g.
MMSB_HOST_DEVICE_INLINE void DiffEmitGranules(const DiffTarget* targets, std::uint32_t num_targets,
                                              std::uint64_t num_granules,
                                              const std::uint64_t* masks,
                                              const std::uint64_t* prefix, DiffRun* runs,
                                              std::uint64_t max_runs, std::uint8_t* packed,
                                              std::uint64_t max_bytes, DiffTotals* totals,
                                              std::uint64_t tid, std::uint64_t nthreads) {
  if (tid == 0) {
    totals->runs = prefix[num_granules] >> 32;
    totals->bytes = prefix[num_granules] & 0xffffffffu;
  }
  for (std::uint64_t g = tid; g < num_granules; g += nthreads) {
    const std::uint64_t m = masks[g];
    if (m == 0) continue;
    const std::uint32_t ti = DiffTargetOf(targets, num_targets, g);
    const DiffTarget& t = targets[ti];
    const std::uint64_t last = t.first_granule + GranulesOf(t.size) - 1;
    const std::uint64_t off = (g - t.first_granule) * 64;
    const std::uint64_t prev_top = g > t.first_granule ? masks[g - 1] >> 63 : 0;
    const std::uint64_t next_low = g < last ? masks[g + 1] & 1u : 0;
    const std::uint64_t starts = m & ~((m << 1) | prev_top);
    const std::uint64_t ends = m & ~((m >> 1) | (next_low << 63));
    const std::uint64_t run_base = prefix[g] >> 32;
    const std::uint64_t byte_base = prefix[g] & 0xffffffffu;

    std::uint64_t r = run_base;
    for (std::uint64_t s = starts; s != 0; s &= s - 1, ++r) {
      const int j = Ctz64(s);
      if (r < max_runs) {
        runs[r].target = ti;
        runs[r].begin = static_cast<std::uint32_t>(off + j);
        const std::uint64_t below = j == 0 ? 0 : (m & (~std::uint64_t{0} >> (64 - j)));
        runs[r].packed = static_cast<std::uint32_t>(byte_base + Popc64(below));
      }
    }
    r = run_base - (prev_top & m & 1u);
    for (std::uint64_t e = ends; e != 0; e &= e - 1, ++r) {
      const int j = Ctz64(e);
      if (r < max_runs) runs[r].end = static_cast<std::uint32_t>(off + j + 1);
    }
    const std::uint32_t len = static_cast<std::uint32_t>(t.size - off < 64 ? t.size - off : 64);
    if (byte_base + Popc64(m) <= max_bytes)
      CompactFromGranule(packed + byte_base, t.now + off, len, m);
  }
}

}  // namespace mmsb::kernels
