// Turns a fuzzer's bytes into a segment or checkpoint file.
//
// Two modes, chosen by the first byte, so the fuzzer reaches both layers:
//   - raw (even): the rest is the file, byte for byte. Exercises the file header, the framing,
//     checksums, resynchronisation after damage, and torn-tail detection.
//   - framed (odd): the rest is a list of records [u8 type][u16 length][payload], each framed
//     with valid checksums under a valid file header. Random payloads would almost never pass an
//     XXH3 check, so this is how the fuzzer reaches the payload decoders, epoch grouping and the
//     replay's consistency checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "log/log_format.h"

namespace mmsb::fuzz {

inline constexpr std::uint64_t kLogId = 0x5eed5eed5eed5eedull;

inline std::vector<std::uint8_t> BuildFile(const std::uint8_t* data, std::size_t size,
                                           bool checkpoint) {
  if (size == 0) return {};
  const bool framed = (data[0] & 1) != 0;
  ++data;
  --size;
  if (!framed) return {data, data + size};
  std::vector<std::uint8_t> out(log::kFileHeaderSize);
  log::FileHeader h;
  h.checkpoint = checkpoint;
  h.log_id = kLogId;
  h.seq = checkpoint ? 0 : 1;
  // The second byte picks the base epoch (a checkpoint's epoch), so both are exercised.
  h.base_epoch = size > 0 ? data[0] % 4 : 0;
  log::EncodeFileHeader(h, out.data());
  std::size_t i = size > 0 ? 1 : 0;
  while (i + 3 <= size) {
    const std::uint8_t type = data[i];
    std::size_t len =
        static_cast<std::size_t>(data[i + 1]) | (static_cast<std::size_t>(data[i + 2]) << 8);
    i += 3;
    if (len > size - i) len = size - i;
    log::AppendRecord(out, kLogId, type, {data + i, len});
    i += len;
  }
  return out;
}

}  // namespace mmsb::fuzz
