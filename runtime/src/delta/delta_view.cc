#include "delta/delta_view.h"

#include <xxhash.h>

#include <cstring>

#include <fmt/format.h>
#if defined(__x86_64__) && __has_include(<xxh_x86dispatch.h>)
#include <xxh_x86dispatch.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/envelope.h"
#include "core/varint.h"
#include "delta/delta_format.h"

namespace mmsb::delta_internal {
namespace {

// The set bits of a dense mask. With the popcnt instruction where the CPU has it (the baseline
// x86-64 target has none, and the portable count costs about a dozen instructions per word).
[[gnu::always_inline]] inline std::uint64_t CountBits(const std::uint8_t* mask, std::size_t len) {
  std::uint64_t bits = 0;
  std::size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, mask + i, 8);
    bits += static_cast<std::uint64_t>(__builtin_popcountll(w));
  }
  for (; i < len; ++i) bits += static_cast<std::uint64_t>(__builtin_popcount(mask[i]));
  return bits;
}
#if defined(__x86_64__)
[[gnu::target("popcnt")]] std::uint64_t CountBitsPopcnt(const std::uint8_t* mask, std::size_t len) {
  return CountBits(mask, len);  // inlined here: compiled with popcnt
}
#endif
std::uint64_t CountMaskBits(const std::uint8_t* mask, std::size_t len) {
#if defined(__x86_64__)
  static const bool kPopcnt = __builtin_cpu_supports("popcnt");
  if (kPopcnt) return CountBitsPopcnt(mask, len);
#endif
  return CountBits(mask, len);
}

// A bounds-checked reader over a delta's body; its varints are core/varint.h's, whose one- and
// two-byte fast paths are inlined here: run tables are mostly such varints, and replay parses
// hundreds of thousands of them.
class FastReader {
 public:
  FastReader(const std::uint8_t* p, const std::uint8_t* end) : p_(p), end_(end) {}
  [[gnu::always_inline]] inline bool Varint(std::uint64_t* v) {
    varint::Error error = varint::Error::kNone;
    const std::uint8_t* next = varint::Get(p_, end_, v, &error);
    if (next == nullptr) return false;
    p_ = next;
    return true;
  }
  bool Bytes(std::size_t n, const std::uint8_t** out) {
    if (static_cast<std::size_t>(end_ - p_) < n) return false;
    *out = p_;
    p_ += n;
    return true;
  }
  std::size_t remaining() const { return static_cast<std::size_t>(end_ - p_); }
  const std::uint8_t* position() const { return p_; }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

}  // namespace

Status ParseDeltaView(std::span<const std::uint8_t> in, std::uint32_t max_page_size,
                      bool verify_checksum, DeltaView* out) {
  constexpr std::size_t kMin = envelope::kHeaderBytes + envelope::kChecksumBytes;
  if (in.size() < kMin) return Corruption(fmt::format("delta: truncated: {} byte(s)", in.size()));
  if (in[0] != format::kDeltaMagic)
    return Corruption(fmt::format("delta: bad magic 0x{:02x}", in[0]));
  if (in[1] != envelope::kVersion)
    return Unsupported(fmt::format("delta: unsupported version {}", in[1]));
  const std::uint64_t len = envelope::GetU64(in.data() + 4);
  if (len < kMin)
    return Corruption(fmt::format("delta: declared length {} is shorter than the header", len));
  if (len != in.size()) {
    return Corruption(fmt::format("delta: declares {} bytes, the record has {}", len, in.size()));
  }
  if (verify_checksum && XXH3_64bits(in.data(), len - 8) != envelope::GetU64(in.data() + len - 8)) {
    return Corruption("delta: checksum mismatch");
  }
  if (in[3] != 0) return Corruption(fmt::format("delta: unknown flags 0x{:02x}", in[3]));
  const std::uint8_t form = in[2];
  if (form != format::kFormSparse && form != format::kFormDense) {
    return Corruption(fmt::format("delta: unknown form {}", form));
  }
  FastReader r(in.data() + envelope::kHeaderBytes, in.data() + len - envelope::kChecksumBytes);
  std::uint64_t page, base_epoch, page_size, changed;
  if (!r.Varint(&page) || !r.Varint(&base_epoch) || !r.Varint(&page_size) || !r.Varint(&changed)) {
    return Corruption("delta: header fields run past the record");
  }
  if (page == kInvalidPageId) return Corruption("delta: page id 0 is invalid");
  if (page_size == 0 || page_size > max_page_size) {
    return Corruption(
        fmt::format("delta: page size {} is out of range [1, {}]", page_size, max_page_size));
  }
  if (changed > page_size)
    return Corruption(fmt::format("delta: {} changed bytes in a {}-byte page", changed, page_size));
  DeltaView v;
  v.page = page;
  v.base_epoch = base_epoch;
  v.page_size = static_cast<std::uint32_t>(page_size);
  v.changed_bytes = static_cast<std::uint32_t>(changed);
  v.dense = form == format::kFormDense;
  v.total = len;
  if (!v.dense) {
    std::uint64_t nruns;
    if (!r.Varint(&nruns)) return Corruption("delta: run count runs past the record");
    if (nruns > changed || nruns * 2 > r.remaining()) {
      return Corruption(fmt::format("delta: {} runs cannot fit in the record", nruns));
    }
    const std::uint8_t* table_start = r.position();
    std::uint64_t pos = 0, sum = 0;
    for (std::uint64_t i = 0; i < nruns; ++i) {
      std::uint64_t gap, run;
      if (!r.Varint(&gap) || !r.Varint(&run))
        return Corruption(fmt::format("delta: run {} runs past the record", i));
      if (run == 0) return Corruption(fmt::format("delta: run {} has length 0", i));
      if (i > 0 && gap == 0)
        return Corruption(fmt::format("delta: run {} is adjacent to the previous one", i));
      if (gap > page_size || run > page_size || pos + gap + run > page_size) {
        return Corruption(fmt::format("delta: run {} ends past the {}-byte page", i, page_size));
      }
      pos += gap + run;
      sum += run;
    }
    if (sum != changed)
      return Corruption(fmt::format("delta: runs cover {} bytes, header says {}", sum, changed));
    v.run_count = nruns;
    v.table = table_start;
  } else {
    const std::size_t mask_len = (page_size + 7) / 8;
    const std::uint8_t* mask;
    if (!r.Bytes(mask_len, &mask)) return Corruption("delta: dense mask runs past the record");
    if ((page_size % 8) != 0 && (mask[mask_len - 1] >> (page_size % 8)) != 0) {
      return Corruption("delta: dense mask has bits past the end of the page");
    }
    const std::uint64_t bits = CountMaskBits(mask, mask_len);
    if (bits != changed)
      return Corruption(fmt::format("delta: mask has {} bits, header says {}", bits, changed));
    v.table = mask;
  }
  if (!r.Bytes(changed, &v.bytes)) return Corruption("delta: new bytes run past the record");
  if (r.remaining() != 0)
    return Corruption(fmt::format("delta: {} trailing byte(s) in the record", r.remaining()));
  *out = v;
  return Status::Ok();
}

void RunsOfView(const DeltaView& v, ByteRun* out) {
  const std::uint8_t* t = v.table;
  std::uint64_t pos = 0;
  for (std::uint64_t i = 0; i < v.run_count; ++i) {
    pos += varint::GetTrusted(t);
    const std::uint64_t run = varint::GetTrusted(t);
    out[i] = {static_cast<std::uint32_t>(pos), static_cast<std::uint32_t>(run)};
    pos += run;
  }
}

namespace {

// Dense apply, portable: a full mask word is one 64-byte copy, other words a loop over their bits.
void ApplyDenseScalar(const std::uint8_t* mask, std::size_t mask_len, const std::uint8_t* src,
                      std::uint8_t* page) {
  for (std::size_t w = 0; w * 8 < mask_len; ++w) {
    std::uint64_t m = 0;
    std::memcpy(&m, mask + w * 8, std::min<std::size_t>(8, mask_len - w * 8));
    if (m == ~std::uint64_t{0}) {
      std::memcpy(page + w * 64, src, 64);
      src += 64;
      continue;
    }
    while (m != 0) {
      const int bit = __builtin_ctzll(m);
      page[w * 64 + static_cast<std::size_t>(bit)] = *src++;
      m &= m - 1;
    }
  }
}

#if defined(__x86_64__)
// For each mask byte b, the shuffle that expands the next popcount(b) new bytes onto b's set
// bits: lane i takes new byte rank(i) = popcount(b & ((1 << i) - 1)) where bit i is set, and
// 0x80 (pshufb's "zero") where it is not. `shift[k]` is k in every lane: added to the high mask
// byte's lanes it moves their ranks past the low byte's k new bytes, and an unset lane (0x80 + k)
// keeps its high bit.
struct ExpandTable {
  alignas(16) std::uint8_t lanes[256][8];
  alignas(16) std::uint8_t shift[9][16];
};
constexpr ExpandTable MakeExpandTable() {
  ExpandTable t{};
  for (unsigned b = 0; b < 256; ++b) {
    unsigned rank = 0;
    for (unsigned i = 0; i < 8; ++i) {
      t.lanes[b][i] = static_cast<std::uint8_t>(((b >> i) & 1) != 0 ? rank++ : 0x80);
    }
  }
  for (unsigned k = 0; k <= 8; ++k) {
    for (unsigned i = 0; i < 16; ++i) t.shift[k][i] = static_cast<std::uint8_t>(k);
  }
  return t;
}
constexpr ExpandTable kExpand = MakeExpandTable();

// Dense apply, SSSE3/SSE4.1 (every x86-64 CPU of the last 15 years): 16 page bytes per step. One
// pshufb places the next popcount(m16) new bytes at the set positions of the step's 16 mask bits
// (the table gives each mask byte's lanes; the high byte's ranks are shifted by the low byte's
// count), and pblendvb keeps the page's old byte in every lane the mask does not name, selecting
// on the shuffle's own lanes (an unset lane's index has its high bit set: no mask vector to
// build). The page bytes are read and written back unchanged, so the page must not be written
// concurrently (replay and recovery own the image they apply into). A word's steps run only while
// 64 new bytes remain (`src_end`; a word takes at most 64, so no 16-byte load reads past them),
// and only on whole 64-byte words of the page; the rest goes bit by bit.
[[gnu::target("ssse3,sse4.1,popcnt")]] void ApplyDenseSse(const std::uint8_t* mask,
                                                          std::size_t page_size,
                                                          const std::uint8_t* src,
                                                          const std::uint8_t* src_end,
                                                          std::uint8_t* page) {
  std::size_t pos = 0;
  for (; pos + 64 <= page_size; pos += 64) {
    std::uint64_t m;
    std::memcpy(&m, mask + pos / 8, 8);
    if (m == 0) continue;
    if (m == ~std::uint64_t{0}) {
      if (src_end - src < 64) break;
      std::memcpy(page + pos, src, 64);
      src += 64;
      continue;
    }
    if (src_end - src < 64) break;  // a word needs at most 64 new bytes
    for (std::size_t q = 0; q < 4; ++q, m >>= 16) {
      const auto lo = static_cast<std::uint32_t>(m & 0xff);
      const auto hi = static_cast<std::uint32_t>((m >> 8) & 0xff);
      const auto n_lo = static_cast<unsigned>(__builtin_popcount(lo));
      const __m128i lanes = _mm_unpacklo_epi64(
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(kExpand.lanes[lo])),
          _mm_add_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(kExpand.lanes[hi])),
                       _mm_load_si128(reinterpret_cast<const __m128i*>(kExpand.shift[n_lo]))));
      const __m128i expanded =
          _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)), lanes);
      auto* at = reinterpret_cast<__m128i*>(page + pos + q * 16);
      _mm_storeu_si128(at, _mm_blendv_epi8(expanded, _mm_loadu_si128(at), lanes));
      src += n_lo + static_cast<unsigned>(__builtin_popcount(hi));
    }
  }
  // The page's last partial word, and whatever the loop left for want of new bytes.
  ApplyDenseScalar(mask + pos / 8, (page_size + 7) / 8 - pos / 8, src, page + pos);
}

// Dense apply, AVX-512 VBMI2 (Ice Lake and later, Zen 4 and later): per mask word, one expanding
// load places the next popcount(m) new bytes at the mask's set positions and one masked store
// writes exactly those page bytes. Both are masked, so neither touches a byte the mask does not
// name: no read past the record's new bytes, no write past the page (the parse checked that no
// mask bit lies past page_size), whatever the page size.
[[gnu::target("avx512f,avx512bw,avx512vbmi2,popcnt")]] void ApplyDenseVbmi2(
    const std::uint8_t* mask, std::size_t mask_len, const std::uint8_t* src, std::uint8_t* page) {
  for (std::size_t w = 0; w * 8 < mask_len; ++w) {
    std::uint64_t m = 0;
    std::memcpy(&m, mask + w * 8, std::min<std::size_t>(8, mask_len - w * 8));
    if (m == 0) continue;
    const __m512i v = _mm512_maskz_expandloadu_epi8(m, src);
    _mm512_mask_storeu_epi8(page + w * 64, m, v);
    src += __builtin_popcountll(m);
  }
}
#endif

DenseApplyPath PickApplyDense() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("avx512bw")) {
    return DenseApplyPath::kVbmi2;
  }
  if (__builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3") &&
      __builtin_cpu_supports("popcnt")) {
    return DenseApplyPath::kSse;
  }
#endif
  return DenseApplyPath::kScalar;
}

void ApplyDense(DenseApplyPath path, const DeltaView& v, std::uint8_t* page) {
  const std::size_t mask_len = (static_cast<std::size_t>(v.page_size) + 7) / 8;
  switch (path) {
#if defined(__x86_64__)
    case DenseApplyPath::kVbmi2:
      ApplyDenseVbmi2(v.table, mask_len, v.bytes, page);
      return;
    case DenseApplyPath::kSse:
      ApplyDenseSse(v.table, v.page_size, v.bytes, v.bytes + v.changed_bytes, page);
      return;
#endif
    default:
      ApplyDenseScalar(v.table, mask_len, v.bytes, page);
      return;
  }
}

}  // namespace

void ApplyDeltaView(const DeltaView& v, std::uint8_t* page) {
  const std::uint8_t* src = v.bytes;
  if (!v.dense) {
    const std::uint8_t* t = v.table;
    std::uint64_t pos = 0;
    for (std::uint64_t i = 0; i < v.run_count; ++i) {
      pos += varint::GetTrusted(t);
      const std::uint64_t run = varint::GetTrusted(t);
      if (run <= 8) {
        for (std::uint64_t k = 0; k < run; ++k) page[pos + k] = src[k];
      } else {
        std::memcpy(page + pos, src, run);
      }
      src += run;
      pos += run;
    }
    return;
  }
  static const DenseApplyPath kPath = PickApplyDense();
  ApplyDense(kPath, v, page);
}

void ApplyDeltaViewPart(const DeltaView& v, std::uint8_t* page, std::uint32_t begin,
                        std::uint32_t end) {
  if (!v.dense || (begin == 0 && end == v.page_size)) {
    if (begin == 0) ApplyDeltaView(v, page);
    return;
  }
  MMSB_CHECK(begin % 64 == 0 && begin < end && end <= v.page_size &&
             (end % 64 == 0 || end == v.page_size));
  const std::uint64_t before = CountMaskBits(v.table, begin / 8);
  DeltaView part = v;
  part.page_size = end - begin;
  part.table = v.table + begin / 8;
  part.bytes = v.bytes + before;
  // The new bytes from the part's first to the record's end: an upper bound on what the part
  // takes, and the bound the SSE apply's 16-byte loads stay within.
  part.changed_bytes = static_cast<std::uint32_t>(v.changed_bytes - before);
  static const DenseApplyPath kPath = PickApplyDense();
  ApplyDense(kPath, part, page + begin);
}

bool DenseApplyPathSupported(DenseApplyPath path) {
  switch (path) {
    case DenseApplyPath::kScalar:
      return true;
    case DenseApplyPath::kSse:
      return PickApplyDense() != DenseApplyPath::kScalar;
    case DenseApplyPath::kVbmi2:
      return PickApplyDense() == DenseApplyPath::kVbmi2;
  }
  return false;
}

void ApplyDeltaViewDenseForTest(DenseApplyPath path, const DeltaView& v, std::uint8_t* page) {
  ApplyDense(path, v, page);
}

void AppendDeltaViewRuns(const DeltaView& v, std::vector<ByteRun>* out) {
  if (!v.dense) {
    const std::size_t at = out->size();
    out->resize(at + v.run_count);
    RunsOfView(v, out->data() + at);
    return;
  }
  // Dense: runs of set bits of the mask (bit i % 8 of byte i / 8 is page byte i).
  const std::uint32_t size = v.page_size;
  std::uint32_t i = 0;
  while (i < size) {
    if ((i & 7) == 0 && v.table[i >> 3] == 0) {
      i += 8;
      continue;
    }
    if (((v.table[i >> 3] >> (i & 7)) & 1) == 0) {
      ++i;
      continue;
    }
    const std::uint32_t start = i;
    while (i < size && ((v.table[i >> 3] >> (i & 7)) & 1) != 0) ++i;
    out->push_back({start, i - start});
  }
}

}  // namespace mmsb::delta_internal
