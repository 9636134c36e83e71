// Delta and page-image format shared by the encoder and the decoder.
// See docs/SerializationSpec.md ("Delta record" and "Page image").
//
// Both use the common record envelope (core/envelope.h): a 12-byte header, a body of LEB128
// varints and bytes, and an XXH3-64 checksum checked before the body is interpreted.
#pragma once

#include <cstdint>

namespace mmsb::format {

inline constexpr std::uint8_t kDeltaMagic = 0xD7;
inline constexpr std::uint8_t kPageImageMagic = 0x1F;

// Delta kind byte: the form.
inline constexpr std::uint8_t kFormSparse = 0;
inline constexpr std::uint8_t kFormDense = 1;

}  // namespace mmsb::format
