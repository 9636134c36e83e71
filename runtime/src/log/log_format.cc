#include "log/log_format.h"

#include <xxhash.h>
#if defined(__x86_64__) && __has_include(<xxh_x86dispatch.h>)
// libxxhash's runtime dispatch (AVX2/AVX-512 where the CPU has them; the same hash values): the
// frame checks hash every byte of the log, and the default entry points are the SSE2 build.
#include <xxh_x86dispatch.h>
#endif

#include <fmt/format.h>

namespace mmsb::log {

void EncodeFileHeader(const FileHeader& h, std::uint8_t out[kFileHeaderSize]) {
  std::memcpy(out, h.checkpoint ? kCheckpointMagic : kSegmentMagic, 8);
  Put16(out + 8, h.major);
  Put16(out + 10, h.minor);
  Put32(out + 12, static_cast<std::uint32_t>(kFileHeaderSize));
  Put64(out + 16, h.log_id);
  Put64(out + 24, h.seq);
  Put64(out + 32, h.base_epoch);
  Put64(out + 40, h.base_page_id);
  Put64(out + 48, XXH3_64bits(out, kFileHeaderSize - 8));
}

Status DecodeFileHeader(std::span<const std::uint8_t> in, std::string_view file, FileHeader* h) {
  if (in.size() < kFileHeaderSize) {
    return Corruption(fmt::format("{}:0: file is {} bytes, shorter than its {}-byte header", file,
                                  in.size(), kFileHeaderSize));
  }
  const std::uint8_t* p = in.data();
  if (std::memcmp(p, kSegmentMagic, 8) == 0) {
    h->checkpoint = false;
  } else if (std::memcmp(p, kCheckpointMagic, 8) == 0) {
    h->checkpoint = true;
  } else {
    return Corruption(fmt::format("{}:0: not an MMSB log segment or checkpoint (bad magic)", file));
  }
  h->major = Get16(p + 8);
  h->minor = Get16(p + 10);
  h->header_size = Get32(p + 12);
  if (h->header_size < kFileHeaderSize || h->header_size > kMaxFileHeaderSize) {
    return Corruption(fmt::format("{}:12: header size {} is out of range", file, h->header_size));
  }
  if (in.size() < h->header_size) {
    return Corruption(fmt::format("{}:0: file is {} bytes, shorter than its {}-byte header", file,
                                  in.size(), h->header_size));
  }
  const std::uint64_t check = Get64(p + h->header_size - 8);
  if (XXH3_64bits(p, h->header_size - 8) != check) {
    return Corruption(
        fmt::format("{}:{}: file header checksum mismatch", file, h->header_size - 8));
  }
  if (h->major != kFormatMajor) {
    return Unsupported(
        fmt::format("{}:8: format version {}.{} is not supported (this reader reads {}.x)", file,
                    h->major, h->minor, kFormatMajor));
  }
  h->log_id = Get64(p + 16);
  h->seq = Get64(p + 24);
  h->base_epoch = Get64(p + 32);
  h->base_page_id = Get64(p + 40);
  return Status::Ok();
}

std::uint64_t HeaderHash(const std::uint8_t* header12, std::uint64_t log_id) {
  return XXH3_64bits_withSeed(header12, 12, log_id);
}

void FillRecordHeaderPrefix(std::uint8_t* header, std::uint8_t type, std::uint32_t length) {
  Put32(header, kRecordMagic);
  Put32(header + 4, length);
  header[8] = type;
  header[9] = 0;
  Put16(header + 10, 0);
}

void FillRecordHeader(std::uint8_t* header, std::uint64_t log_id, std::uint8_t type,
                      std::span<const std::uint8_t> payload) {
  FillRecordHeaderPrefix(header, type, static_cast<std::uint32_t>(payload.size()));
  const std::uint64_t h = HeaderHash(header, log_id);
  Put32(header + 12, static_cast<std::uint32_t>(h));
  Put64(header + 16, XXH3_64bits_withSeed(payload.data(), payload.size(), h));
}

std::uint64_t HeaderHashCache::Hash(const std::uint8_t* header12, std::uint64_t log_id) {
  const std::uint64_t shape = std::uint64_t{Get32(header12 + 4)} << 8 | header12[8];
  Entry& e = entries_[(header12[8] ^ (Get32(header12 + 4) << 3)) & 63];
  // The rest of the 12 bytes (magic, flags, reserved) is constant, so the shape and the log id
  // determine H.
  if (e.shape != shape || e.log_id != log_id || shape == 0) {
    e.shape = shape;
    e.log_id = log_id;
    e.hash = HeaderHash(header12, log_id);
  }
  return e.hash;
}

void FillRecordHeader(std::uint8_t* header, std::uint64_t log_id, std::uint8_t type,
                      std::span<const std::uint8_t> payload, HeaderHashCache& cache) {
  FillRecordHeaderPrefix(header, type, static_cast<std::uint32_t>(payload.size()));
  const std::uint64_t h = cache.Hash(header, log_id);
  Put32(header + 12, static_cast<std::uint32_t>(h));
  Put64(header + 16, XXH3_64bits_withSeed(payload.data(), payload.size(), h));
}

void AppendRecord(std::vector<std::uint8_t>& out, std::uint64_t log_id, std::uint8_t type,
                  std::span<const std::uint8_t> payload) {
  const std::size_t at = out.size();
  out.resize(at + kRecordHeaderSize + payload.size());
  if (!payload.empty())
    std::memcpy(out.data() + at + kRecordHeaderSize, payload.data(), payload.size());
  FillRecordHeader(out.data() + at, log_id, type, payload);
}

void AppendRecord(std::vector<std::uint8_t>& out, std::uint64_t log_id, std::uint8_t type,
                  std::span<const std::uint8_t> payload, HeaderHashCache& cache) {
  const std::size_t at = out.size();
  out.resize(at + kRecordHeaderSize + payload.size());
  if (!payload.empty())
    std::memcpy(out.data() + at + kRecordHeaderSize, payload.data(), payload.size());
  FillRecordHeader(out.data() + at, log_id, type,
                   {out.data() + at + kRecordHeaderSize, payload.size()}, cache);
}

namespace {

// The one checked parse behind both overloads: magic, then the reserved bytes (before the hash,
// as HeaderHashCache assumes them zero), then the header hash `hash_of` computes. A template, so
// the cached overload inlines its cache's lookup as before.
template <class HashOf>
[[gnu::always_inline]] inline bool ParseChecked(const std::uint8_t* p, RecordHeader* h,
                                                HashOf&& hash_of) {
  if (Get32(p) != kRecordMagic) return false;
  if (p[9] != 0 || Get16(p + 10) != 0) return false;
  const std::uint64_t hash = hash_of();
  if (static_cast<std::uint32_t>(hash) != Get32(p + 12)) return false;
  h->length = Get32(p + 4);
  h->type = p[8];
  h->hash = hash;
  h->payload_check = Get64(p + 16);
  return true;
}

}  // namespace

bool ParseRecordHeader(const std::uint8_t* p, std::uint64_t log_id, RecordHeader* h) {
  return ParseChecked(p, h, [&] { return HeaderHash(p, log_id); });
}

bool ParseRecordHeader(const std::uint8_t* p, std::uint64_t log_id, RecordHeader* h,
                       HeaderHashCache& cache) {
  return ParseChecked(p, h, [&] { return cache.Hash(p, log_id); });
}

bool PayloadMatches(const RecordHeader& h, std::span<const std::uint8_t> payload) {
  return XXH3_64bits_withSeed(payload.data(), payload.size(), h.hash) == h.payload_check;
}

}  // namespace mmsb::log
