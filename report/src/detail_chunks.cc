// DetailChunks (detail_chunks.h): deflated, base64-encoded chunks of a log report's column diffs.
#include "detail_chunks.h"

#include <zlib.h>

#include <cstdint>
#include <vector>

#include <fmt/format.h>

namespace mmsb::report {

namespace {

std::string Base64(const std::uint8_t* p, std::size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const std::uint32_t v = (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8) | p[i + 2];
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < n) {
    std::uint32_t v = std::uint32_t{p[i]} << 16;
    if (i + 1 < n) v |= std::uint32_t{p[i + 1]} << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace

int DetailChunks::Add(std::size_t column, const std::string& detail_json) {
  text_ += text_.empty() ? "{" : ",";
  text_ += fmt::format("\"{}\":", column);
  text_ += detail_json;
  const int index = static_cast<int>(encoded.size());
  if (text_.size() >= kChunkBytes) Flush();
  return index;
}

Status DetailChunks::Finish() {
  Flush();
  return status_;
}

void DetailChunks::Flush() {
  if (text_.empty()) return;
  text_ += "}";
  uLongf size = compressBound(text_.size());
  std::vector<std::uint8_t> out(size);
  const int rc =
      compress2(out.data(), &size, reinterpret_cast<const Bytef*>(text_.data()), text_.size(), 6);
  if (rc != Z_OK && status_.ok()) status_ = Internal(fmt::format("zlib compress2 failed ({})", rc));
  encoded.push_back(Base64(out.data(), size));
  text_.clear();
}

}  // namespace mmsb::report
