// DeltaView: an encoded delta record (docs/SerializationSpec.md, "Delta record") checked and
// applied in place, without building a Delta.
//
// Replay reads hundreds of thousands of deltas; DecodeDelta materialises each into vectors of
// runs and bytes. ParseDeltaView performs the same structural checks as DecodeDelta (it accepts
// exactly the records DecodeDelta accepts, which tests/unit/log/delta_view_test.cc and the log
// reader fuzzer check) but allocates nothing, so ApplyDeltaView can copy the new bytes from the
// record straight into the page. The envelope checksum may be skipped when the caller already
// verified a checksum over the same bytes (the log record's payload check covers the whole
// encoded delta).
//
// A DeltaView points into the bytes it was parsed from; they must outlive it. Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "mmsb/status.h"
#include "mmsb/types.h"

namespace mmsb::log {

struct DeltaView {
  PageId page = kInvalidPageId;
  Epoch base_epoch = 0;
  std::uint32_t page_size = 0;
  std::uint32_t changed_bytes = 0;
  bool dense = false;
  std::uint64_t run_count = 0;       // sparse
  const std::uint8_t* table = nullptr;  // sparse: the (gap, length) varints; dense: the mask
  const std::uint8_t* bytes = nullptr;  // the new bytes, changed_bytes of them
  std::size_t total = 0;             // bytes of the whole record
};

// Checks `in` as one delta record that must fill it exactly. Errors are Serialization or
// Corruption with a message like DecodeDelta's.
Status ParseDeltaView(std::span<const std::uint8_t> in, std::uint32_t max_page_size, bool verify_checksum,
                      DeltaView* out);

// Writes the new bytes into `page` (page_size bytes). `v` must come from a successful parse.
void ApplyDeltaView(const DeltaView& v, std::uint8_t* page);

}  // namespace mmsb::log
