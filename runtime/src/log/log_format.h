// Log format shared by writer and reader. See docs/SerializationSpec.md.
//
// Segment and checkpoint files: a file header, then framed records.
//
//   file header (56 bytes, little-endian):
//     0  magic[8]        "MMSBTLOG" (segment) or "MMSBCKPT" (checkpoint)
//     8  u16 major       1: a reader refuses another major
//    10  u16 minor       1: a reader accepts any minor of its major
//    12  u32 header_size 56 (a later minor may grow the header; the check stays last)
//    16  u64 log_id      random per log; seeds every record checksum in the file
//    24  u64 seq         segment sequence number (checkpoint: 0)
//    32  u64 base_epoch  segment: last epoch committed before it; checkpoint: its epoch
//    40  u64 base_page_id highest page id used before the segment (checkpoint: in it)
//    48  u64 check       XXH3-64 of bytes [0, header_size - 8)
//
//   record (24-byte header, then `length` payload bytes):
//     0  u32 magic       0x7E1D5A3B, a resynchronisation marker for salvage
//     4  u32 length      payload bytes
//     8  u8  type        LogRecordType
//     9  u8  flags       0
//    10  u16 reserved    0
//    12  u32 header_check  low 32 bits of H = XXH3-64(bytes [0, 12), seed log_id)
//    16  u64 payload_check XXH3-64(payload, seed H)
//
// Seeding with H binds length and type into the payload checksum, and seeding H with the log id
// makes records of another log (or a recycled file) fail their checks (SQLite WAL's salt idea).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "mmsb/log.h"
#include "mmsb/status.h"

namespace mmsb::log {

inline constexpr char kSegmentMagic[8] = {'M', 'M', 'S', 'B', 'T', 'L', 'O', 'G'};
inline constexpr char kCheckpointMagic[8] = {'M', 'M', 'S', 'B', 'C', 'K', 'P', 'T'};
inline constexpr std::uint16_t kFormatMajor = 1;
inline constexpr std::uint16_t kFormatMinor = 1;  // 1.1: provenance (site, commit-info, build)
inline constexpr std::size_t kFileHeaderSize = 56;
inline constexpr std::size_t kMaxFileHeaderSize = 4096;

// Commit-info in its compact layout (format 1.1, docs/SerializationSpec.md "Provenance"): a
// record type of its own, so a 1.0 reader skips it like the other provenance records. LogReader
// yields it as LogRecordType::kCommitInfo (raw_type 15), whichever layout the log holds.
inline constexpr std::uint8_t kCompactCommitInfoType = 15;
// The highest record type a segment holds (16 and up are checkpoint files' own); a reader of this
// version knows every type from kPageCreate to it.
inline constexpr std::uint8_t kLastSegmentRecordType = kCompactCommitInfoType;
static_assert(kLastSegmentRecordType > static_cast<std::uint8_t>(LogRecordType::kVerifyMiss) &&
                  kLastSegmentRecordType < static_cast<std::uint8_t>(LogRecordType::kPageImage),
              "a new segment record type moves kLastSegmentRecordType");

inline constexpr std::uint32_t kRecordMagic = 0x7E1D5A3Bu;
inline constexpr std::size_t kRecordHeaderSize = 24;
inline constexpr std::uint64_t kMaxRecordPayload = 0xFFFFFFFFu;

// Checkpoint page images are split into chunks no larger than this.
inline constexpr std::uint64_t kImageChunkBytes = std::uint64_t{64} << 20;

struct FileHeader {
  bool checkpoint = false;
  std::uint16_t major = kFormatMajor;
  std::uint16_t minor = kFormatMinor;
  std::uint32_t header_size = kFileHeaderSize;
  std::uint64_t log_id = 0;
  std::uint64_t seq = 0;
  Epoch base_epoch = 0;
  PageId base_page_id = 0;
};

void EncodeFileHeader(const FileHeader& h, std::uint8_t out[kFileHeaderSize]);
// Decodes and checks a header from the first bytes of a file (`in` may be longer). Corruption for
// a bad magic or check; Serialization for an unsupported major version; `*size` gets
// header_size. `file` names the file in messages.
Status DecodeFileHeader(std::span<const std::uint8_t> in, std::string_view file, FileHeader* h);

// ---- little-endian helpers --------------------------------------------------------------------

inline void Put16(std::uint8_t* p, std::uint16_t v) { std::memcpy(p, &v, 2); }
inline void Put32(std::uint8_t* p, std::uint32_t v) { std::memcpy(p, &v, 4); }
inline void Put64(std::uint8_t* p, std::uint64_t v) { std::memcpy(p, &v, 8); }
inline std::uint16_t Get16(const std::uint8_t* p) {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline std::uint32_t Get32(const std::uint8_t* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline std::uint64_t Get64(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
static_assert(std::endian::native == std::endian::little, "the log format is little-endian");

// ---- records -----------------------------------------------------------------------------------

// H = XXH3-64(header bytes [0, 12), seed log_id).
std::uint64_t HeaderHash(const std::uint8_t* header12, std::uint64_t log_id);

// Fills the 24-byte header for a payload whose checksum was already computed with seed
// HeaderHash (use FillRecordHeader when the payload is contiguous).
void FillRecordHeaderPrefix(std::uint8_t* header, std::uint8_t type, std::uint32_t length);
void FillRecordHeader(std::uint8_t* header, std::uint64_t log_id, std::uint8_t type,
                      std::span<const std::uint8_t> payload);

// H for the recent record shapes of one log. H depends only on (log_id, type, length), and the
// records written at every commit repeat their shape (commit-info, commit): framing one of them
// then costs one XXH3 call (the payload's) instead of two. A reader checking a record's header
// uses one too (a log's records come in few shapes). Direct-mapped by type and the length's low
// bits; a miss computes H. Not thread-safe: one per writer or reader of records.
class HeaderHashCache {
 public:
  std::uint64_t Hash(const std::uint8_t* header12, std::uint64_t log_id);

 private:
  struct Entry {
    std::uint64_t log_id = 0;
    std::uint64_t shape = 0;  // length << 8 | type; 0: empty (no record has type 0)
    std::uint64_t hash = 0;
  };
  Entry entries_[64];
};

// FillRecordHeader with H from `cache`.
void FillRecordHeader(std::uint8_t* header, std::uint64_t log_id, std::uint8_t type,
                      std::span<const std::uint8_t> payload, HeaderHashCache& cache);

// Appends header + payload to `out`.
void AppendRecord(std::vector<std::uint8_t>& out, std::uint64_t log_id, std::uint8_t type,
                  std::span<const std::uint8_t> payload);
void AppendRecord(std::vector<std::uint8_t>& out, std::uint64_t log_id, std::uint8_t type,
                  std::span<const std::uint8_t> payload, HeaderHashCache& cache);

struct RecordHeader {
  std::uint32_t length = 0;
  std::uint8_t type = 0;
  std::uint64_t hash = 0;  // H, the payload checksum's seed
  std::uint64_t payload_check = 0;
};
// Checks magic, reserved fields and header_check of 24 header bytes.
bool ParseRecordHeader(const std::uint8_t* p, std::uint64_t log_id, RecordHeader* h);
// The same, with H from `cache` (the same answer: H is a function of the shape once magic,
// flags and reserved fields have been checked).
bool ParseRecordHeader(const std::uint8_t* p, std::uint64_t log_id, RecordHeader* h,
                       HeaderHashCache& cache);
bool PayloadMatches(const RecordHeader& h, std::span<const std::uint8_t> payload);

}  // namespace mmsb::log
