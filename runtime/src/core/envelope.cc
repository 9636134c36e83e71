#include "core/envelope.h"

#include <xxhash.h>

#include <fmt/format.h>
#if defined(__x86_64__) && __has_include(<xxh_x86dispatch.h>)
// libxxhash's runtime dispatch (AVX2/AVX-512 where the CPU has them; the same hash values).
#include <xxh_x86dispatch.h>
#endif

namespace mmsb::envelope {

void PutU64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

std::uint64_t GetU64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{p[i]} << (8 * i);
  return v;
}

void StartRecord(std::vector<std::uint8_t>& out, std::uint8_t magic, std::uint8_t kind) {
  out.push_back(magic);
  out.push_back(kVersion);
  out.push_back(kind);
  out.push_back(0);  // flags
  PutU64(out, 0);    // total length, patched by Seal
}

void Seal(std::vector<std::uint8_t>& out, std::size_t start) {
  const std::uint64_t total = out.size() - start + kChecksumBytes;
  for (int i = 0; i < 8; ++i) out[start + 4 + i] = static_cast<std::uint8_t>(total >> (8 * i));
  PutU64(out, XXH3_64bits(out.data() + start, out.size() - start));
}

Expected<OpenedRecord> OpenRecord(std::span<const std::uint8_t> in, std::uint8_t magic,
                                  const char* what, std::uint8_t known_flags) {
  constexpr std::size_t kMin = kHeaderBytes + kChecksumBytes;
  if (in.size() < kMin) {
    return Corruption(
        fmt::format("{}: truncated: {} byte(s), the header alone needs {}", what, in.size(), kMin));
  }
  if (in[0] != magic)
    return Corruption(fmt::format("{}: bad magic 0x{:02x} (want 0x{:02x})", what, in[0], magic));
  if (in[1] != kVersion) {
    return Unsupported(
        fmt::format("{}: unsupported version {} (this reader knows {})", what, in[1], kVersion));
  }
  const std::uint64_t len = GetU64(in.data() + 4);
  if (len < kMin)
    return Corruption(fmt::format("{}: declared length {} is shorter than the header", what, len));
  if (len > in.size()) {
    return Corruption(
        fmt::format("{}: truncated: declares {} bytes, {} available", what, len, in.size()));
  }
  const std::uint64_t want = GetU64(in.data() + len - 8);
  const std::uint64_t got = XXH3_64bits(in.data(), len - 8);
  if (want != got) {
    return Corruption(
        fmt::format("{}: checksum mismatch (stored {:016x}, computed {:016x})", what, want, got));
  }
  if ((in[3] & ~known_flags) != 0)
    return Corruption(fmt::format("{}: unknown flags 0x{:02x}", what, in[3]));
  OpenedRecord r;
  r.kind = in[2];
  r.body = in.subspan(kHeaderBytes, len - kMin);
  r.total = len;
  return r;
}

bool Reader::U8(std::uint8_t* v) {
  if (p_ == end_) return false;
  *v = *p_++;
  return true;
}

bool Reader::Bytes(std::size_t n, const std::uint8_t** out) {
  if (static_cast<std::size_t>(end_ - p_) < n) return false;
  *out = p_;
  p_ += n;
  return true;
}

}  // namespace mmsb::envelope
