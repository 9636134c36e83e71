// DeltaView: an encoded delta record (docs/SerializationSpec.md, "Delta record") checked and
// applied in place, without building a Delta.
//
// This is the one parser of the delta format: DecodeDelta is ParseDeltaView plus copying the
// view into a Delta. Replay reads hundreds of thousands of deltas and uses the view directly: it
// allocates nothing, and ApplyDeltaView copies the new bytes from the record straight into the
// page. The envelope checksum may be skipped when the caller already
// verified a checksum over the same bytes (the log record's payload check covers the whole
// encoded delta).
//
// A DeltaView points into the bytes it was parsed from; they must outlive it. Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "mmsb/delta.h"
#include "mmsb/status.h"
#include "mmsb/types.h"

namespace mmsb::delta_internal {

struct DeltaView {
  PageId page = kInvalidPageId;
  Epoch base_epoch = 0;
  std::uint32_t page_size = 0;
  std::uint32_t changed_bytes = 0;
  bool dense = false;
  std::uint64_t run_count = 0;          // sparse
  const std::uint8_t* table = nullptr;  // sparse: the (gap, length) varints; dense: the mask
  const std::uint8_t* bytes = nullptr;  // the new bytes, changed_bytes of them
  std::size_t total = 0;                // bytes of the whole record
};

// Checks `in` as one delta record that must fill it exactly. Errors are Serialization or
// Corruption with a message like DecodeDelta's.
Status ParseDeltaView(std::span<const std::uint8_t> in, std::uint32_t max_page_size,
                      bool verify_checksum, DeltaView* out);

// Writes the new bytes into `page` (page_size bytes). `v` must come from a successful parse.
// A dense view is applied with AVX-512 VBMI2 (expand-load, masked store) where the CPU has it,
// else with SSSE3/SSE4.1 (a pshufb expand and a blend, 16 bytes per step), else word by word.
// Each changes exactly the bytes the mask names and touches nothing outside the page and the
// record's new bytes; the SSE path reads and rewrites unchanged page bytes, so nothing may write
// the page concurrently.
void ApplyDeltaView(const DeltaView& v, std::uint8_t* page);

// Applies the part of `v` that covers page bytes [begin, end) (ApplyDeltaView of the whole view
// is the parts over any split of the page, applied in any order, even at once from different
// threads). A dense view's part starts its mask and new bytes where that part's are (a count of
// the mask's bits before `begin`); a sparse view is applied whole by its part that starts at 0.
// `begin` is a multiple of 64 below page_size and `end` a multiple of 64 or page_size.
void ApplyDeltaViewPart(const DeltaView& v, std::uint8_t* page, std::uint32_t begin,
                        std::uint32_t end);

// The dense apply's implementations, for tests that compare them.
enum class DenseApplyPath { kScalar, kSse, kVbmi2 };
bool DenseApplyPathSupported(DenseApplyPath path);
void ApplyDeltaViewDenseForTest(DenseApplyPath path, const DeltaView& v, std::uint8_t* page);

// The run table of a parsed sparse view as offsets and lengths (run_count of them into `out`).
void RunsOfView(const DeltaView& v, ByteRun* out);

// Appends the runs of changed bytes of a parsed view, sparse or dense (maximal, in increasing
// offset), to *out.
void AppendDeltaViewRuns(const DeltaView& v, std::vector<ByteRun>* out);

}  // namespace mmsb::delta_internal
