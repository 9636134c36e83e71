// Delta and page-image encoding. The decoders treat input as untrusted: every length is checked
// against the input before use, allocations are bounded by the declared page size (itself capped
// by the caller's max_page_size) and by the input length, and integrity is checked (XXH3) before
// any variable-length field is interpreted.
#include <cstring>

#include <fmt/format.h>

#include "mmsb/delta.h"

#include "core/envelope.h"
#include "core/varint.h"
#include "delta/delta_format.h"
#include "delta/delta_internal.h"
#include "delta/delta_view.h"

namespace mmsb {

using envelope::OpenRecord;
using envelope::Reader;
using envelope::Seal;
using envelope::StartRecord;

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
  p = varint::PutAt(p, d.page());
  p = varint::PutAt(p, d.base_epoch());
  p = varint::PutAt(p, d.page_size());
  p = varint::PutAt(p, d.changed_bytes());
  if (d.form() == Delta::Form::kSparse) {
    const std::span<const ByteRun> runs = d.sparse_runs();
    p = varint::PutAt(p, runs.size());
    std::uint32_t prev_end = 0;
    for (const ByteRun& r : runs) {
      p = varint::PutAt(p, r.offset - prev_end);
      p = varint::PutAt(p, r.length);
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
  // The record may be followed by others: parse exactly the bytes it declares.
  if (in.size() >= envelope::kHeaderBytes) {
    const std::uint64_t len = envelope::GetU64(in.data() + 4);
    if (len >= envelope::kHeaderBytes + envelope::kChecksumBytes && len <= in.size())
      in = in.first(len);
  }
  delta_internal::DeltaView v;
  MMSB_RETURN_IF_ERROR(
      delta_internal::ParseDeltaView(in, max_page_size, /*verify_checksum=*/true, &v));
  // The view is checked: copy it into the delta's storage as it stands.
  Delta d;
  d.page_ = v.page;
  d.base_epoch_ = v.base_epoch;
  d.page_size_ = v.page_size;
  if (v.dense) {
    const std::size_t mask_len = (std::size_t{v.page_size} + 7) / 8;
    d.Reset(Delta::Form::kDense, mask_len, v.changed_bytes);
    std::memcpy(d.data(), v.table, mask_len);
  } else {
    d.Reset(Delta::Form::kSparse, v.run_count * sizeof(ByteRun), v.changed_bytes);
    delta_internal::RunsOfView(v, reinterpret_cast<ByteRun*>(d.data()));
  }
  if (v.changed_bytes != 0) std::memcpy(d.data() + d.table_bytes_, v.bytes, v.changed_bytes);
  if (consumed) *consumed = v.total;
  return d;
}

std::vector<std::uint8_t> EncodePageImage(const PageImage& img) {
  std::vector<std::uint8_t> out;
  out.reserve(img.bytes.size() + 48);
  StartRecord(out, format::kPageImageMagic, static_cast<std::uint8_t>(img.location));
  varint::Append(out, img.id);
  varint::Append(out, img.epoch);
  varint::Append(out, img.bytes.size());
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
    return Corruption(fmt::format("page image: unknown location {}", loc));
  }
  Reader r(rec->body);
  std::uint64_t id, epoch, size;
  if (!r.Varint(&id) || !r.Varint(&epoch) || !r.Varint(&size)) {
    return Corruption("page image: header fields run past the record");
  }
  if (id == kInvalidPageId) return Corruption("page image: page id 0 is invalid");
  if (size == 0 || size > max_page_size) {
    return Corruption(
        fmt::format("page image: size {} is out of range [1, {}]", size, max_page_size));
  }
  if (r.remaining() != size) {
    return Corruption(
        fmt::format("page image: declares {} bytes, record holds {}", size, r.remaining()));
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
