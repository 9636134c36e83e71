// The query index file's format (`query.idx`), shared by its writer (LogIndex::Impl::Save, and
// the build's encoders) and its reader (Load, and the block decoders). See
// docs/SerializationSpec.md, "The query index".
//
// Varints are core/varint.h's. VarReader reads untrusted bytes: every read is bounds-checked (a
// truncated, too long or overlong varint fails), and the first failure sticks (ok() turns false
// and every later read returns 0 or empty).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/varint.h"

namespace mmsb::query {

inline constexpr char kIndexMagic[8] = {'M', 'M', 'S', 'B', 'Q', 'I', 'D', 'X'};
inline constexpr std::uint32_t kIndexVersion = 3;  // 3: small deltas inline, builds' units
inline constexpr std::size_t kIndexHeader = 56;
inline constexpr std::uint64_t kTailBytes = 32;
// A delta record whose payload is at most this long is copied into its page's change block
// (version 3), so a query applies it without reading the segment. Small deltas are the ones whose
// positioned read costs most against their bytes; larger ones stay in the log only, which keeps
// the index a small fraction of it.
inline constexpr std::size_t kInlineDeltaMax = 64;

class VarWriter {
 public:
  explicit VarWriter(std::vector<std::uint8_t>& out) : out_(out) {}
  void V(std::uint64_t v) { varint::Append(out_, v); }
  void S(std::string_view s) {
    V(s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void B(std::span<const std::uint8_t> b) {
    V(b.size());
    out_.insert(out_.end(), b.begin(), b.end());
  }

 private:
  std::vector<std::uint8_t>& out_;
};

class VarReader {
 public:
  explicit VarReader(std::span<const std::uint8_t> in) : in_(in) {}
  std::uint64_t V() {
    if (!ok_) return 0;
    std::uint64_t v = 0;
    varint::Error error = varint::Error::kNone;
    const std::uint8_t* const at = in_.data() + pos_;
    const std::uint8_t* const next = varint::Get(at, in_.data() + in_.size(), &v, &error);
    if (next == nullptr) return Fail();
    pos_ += static_cast<std::size_t>(next - at);
    return v;
  }
  std::string S() {
    auto b = B();
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  std::span<const std::uint8_t> B() {
    const std::uint64_t n = V();
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      return {};
    }
    auto r = in_.subspan(pos_, n);
    pos_ += n;
    return r;
  }
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == in_.size(); }

 private:
  std::uint64_t Fail() {
    ok_ = false;
    pos_ = in_.size();
    return 0;
  }
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace mmsb::query
