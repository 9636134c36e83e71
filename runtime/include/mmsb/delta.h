// Deltas: the exact set of bytes that changed in one page between two epochs.
//
// A Delta carries the *new* values of the changed bytes of one page, in one of two forms:
//   - sparse: sorted, non-overlapping, non-adjacent byte runs (offset, length) plus their bytes;
//   - dense:  one mask bit per page byte plus the changed bytes packed in offset order.
// Diff() picks the form whose encoding is smaller; both forms describe the same change, and
// every operation accepts either. A delta never contains an unchanged byte when it comes from
// Diff(): a store of the same value yields no delta. (Compose/Invert keep that property
// relative to their inputs; see below.)
//
// Deltas are values: copyable, movable, no references into page storage.
// Thread-safety: const methods may be called from many threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "mmsb/status.h"
#include "mmsb/types.h"

namespace mmsb {

namespace delta_internal {
struct Access;  // the runtime's diff of small derived pages writes a Delta in place
}  // namespace delta_internal

struct ByteRun {
  std::uint32_t offset = 0;
  std::uint32_t length = 0;
  friend bool operator==(const ByteRun&, const ByteRun&) = default;
};

class Delta {
 public:
  enum class Form : std::uint8_t { kSparse = 0, kDense = 1 };

  Delta() = default;
  Delta(const Delta& other);
  Delta& operator=(const Delta& other);
  Delta(Delta&& other) noexcept;
  Delta& operator=(Delta&& other) noexcept;
  ~Delta() = default;

  // Builds a sparse delta from runs and their concatenated new bytes. Returns InvalidDelta when
  // runs are unsorted, overlapping, out of the page, or bytes.size() != sum of lengths.
  static Expected<Delta> FromRuns(PageId page, Epoch base_epoch, std::uint32_t page_size,
                                  std::vector<ByteRun> runs, std::vector<std::uint8_t> bytes);

  PageId page() const { return page_; }
  // The epoch of the page's previous change (0 when it had none): the state this delta applies
  // to. Consecutive deltas of one page chain base_epoch -> epoch, so a gap is detectable.
  Epoch base_epoch() const { return base_epoch_; }
  std::uint32_t page_size() const { return page_size_; }
  Form form() const { return form_; }
  bool empty() const { return changed_bytes_ == 0; }
  std::uint32_t changed_bytes() const { return changed_bytes_; }

  void set_page(PageId id) { page_ = id; }
  void set_base_epoch(Epoch e) { base_epoch_ = e; }

  // The change as runs, whatever the stored form (computed for dense deltas).
  std::vector<ByteRun> Runs() const;
  // The stored runs of a sparse delta without a copy (empty for a dense one).
  std::span<const ByteRun> sparse_runs() const;
  // The change as a mask: bit i of byte i/8 set when page byte i changed (LSB first).
  std::vector<std::uint8_t> Mask() const;
  // New values of the changed bytes, packed in offset order (both forms store them this way).
  std::span<const std::uint8_t> bytes() const { return {data() + table_bytes_, changed_bytes_}; }

  // Calls fn(offset, length, new_bytes) for every run, in offset order, whatever the form.
  template <class Fn>
  void ForEachRun(Fn&& fn) const;

  // Converts in place to the given form. The described change is unchanged.
  void ConvertTo(Form form);

  // Writes the new bytes into `page` (page.size() must equal page_size()).
  Status ApplyTo(std::span<std::uint8_t> page) const;

  // Size in bytes that Encode() will produce.
  std::size_t EncodedSize() const;

  friend bool operator==(const Delta& a, const Delta& b);  // same page, epoch and change

 private:
  friend class DeltaBuilder;
  friend struct delta_internal::Access;
  friend Expected<Delta> DecodeDelta(std::span<const std::uint8_t> in, std::size_t* consumed,
                                     std::uint32_t max_page_size);
  // Storage is one block: the table (sparse: runs; dense: mask of page_size/8 bytes rounded up)
  // followed by the new bytes. Small deltas (the common case: a few stores) live inline, so
  // creating, moving and destroying them allocates nothing.
  static constexpr std::size_t kInlineBytes = 48;
  const std::uint8_t* data() const { return heap_ ? heap_.get() : inline_; }
  std::uint8_t* data() { return heap_ ? heap_.get() : inline_; }
  // Sizes the block for `table` + `changed` bytes (contents unspecified).
  void Reset(Form form, std::size_t table, std::uint32_t changed);
  void ForEachMaskRun(void (*fn)(void*, std::uint32_t, std::uint32_t, const std::uint8_t*),
                      void* ctx) const;

  PageId page_ = kInvalidPageId;
  Epoch base_epoch_ = 0;
  std::uint32_t page_size_ = 0;
  std::uint32_t changed_bytes_ = 0;
  std::uint32_t table_bytes_ = 0;
  Form form_ = Form::kSparse;
  std::unique_ptr<std::uint8_t[]> heap_;
  alignas(8) std::uint8_t inline_[kInlineBytes];
};

template <class Fn>
void Delta::ForEachRun(Fn&& fn) const {
  if (form_ == Form::kSparse) {
    const std::uint8_t* src = bytes().data();
    for (const ByteRun& r : sparse_runs()) {
      fn(r.offset, r.length, src);
      src += r.length;
    }
    return;
  }
  ForEachMaskRun([](void* ctx, std::uint32_t off, std::uint32_t len,
                    const std::uint8_t* src) { (*static_cast<Fn*>(ctx))(off, len, src); },
                 &fn);
}

// Incremental builder used by the diff engine and the decoders: append changed bytes in
// strictly increasing offset order, then Finish() picks the smaller form. A change of a few runs
// (what a Delta holds inline) is gathered in the builder itself; a larger one moves to scratch
// buffers recycled per thread. Either way building a small delta allocates nothing.
class DeltaBuilder {
 public:
  DeltaBuilder(PageId page, Epoch base_epoch, std::uint32_t page_size);
  ~DeltaBuilder();
  DeltaBuilder(const DeltaBuilder&) = delete;
  DeltaBuilder& operator=(const DeltaBuilder&) = delete;
  // Appends bytes [offset, offset+len) with new values `src`. Offsets must increase.
  void AddRun(std::uint32_t offset, const std::uint8_t* src, std::uint32_t len);
  // Appends the bytes selected by the 64-bit mask `m` (bit i = byte offset+i) from `src`
  // (which points at page byte `offset`). `offset` must be granule-aligned and increase.
  void AddMask64(std::uint32_t offset, std::uint64_t m, const std::uint8_t* src);
  Delta Finish();

  struct Scratch;  // opaque, recycled per thread

 private:
  // The inline gathering room, used while the change fits a Delta's inline block (a one-run
  // delta of up to 40 bytes, or up to four runs of fewer bytes).
  static constexpr std::uint32_t kSmallRuns = 4;
  static constexpr std::uint32_t kSmallBytes = 40;
  void Spill();  // moves what was gathered inline into a scratch (s_ set from then on)

  PageId page_;
  Epoch base_epoch_;
  std::uint32_t page_size_;
  std::uint32_t small_runs_count_ = 0;
  std::uint32_t small_bytes_count_ = 0;
  Scratch* s_ = nullptr;  // null while the change fits the inline room
  ByteRun small_runs_[kSmallRuns];
  std::uint8_t small_bytes_[kSmallBytes];
};

// ---- Diff engine -------------------------------------------------------------------------------

// Exact full diff: the bytes where `now` differs from `before` (same length), with new values
// from `now`. SIMD (Highway, runtime dispatch); identical results to DiffScalar.
Delta Diff(PageId page, Epoch base_epoch, std::span<const std::uint8_t> before,
           std::span<const std::uint8_t> now);

// Scalar reference implementation of Diff; used by tests and as the portability fallback.
Delta DiffScalar(PageId page, Epoch base_epoch, std::span<const std::uint8_t> before,
                 std::span<const std::uint8_t> now);

// Diffs only the granules whose byte in `touched` is non-zero (touched[i] covers bytes
// [i*kGranuleSize, (i+1)*kGranuleSize) of the page). The result is exact for those granules.
Delta DiffGranules(PageId page, Epoch base_epoch, std::span<const std::uint8_t> before,
                   std::span<const std::uint8_t> now, std::span<const std::uint8_t> touched);

// Fills `mask64[i]` with the per-byte difference mask of granule i (bit j = byte i*64+j
// differs). Returns the number of differing bytes. Both spans' sizes must be equal; the last
// granule may be partial. The SIMD kernel under Diff; exposed for benchmarks and the GPU path.
std::size_t DiffMask(std::span<const std::uint8_t> before, std::span<const std::uint8_t> now,
                     std::span<std::uint64_t> mask64);

// Name of the SIMD target chosen at run time ("AVX2", "AVX3", "SSE4", "EMU128", ...).
const char* DiffTargetName();

// ---- Algebra -----------------------------------------------------------------------------------

// Chain(first, second): the delta equivalent to applying `first`, then `second` (arguments in
// the order they apply). Both must be for the same page and size, and second.base_epoch() must be
// after first's (not checked strictly: only page and size are). Result base_epoch is
// first.base_epoch().
Expected<Delta> Chain(const Delta& first, const Delta& second);
// Compose(second, first) is Chain(first, second) in the order of function composition
// (second ∘ first), kept for programs that call it; new code calls Chain.
[[deprecated("Compose(second, first) is Chain(first, second)")]]
inline Expected<Delta> Compose(const Delta& second, const Delta& first) {
  return Chain(first, second);
}

// invert(d, before): the delta that undoes `d` when applied to the state after `d`; `before` is
// the page image `d` was computed against. Bytes where d's new value equals `before` are
// dropped, so Invert of an exact delta is exact.
Expected<Delta> Invert(const Delta& d, std::span<const std::uint8_t> before);

// ---- Serialisation (see docs/SerializationSpec.md) ---------------------------------------------

// Encodes a delta as a self-describing, versioned, XXH3-checksummed record body.
std::vector<std::uint8_t> EncodeDelta(const Delta& d);
void EncodeDeltaTo(const Delta& d, std::vector<std::uint8_t>& out);  // appends

// Decodes untrusted input. Never crashes, never reads out of bounds, and never allocates more
// than `max_page_size` (+ constant) bytes: truncated, corrupt or oversized input gives a
// Serialization or Corruption status naming what is wrong. `consumed`, if set, receives the
// number of input bytes used.
Expected<Delta> DecodeDelta(std::span<const std::uint8_t> in, std::size_t* consumed = nullptr,
                            std::uint32_t max_page_size = 1u << 30);

// Page images (checkpoints, page-create records): versioned, checksummed, zstd-free raw bytes
// with id, epoch, size and location. Decoder has the same guarantees as DecodeDelta.
struct PageImage {
  PageId id = kInvalidPageId;
  Epoch epoch = 0;
  Location location = Location::kCpu;
  std::vector<std::uint8_t> bytes;
};
std::vector<std::uint8_t> EncodePageImage(const PageImage& img);
Expected<PageImage> DecodePageImage(std::span<const std::uint8_t> in,
                                    std::size_t* consumed = nullptr,
                                    std::uint32_t max_page_size = 1u << 30);

}  // namespace mmsb
