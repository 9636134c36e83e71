#include "mmsb/ir/record.h"

#include <xxhash.h>

namespace mmsb::ir {

const char* StageName(Stage stage) { return stage == Stage::kPre ? "pre" : "post"; }

std::optional<Stage> ParseStage(std::string_view name) {
  if (name == "pre") return Stage::kPre;
  if (name == "post") return Stage::kPost;
  return std::nullopt;
}

TextHash HashText(std::string_view text) {
  const XXH128_hash_t h = XXH3_128bits(text.data(), text.size());
  XXH128_canonical_t canon;
  XXH128_canonicalFromHash(&canon, h);
  TextHash out;
  static_assert(sizeof(canon.digest) == sizeof(out));
  for (size_t i = 0; i < out.size(); ++i) out[i] = canon.digest[i];
  return out;
}

std::string HexOf(const TextHash& hash) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(hash.size() * 2);
  for (std::uint8_t b : hash) {
    s += kHex[b >> 4];
    s += kHex[b & 15];
  }
  return s;
}

}  // namespace mmsb::ir
