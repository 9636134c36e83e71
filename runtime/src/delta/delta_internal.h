// Internals shared by the delta representation (delta.cc), the diff engine (diff.cc) and the
// codec (codec.cc). Encoding layout: see delta_format.h and docs/SerializationSpec.md.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "mmsb/delta.h"

#include "core/small_copy.h"

namespace mmsb::delta_internal {

inline constexpr std::size_t kFixedHeaderBytes = 12;  // envelope::kHeaderBytes
inline constexpr std::size_t kChecksumBytes = 8;      // envelope::kChecksumBytes

// Encoded bytes of the sparse run table (count + gap/length varints).
std::size_t SparseBodySize(std::span<const ByteRun> runs);
// Encoded bytes of the fixed header plus the varint fields of `d`.
std::size_t HeaderSize(const Delta& d);

// Diff (touched == null) or DiffGranules (touched: one shadow byte per granule) on raw pointers,
// the commit path's form: span arguments would be passed through the stack on every page.
// With `apply` (== before, and touched set) the delta is also applied to `before` in the same
// pass, from the same read of `now` that the delta's bytes come from: afterwards `before` equals
// its old bytes with the returned delta applied, exactly as Delta::ApplyTo would leave it.
Delta DiffPage(PageId page, Epoch base_epoch, const std::uint8_t* before, const std::uint8_t* now,
               std::uint32_t size, const std::uint8_t* touched, std::uint8_t* apply = nullptr);

// The diff of `now` against zeros (a page's epoch-0 image) without reading a zero image: `now` is
// compared with a zero block in cache. Only the 4 KiB blocks k of `now` (bytes [4096 k, 4096 k +
// 4096)) with present[k] != 0 are read (present == null: all); the caller knows the others read
// as zeros.
Delta DiffPageFromZeros(PageId page, Epoch base_epoch, const std::uint8_t* now, std::uint32_t size,
                        const std::uint8_t* present);

// The delta of a page of `size` bytes whose change is given as one byte mask per granule
// (masks[g] bit j: byte g*64+j changed; bits past the page's end clear), with the new bytes in
// `now` (the page's image, read once by the caller). Written into `*out` in place. The result is
// the delta DeltaBuilder would build from the same masks, field for field (same runs, same form):
// a change that fits a Delta's inline block as sparse runs is written there directly, anything
// else goes through a DeltaBuilder. Returns the number of runs written inline, which are then
// also in `runs` (room for kInlineRuns; exactly out->sparse_runs()), or 0 when the delta went
// through the builder (or is empty) and `runs` holds nothing meaningful.
// Inline (with what it calls, below): the derived diff calls it once per recomputed node, where
// two calls' prologues were a tenth of the node's instructions.
// `Granules`, when not 0, is GranuleCount(size) as a constant (1 for a page of one granule: the
// loop over granules is straight-line).
inline constexpr std::uint32_t kInlineRuns = 6;  // Delta's inline block / sizeof(ByteRun)
template <std::size_t Granules = 0>
[[gnu::always_inline]] inline std::uint32_t DeltaFromMasks(Delta* out, PageId page,
                                                           Epoch base_epoch, std::uint32_t size,
                                                           const std::uint64_t* masks,
                                                           const std::uint8_t* now, ByteRun* runs);
// DeltaFromMasks' way for a change that does not fit the inline block: a DeltaBuilder.
void DeltaFromMasksBuilt(Delta* out, PageId page, Epoch base_epoch, std::uint32_t size,
                         const std::uint64_t* masks, const std::uint8_t* now);

inline std::size_t MaskBytes(std::uint32_t page_size) { return (std::size_t{page_size} + 7) / 8; }

struct Access {
  static constexpr std::size_t kInlineBytes = Delta::kInlineBytes;
  // Writes a sparse delta of `count` runs (their new bytes gathered from `now`) into d's inline
  // block; the caller checked that it fits.
  [[gnu::always_inline]] static void SetInlineSparse(Delta& d, PageId page, Epoch base_epoch,
                                                     std::uint32_t size, const ByteRun* runs,
                                                     std::uint32_t count, std::uint32_t changed,
                                                     const std::uint8_t* now) {
    d.page_ = page;
    d.base_epoch_ = base_epoch;
    d.page_size_ = size;
    d.heap_.reset();
    d.form_ = Delta::Form::kSparse;
    d.table_bytes_ = count * static_cast<std::uint32_t>(sizeof(ByteRun));
    d.changed_bytes_ = changed;
    std::uint8_t* dst = d.inline_ + d.table_bytes_;
    for (std::uint32_t k = 0; k < count; ++k) {
      // Field by field: the caller has just stored each field alone, and a load of the whole run
      // would wait for both stores to reach the cache (no store forwarding across two stores).
      std::memcpy(d.inline_ + k * sizeof(ByteRun), &runs[k].offset, sizeof(runs[k].offset));
      std::memcpy(d.inline_ + k * sizeof(ByteRun) + offsetof(ByteRun, length), &runs[k].length,
                  sizeof(runs[k].length));
      SmallCopy(dst, now + runs[k].offset, runs[k].length);
      dst += runs[k].length;
    }
  }
};

template <std::size_t Granules>
[[gnu::always_inline]] inline std::uint32_t DeltaFromMasks(Delta* out, PageId page,
                                                           Epoch base_epoch, std::uint32_t size,
                                                           const std::uint64_t* masks,
                                                           const std::uint8_t* now, ByteRun* runs) {
  // The runs DeltaBuilder::AddMask64 would gather (adjacent runs across granules joined), while
  // they can fit the inline block.
  static_assert(Access::kInlineBytes / sizeof(ByteRun) == kInlineRuns);
  std::uint32_t count = 0, changed = 0;
  const std::size_t granules = Granules != 0 ? Granules : GranuleCount(size);
  for (std::size_t g = 0; g < granules; ++g) {
    for (std::uint64_t m = masks[g]; m != 0;) {
      const unsigned lo = static_cast<unsigned>(std::countr_zero(m));
      const std::uint64_t shifted = m >> lo;
      const unsigned len =
          shifted == ~std::uint64_t{0} ? 64u - lo : static_cast<unsigned>(std::countr_one(shifted));
      const auto off = static_cast<std::uint32_t>(g * 64 + lo);
      if (count != 0 && runs[count - 1].offset + runs[count - 1].length == off) {
        runs[count - 1].length += len;
      } else if (count == kInlineRuns) {
        DeltaFromMasksBuilt(out, page, base_epoch, size, masks, now);
        return 0;
      } else {
        runs[count].offset = off;
        runs[count].length = len;
        ++count;
      }
      changed += len;
      m = (lo + len >= 64) ? 0 : (m & ~(((std::uint64_t{1} << len) - 1) << lo));
    }
  }
  // Inline and sparse exactly when DeltaBuilder::Finish would make it so (same form test).
  const std::size_t dense_body = MaskBytes(size);
  if (count * sizeof(ByteRun) + changed <= Access::kInlineBytes &&
      !(count * 2 + 1 > dense_body &&
        SparseBodySize(std::span<const ByteRun>(runs, count)) > dense_body)) {
    Access::SetInlineSparse(*out, page, base_epoch, size, runs, count, changed, now);
    return count;
  }
  DeltaFromMasksBuilt(out, page, base_epoch, size, masks, now);
  return 0;
}

// Bit j set when a[j] != b[j], for j < 64: a whole granule's change mask. SSE2 (every x86-64) in
// four compares; elsewhere ByteDiffMask.
inline std::uint64_t GranuleDiffMask(const std::uint8_t* a, const std::uint8_t* b);

// Bit j set when a[j] != b[j], for j < n (n <= 64): the granule's change mask, without SIMD
// dispatch (for small pages, where a call through the dispatch table costs more than the bytes).
// Inline, so that a caller's constant n (a whole granule) unrolls it.
inline std::uint64_t ByteDiffMask(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) {
  std::uint64_t m = 0;
  std::size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    std::uint64_t x, y;
    std::memcpy(&x, a + j, 8);
    std::memcpy(&y, b + j, 8);
    std::uint64_t d = x ^ y;
    if (d == 0) continue;
    // 0x80 in each byte of d that is non-zero (no carry crosses a byte: the low seven bits of
    // each byte plus 0x7f stay below 0x100).
    constexpr std::uint64_t kLow7 = 0x7f7f7f7f7f7f7f7full;
    d = (((d & kLow7) + kLow7) | d) & ~kLow7;
    // Byte i's flag (bit 8i of d >> 7) lands on bit 56 + i of the product, and no two partial
    // products share a bit: the eight flags gathered into the top byte.
    m |= (((d >> 7) * 0x0102040810204080ull) >> 56) << j;
  }
  for (; j < n; ++j) m |= std::uint64_t{a[j] != b[j]} << j;
  return m;
}

inline std::uint64_t GranuleDiffMask(const std::uint8_t* a, const std::uint8_t* b) {
#if defined(__SSE2__)
  std::uint64_t equal = 0;
  for (int k = 0; k < 4; ++k) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 16 * k));
    const __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16 * k));
    equal |= std::uint64_t(static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(x, y))))
             << (16 * k);
  }
  return ~equal;
#else
  return ByteDiffMask(a, b, 64);
#endif
}

}  // namespace mmsb::delta_internal
