// Unsigned LEB128 varints: the one encoder and the one decoder of every varint the runtime writes
// or reads (record envelopes, deltas, event batches, log records, the query index). See
// docs/SerializationSpec.md ("Varints").
//
// A value is written least significant 7 bits first, one group per byte, the top bit of each byte
// set when another byte follows; the encoding is the shortest one (1 to 10 bytes). Decoding reads
// untrusted bytes and refuses, without reading past the end it is given:
//   - truncated: the input ends before a byte with the top bit clear;
//   - too long: more than 64 bits (a tenth byte other than 0x01, so never an eleventh byte);
//   - overlong: a longer encoding than the shortest (a last byte 0x00 after a first one,
//     "0x80 0x00" for 0), which no writer produces; accepting it would let two byte strings
//     mean one value.
// Everything here is pure and header-only (the decoders sit on the replay path, inlined).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mmsb::varint {

inline constexpr std::size_t kMaxBytes = 10;

// The encoded size of `v`: ceil(bit_width / 7), at least 1. No loop, no data-dependent branch.
constexpr std::size_t Size(std::uint64_t v) {
  return (static_cast<std::size_t>(std::bit_width(v | 1)) + 6) / 7;
}

// Writes `v` at `p` (Size(v) bytes, at most kMaxBytes) and returns the end.
inline std::uint8_t* PutAt(std::uint8_t* p, std::uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<std::uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<std::uint8_t>(v);
  return p;
}

// Appends `v` to `out`.
inline void Append(std::vector<std::uint8_t>& out, std::uint64_t v) {
  std::uint8_t buf[kMaxBytes];
  out.insert(out.end(), buf, PutAt(buf, v));
}

// The encoding of `v` as a little-endian number of Size(v) bytes: byte i of the result is byte i
// of PutAt's output, the bytes past Size(v) are 0. For writers that build a record in a register.
inline unsigned __int128 Word(std::uint64_t v) {
  unsigned __int128 w = 0;
  unsigned shift = 0;
  while (v >= 0x80) {
    w |= static_cast<unsigned __int128>((v & 0x7F) | 0x80) << shift;
    v >>= 7;
    shift += 8;
  }
  return w | static_cast<unsigned __int128>(v) << shift;
}

enum class Error : std::uint8_t { kNone, kTruncated, kTooLong, kOverlong };

// "truncated", "more than 64 bits", "overlong": for error messages.
constexpr const char* Describe(Error e) {
  switch (e) {
    case Error::kNone:
      return "valid";
    case Error::kTruncated:
      return "truncated";
    case Error::kTooLong:
      return "more than 64 bits";
    case Error::kOverlong:
      return "overlong (not the shortest encoding)";
  }
  return "?";
}

namespace detail {
// The bytes from p[0] on, which does not end the varint (its top bit is set), up to `end`.
inline const std::uint8_t* GetSlow(const std::uint8_t* p, const std::uint8_t* end, std::uint64_t* v,
                                   Error* error) {
  std::uint64_t r = 0;
  for (unsigned shift = 0;; shift += 7) {
    if (p == end) {
      *error = Error::kTruncated;
      return nullptr;
    }
    const std::uint8_t b = *p++;
    if (shift == 63 && b > 1) {  // the tenth byte holds bit 63 alone and ends the varint
      *error = Error::kTooLong;
      return nullptr;
    }
    r |= static_cast<std::uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) {
      if (b == 0 && shift != 0) {
        *error = Error::kOverlong;
        return nullptr;
      }
      *v = r;
      return p;
    }
  }
}
}  // namespace detail

// Decodes the varint at [p, end). Returns the byte after it, or nullptr with `*error` set (and
// `*v` unchanged). One- and two-byte varints (most gaps and lengths) take an inlined fast path.
[[gnu::always_inline]] inline const std::uint8_t* Get(const std::uint8_t* p,
                                                      const std::uint8_t* end, std::uint64_t* v,
                                                      Error* error) {
  if (p != end && *p < 0x80) {
    *v = *p;
    return p + 1;
  }
  // Two bytes: the second one in 1..0x7F (0 would be overlong).
  if (end - p >= 2 && static_cast<std::uint8_t>(p[1] - 1) < 0x7F) {
    *v = (p[0] & 0x7Fu) | (std::uint64_t{p[1]} << 7);
    return p + 2;
  }
  return detail::GetSlow(p, end, v, error);
}

// Decodes a varint that Get has already accepted in these very bytes (a second pass over a
// checked table): no bounds or validity checks.
[[gnu::always_inline]] inline std::uint64_t GetTrusted(const std::uint8_t*& p) {
  if (*p < 0x80) return *p++;
  if (p[1] < 0x80) {
    const std::uint64_t v = (p[0] & 0x7Fu) | (std::uint64_t{p[1]} << 7);
    p += 2;
    return v;
  }
  std::uint64_t v = 0;
  for (unsigned shift = 0;; shift += 7) {
    const std::uint8_t b = *p++;
    v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) return v;
  }
}

}  // namespace mmsb::varint
