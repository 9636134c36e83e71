// Delta and page-image encoding. The decoders treat input as untrusted: every length is checked
// against the input before use, allocations are bounded by the declared page size (itself capped
// by the caller's max_page_size) and by the input length, and integrity is checked (XXH3) before
// any variable-length field is interpreted.
#include <cstring>

#include <fmt/format.h>
#include <xxhash.h>

#include "delta/delta_format.h"
#include "delta/delta_internal.h"
#include "mmsb/delta.h"

namespace mmsb {
namespace {

void PutU64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

void PutVarint(std::vector<std::uint8_t>& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<std::uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(v));
}

std::uint64_t GetU64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{p[i]} << (8 * i);
  return v;
}

// Patches the total length at `start` + 4 and appends the checksum of [start, end).
void Seal(std::vector<std::uint8_t>& out, std::size_t start) {
  const std::uint64_t total = out.size() - start + delta_internal::kChecksumBytes;
  for (int i = 0; i < 8; ++i) out[start + 4 + i] = static_cast<std::uint8_t>(total >> (8 * i));
  PutU64(out, XXH3_64bits(out.data() + start, out.size() - start));
}

// A bounds-checked reader over one record's body.
class Reader {
 public:
  Reader(const std::uint8_t* p, std::size_t n) : p_(p), end_(p + n) {}
  bool Varint(std::uint64_t* v) {
    std::uint64_t r = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const std::uint8_t b = *p_++;
      if (shift == 63 && b > 1) return false;  // overflows 64 bits
      r |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *v = r;
        return true;
      }
    }
    return false;
  }
  bool Bytes(std::size_t n, const std::uint8_t** out) {
    if (static_cast<std::size_t>(end_ - p_) < n) return false;
    *out = p_;
    p_ += n;
    return true;
  }
  std::size_t remaining() const { return static_cast<std::size_t>(end_ - p_); }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

// Validates the fixed header and checksum; on success *body/*body_len cover the bytes between
// the fixed header and the checksum, and *total is the record length.
Status OpenRecord(std::span<const std::uint8_t> in, std::uint8_t magic, const char* what,
                  std::uint8_t* kind, const std::uint8_t** body, std::size_t* body_len,
                  std::size_t* total) {
  constexpr std::size_t kMin = delta_internal::kFixedHeaderBytes + delta_internal::kChecksumBytes;
  if (in.size() < kMin) {
    return SerializationError(fmt::format("{}: truncated: {} byte(s), the header alone needs {}", what, in.size(), kMin));
  }
  if (in[0] != magic) return Corruption(fmt::format("{}: bad magic 0x{:02x} (want 0x{:02x})", what, in[0], magic));
  if (in[1] != format::kVersion) {
    return SerializationError(fmt::format("{}: unsupported version {} (this reader knows {})", what, in[1], format::kVersion));
  }
  const std::uint64_t len = GetU64(in.data() + 4);
  if (len < kMin) return Corruption(fmt::format("{}: declared length {} is shorter than the header", what, len));
  if (len > in.size()) {
    return SerializationError(fmt::format("{}: truncated: declares {} bytes, {} available", what, len, in.size()));
  }
  const std::uint64_t want = GetU64(in.data() + len - 8);
  const std::uint64_t got = XXH3_64bits(in.data(), len - 8);
  if (want != got) return Corruption(fmt::format("{}: checksum mismatch (stored {:016x}, computed {:016x})", what, want, got));
  if ((in[3] & ~format::kKnownFlags) != 0) {
    return SerializationError(fmt::format("{}: unknown flags 0x{:02x}", what, in[3]));
  }
  *kind = in[2];
  *body = in.data() + delta_internal::kFixedHeaderBytes;
  *body_len = len - kMin;
  *total = len;
  return Status::Ok();
}

void StartRecord(std::vector<std::uint8_t>& out, std::uint8_t magic, std::uint8_t kind) {
  out.push_back(magic);
  out.push_back(format::kVersion);
  out.push_back(kind);
  out.push_back(0);  // flags
  PutU64(out, 0);    // total length, patched by Seal
}

}  // namespace

void EncodeDeltaTo(const Delta& d, std::vector<std::uint8_t>& out) {
  const std::size_t start = out.size();
  out.reserve(start + d.EncodedSize());
  StartRecord(out, format::kDeltaMagic, d.form() == Delta::Form::kSparse ? format::kFormSparse : format::kFormDense);
  PutVarint(out, d.page());
  PutVarint(out, d.base_epoch());
  PutVarint(out, d.page_size());
  PutVarint(out, d.changed_bytes());
  if (d.form() == Delta::Form::kSparse) {
    const std::vector<ByteRun> runs = d.Runs();
    PutVarint(out, runs.size());
    std::uint32_t prev_end = 0;
    for (const ByteRun& r : runs) {
      PutVarint(out, r.offset - prev_end);
      PutVarint(out, r.length);
      prev_end = r.offset + r.length;
    }
  } else {
    const std::vector<std::uint8_t> mask = d.Mask();
    out.insert(out.end(), mask.begin(), mask.end());
  }
  out.insert(out.end(), d.bytes().begin(), d.bytes().end());
  Seal(out, start);
}

std::vector<std::uint8_t> EncodeDelta(const Delta& d) {
  std::vector<std::uint8_t> out;
  EncodeDeltaTo(d, out);
  return out;
}

Expected<Delta> DecodeDelta(std::span<const std::uint8_t> in, std::size_t* consumed,
                            std::uint32_t max_page_size) {
  std::uint8_t form;
  const std::uint8_t* body;
  std::size_t body_len, total;
  MMSB_RETURN_IF_ERROR(OpenRecord(in, format::kDeltaMagic, "delta", &form, &body, &body_len, &total));
  if (form != format::kFormSparse && form != format::kFormDense) {
    return SerializationError(fmt::format("delta: unknown form {}", form));
  }
  Reader r(body, body_len);
  std::uint64_t page, base_epoch, page_size, changed;
  if (!r.Varint(&page) || !r.Varint(&base_epoch) || !r.Varint(&page_size) || !r.Varint(&changed)) {
    return SerializationError("delta: header fields run past the record");
  }
  if (page == kInvalidPageId) return SerializationError("delta: page id 0 is invalid");
  if (page_size == 0 || page_size > max_page_size) {
    return SerializationError(fmt::format("delta: page size {} is out of range [1, {}]", page_size, max_page_size));
  }
  if (changed > page_size) {
    return SerializationError(fmt::format("delta: {} changed bytes in a {}-byte page", changed, page_size));
  }
  DeltaBuilder b(page, base_epoch, static_cast<std::uint32_t>(page_size));
  if (form == format::kFormSparse) {
    std::uint64_t nruns;
    if (!r.Varint(&nruns)) return SerializationError("delta: run count runs past the record");
    // Every run takes at least two bytes of table and one new byte.
    if (nruns > changed || nruns * 2 > r.remaining()) {
      return SerializationError(fmt::format("delta: {} runs cannot fit in the record", nruns));
    }
    std::vector<ByteRun> runs;
    runs.reserve(nruns);
    std::uint64_t pos = 0, sum = 0;
    for (std::uint64_t i = 0; i < nruns; ++i) {
      std::uint64_t gap, len;
      if (!r.Varint(&gap) || !r.Varint(&len)) return SerializationError(fmt::format("delta: run {} runs past the record", i));
      if (len == 0) return SerializationError(fmt::format("delta: run {} has length 0", i));
      if (i > 0 && gap == 0) return SerializationError(fmt::format("delta: run {} is adjacent to the previous one", i));
      if (gap > page_size || len > page_size || pos + gap + len > page_size) {
        return SerializationError(fmt::format("delta: run {} ends past the {}-byte page", i, page_size));
      }
      pos += gap;
      runs.push_back({static_cast<std::uint32_t>(pos), static_cast<std::uint32_t>(len)});
      pos += len;
      sum += len;
    }
    if (sum != changed) {
      return SerializationError(fmt::format("delta: runs cover {} bytes, header says {}", sum, changed));
    }
    const std::uint8_t* bytes;
    if (!r.Bytes(changed, &bytes)) return SerializationError("delta: new bytes run past the record");
    for (const ByteRun& run : runs) {
      b.AddRun(run.offset, bytes, run.length);
      bytes += run.length;
    }
  } else {
    const std::size_t mask_len = (page_size + 7) / 8;
    const std::uint8_t* mask;
    if (!r.Bytes(mask_len, &mask)) return SerializationError("delta: dense mask runs past the record");
    if ((page_size % 8) != 0 && (mask[mask_len - 1] >> (page_size % 8)) != 0) {
      return SerializationError("delta: dense mask has bits past the end of the page");
    }
    std::uint64_t bits = 0;
    for (std::size_t i = 0; i < mask_len; ++i) bits += static_cast<std::uint64_t>(__builtin_popcount(mask[i]));
    if (bits != changed) return SerializationError(fmt::format("delta: mask has {} bits, header says {}", bits, changed));
    const std::uint8_t* bytes;
    if (!r.Bytes(changed, &bytes)) return SerializationError("delta: new bytes run past the record");
    // Rebuild through the builder, 64 bits of mask at a time.
    for (std::size_t w = 0; w * 8 < mask_len; ++w) {
      std::uint64_t m = 0;
      std::memcpy(&m, mask + w * 8, std::min<std::size_t>(8, mask_len - w * 8));
      if (m == 0) continue;
      // AddMask64 wants src to point at page byte w*64; the packed bytes are consumed in order.
      const int n = __builtin_popcountll(m);
      std::uint8_t expanded[64];
      std::uint64_t t = m;
      for (int k = 0; k < n; ++k) {
        const int bit = __builtin_ctzll(t);
        expanded[bit] = *bytes++;
        t &= t - 1;
      }
      b.AddMask64(static_cast<std::uint32_t>(w * 64), m, expanded);
    }
  }
  if (r.remaining() != 0) return SerializationError(fmt::format("delta: {} trailing byte(s) in the record", r.remaining()));
  if (consumed) *consumed = total;
  Delta d = b.Finish();
  // Keep the form the writer chose: Finish() may pick differently only on ties.
  d.ConvertTo(form == format::kFormSparse ? Delta::Form::kSparse : Delta::Form::kDense);
  return d;
}

std::vector<std::uint8_t> EncodePageImage(const PageImage& img) {
  std::vector<std::uint8_t> out;
  out.reserve(img.bytes.size() + 48);
  StartRecord(out, format::kPageImageMagic, static_cast<std::uint8_t>(img.location));
  PutVarint(out, img.id);
  PutVarint(out, img.epoch);
  PutVarint(out, img.bytes.size());
  out.insert(out.end(), img.bytes.begin(), img.bytes.end());
  Seal(out, 0);
  return out;
}

Expected<PageImage> DecodePageImage(std::span<const std::uint8_t> in, std::size_t* consumed,
                                    std::uint32_t max_page_size) {
  std::uint8_t loc;
  const std::uint8_t* body;
  std::size_t body_len, total;
  MMSB_RETURN_IF_ERROR(OpenRecord(in, format::kPageImageMagic, "page image", &loc, &body, &body_len, &total));
  if (loc > static_cast<std::uint8_t>(Location::kUnified)) {
    return SerializationError(fmt::format("page image: unknown location {}", loc));
  }
  Reader r(body, body_len);
  std::uint64_t id, epoch, size;
  if (!r.Varint(&id) || !r.Varint(&epoch) || !r.Varint(&size)) {
    return SerializationError("page image: header fields run past the record");
  }
  if (id == kInvalidPageId) return SerializationError("page image: page id 0 is invalid");
  if (size == 0 || size > max_page_size) {
    return SerializationError(fmt::format("page image: size {} is out of range [1, {}]", size, max_page_size));
  }
  if (r.remaining() != size) {
    return SerializationError(fmt::format("page image: declares {} bytes, record holds {}", size, r.remaining()));
  }
  const std::uint8_t* bytes;
  (void)r.Bytes(size, &bytes);
  PageImage img;
  img.id = id;
  img.epoch = epoch;
  img.location = static_cast<Location>(loc);
  img.bytes.assign(bytes, bytes + size);
  if (consumed) *consumed = total;
  return img;
}

}  // namespace mmsb
