// Delta and page-image encoding. The decoders treat input as untrusted: every length is checked
// against the input before use, allocations are bounded by the declared page size (itself capped
// by the caller's max_page_size) and by the input length, and integrity is checked (XXH3) before
// any variable-length field is interpreted.
#include <cstring>

#include <fmt/format.h>

#include "core/envelope.h"
#include "delta/delta_format.h"
#include "delta/delta_internal.h"
#include "mmsb/delta.h"

namespace mmsb {

using envelope::OpenRecord;
using envelope::PutVarint;
using envelope::Reader;
using envelope::Seal;
using envelope::StartRecord;

namespace {

// Writes into a buffer sized exactly by Delta::EncodedSize(): no per-byte push_back.
std::uint8_t* PutVarintAt(std::uint8_t* p, std::uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<std::uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<std::uint8_t>(v);
  return p;
}

}  // namespace

void EncodeDeltaTo(const Delta& d, std::vector<std::uint8_t>& out) {
  const std::size_t start = out.size();
  const std::size_t size = d.EncodedSize();
  out.resize(start + size);
  std::uint8_t* p = out.data() + start;
  *p++ = format::kDeltaMagic;
  *p++ = envelope::kVersion;
  *p++ = d.form() == Delta::Form::kSparse ? format::kFormSparse : format::kFormDense;
  *p++ = 0;  // flags
  p += 8;    // total length, patched by Seal
  p = PutVarintAt(p, d.page());
  p = PutVarintAt(p, d.base_epoch());
  p = PutVarintAt(p, d.page_size());
  p = PutVarintAt(p, d.changed_bytes());
  if (d.form() == Delta::Form::kSparse) {
    const std::span<const ByteRun> runs = d.sparse_runs();
    p = PutVarintAt(p, runs.size());
    std::uint32_t prev_end = 0;
    for (const ByteRun& r : runs) {
      p = PutVarintAt(p, r.offset - prev_end);
      p = PutVarintAt(p, r.length);
      prev_end = r.offset + r.length;
    }
  } else {
    const std::vector<std::uint8_t> mask = d.Mask();  // the stored mask, copied once
    std::memcpy(p, mask.data(), mask.size());
    p += mask.size();
  }
  if (d.changed_bytes() != 0) std::memcpy(p, d.bytes().data(), d.changed_bytes());
  p += d.changed_bytes();
  // Seal appends the checksum: drop the reserved tail first.
  MMSB_CHECK(static_cast<std::size_t>(p - (out.data() + start)) + envelope::kChecksumBytes == size);
  out.resize(out.size() - envelope::kChecksumBytes);
  Seal(out, start);
}

std::vector<std::uint8_t> EncodeDelta(const Delta& d) {
  std::vector<std::uint8_t> out;
  EncodeDeltaTo(d, out);
  return out;
}

Expected<Delta> DecodeDelta(std::span<const std::uint8_t> in, std::size_t* consumed,
                            std::uint32_t max_page_size) {
  auto rec = OpenRecord(in, format::kDeltaMagic, "delta");
  if (!rec.ok()) return rec.status();
  const std::uint8_t form = rec->kind;
  const std::size_t total = rec->total;
  if (form != format::kFormSparse && form != format::kFormDense) {
    return SerializationError(fmt::format("delta: unknown form {}", form));
  }
  Reader r(rec->body);
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
    // Decode straight into the delta's storage: the run table, then the new bytes.
    Delta d;
    d.page_ = page;
    d.base_epoch_ = base_epoch;
    d.page_size_ = static_cast<std::uint32_t>(page_size);
    d.Reset(Delta::Form::kSparse, nruns * sizeof(ByteRun), static_cast<std::uint32_t>(changed));
    auto* runs = reinterpret_cast<ByteRun*>(d.data());
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
      runs[i] = {static_cast<std::uint32_t>(pos), static_cast<std::uint32_t>(len)};
      pos += len;
      sum += len;
    }
    if (sum != changed) {
      return SerializationError(fmt::format("delta: runs cover {} bytes, header says {}", sum, changed));
    }
    const std::uint8_t* bytes;
    if (!r.Bytes(changed, &bytes)) return SerializationError("delta: new bytes run past the record");
    if (changed != 0) std::memcpy(d.data() + d.table_bytes_, bytes, changed);
    if (r.remaining() != 0) return SerializationError(fmt::format("delta: {} trailing byte(s) in the record", r.remaining()));
    if (consumed) *consumed = total;
    return d;
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
  auto rec = OpenRecord(in, format::kPageImageMagic, "page image");
  if (!rec.ok()) return rec.status();
  const std::uint8_t loc = rec->kind;
  const std::size_t total = rec->total;
  if (loc > static_cast<std::uint8_t>(Location::kUnified)) {
    return SerializationError(fmt::format("page image: unknown location {}", loc));
  }
  Reader r(rec->body);
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
