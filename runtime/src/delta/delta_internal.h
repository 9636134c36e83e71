// Internals shared by the delta representation (delta.cc), the diff engine (diff.cc) and the
// codec (codec.cc). Encoding layout: see delta_format.h and docs/SerializationSpec.md.
#pragma once

#include <cstddef>
#include <span>

#include "mmsb/delta.h"

namespace mmsb::delta_internal {

inline constexpr std::size_t kFixedHeaderBytes = 12;  // envelope::kHeaderBytes
inline constexpr std::size_t kChecksumBytes = 8;      // envelope::kChecksumBytes

// Encoded bytes of the sparse run table (count + gap/length varints).
std::size_t SparseBodySize(std::span<const ByteRun> runs);
// Encoded bytes of the fixed header plus the varint fields of `d`.
std::size_t HeaderSize(const Delta& d);

}  // namespace mmsb::delta_internal
