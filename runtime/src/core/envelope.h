// The record envelope shared by deltas, page images and event batches (varints: core/varint.h).
// See docs/SerializationSpec.md ("Common record envelope").
//
//   magic u8 | version u8 | kind u8 | flags u8 | total_length u64 LE | body | XXH3-64 u64 LE
//
// OpenRecord checks magic, version and length before the checksum, and the checksum before the
// body is interpreted. All functions are pure; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "mmsb/status.h"

#include "core/varint.h"

namespace mmsb::envelope {

inline constexpr std::size_t kHeaderBytes = 12;
inline constexpr std::size_t kChecksumBytes = 8;
inline constexpr std::uint8_t kVersion = 1;

void PutU64(std::vector<std::uint8_t>& out, std::uint64_t v);
std::uint64_t GetU64(const std::uint8_t* p);

// Appends the header with a placeholder length; Seal patches it and appends the checksum.
void StartRecord(std::vector<std::uint8_t>& out, std::uint8_t magic, std::uint8_t kind);
void Seal(std::vector<std::uint8_t>& out, std::size_t start);

struct OpenedRecord {
  std::uint8_t kind = 0;
  std::span<const std::uint8_t> body;  // between header and checksum
  std::size_t total = 0;               // record length
};
// `what` names the record in errors ("delta", "page image", ...). `known_flags` are accepted.
Expected<OpenedRecord> OpenRecord(std::span<const std::uint8_t> in, std::uint8_t magic,
                                  const char* what, std::uint8_t known_flags = 0);

// A bounds-checked reader over a record body.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> body)
      : p_(body.data()), end_(body.data() + body.size()) {}
  // False, with nothing consumed, on a truncated, overlong or too long varint (core/varint.h).
  bool Varint(std::uint64_t* v) {
    varint::Error error = varint::Error::kNone;
    const std::uint8_t* next = varint::Get(p_, end_, v, &error);
    if (next == nullptr) return false;
    p_ = next;
    return true;
  }
  bool U8(std::uint8_t* v);
  bool Bytes(std::size_t n, const std::uint8_t** out);
  std::size_t remaining() const { return static_cast<std::size_t>(end_ - p_); }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

}  // namespace mmsb::envelope
