// Delta and page-image format shared by the encoder and the decoder.
// See docs/SerializationSpec.md ("Delta record" and "Page image").
//
// Both encodings start with a 12-byte fixed header
//   magic u8 | version u8 | kind u8 | flags u8 | total_length u64 (LE)
// and end with the XXH3-64 (seed 0, LE) of every byte before it, so a reader checks integrity
// before it interprets a single variable-length field. Integers in between are LEB128 varints.
#pragma once

#include <cstdint>

namespace mmsb::format {

inline constexpr std::uint8_t kDeltaMagic = 0xD7;
inline constexpr std::uint8_t kPageImageMagic = 0x1F;
inline constexpr std::uint8_t kVersion = 1;

// Delta kind byte: the form.
inline constexpr std::uint8_t kFormSparse = 0;
inline constexpr std::uint8_t kFormDense = 1;

// No flags are defined in version 1; a reader rejects any set bit.
inline constexpr std::uint8_t kKnownFlags = 0;

inline constexpr std::uint32_t kMaxVarintBytes = 10;

}  // namespace mmsb::format
