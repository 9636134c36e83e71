// Internals shared by the delta representation (delta.cc), the diff engine (diff.cc) and the
// codec (codec.cc). Encoding layout: see delta_format.h and docs/SerializationSpec.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "mmsb/delta.h"

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
inline constexpr std::uint32_t kInlineRuns = 6;  // Delta's inline block / sizeof(ByteRun)
std::uint32_t DeltaFromMasks(Delta* out, PageId page, Epoch base_epoch, std::uint32_t size,
                             const std::uint64_t* masks, const std::uint8_t* now, ByteRun* runs);

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

}  // namespace mmsb::delta_internal
