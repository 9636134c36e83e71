// RecordReader: the framing layer of one segment or checkpoint file.
//
// Reads the file header, then yields framed records whose header and payload checks pass. At a
// bad record it looks ahead for the next valid record: if there is one, the bad bytes are a
// corruption; if there is none, they are a torn tail. Either way the caller learns the byte range
// and decides (strict: stop; salvage: continue at the next valid record).
//
// Zero tail: bytes that are all zero from a record boundary to the end of the file are the end of
// the file's records, not damage (a durable writer writes zeros ahead of its appends; see
// log/prewrite.h). Zeros followed by a valid record are damage like any other bytes
// that are not a record (a record never starts with a zero byte: its magic).
//
// Memory: when the file is mapped (RandomAccessFile::Map) records are read in place; otherwise a
// read window (1 MiB, grown only for a record whose checked header says it is larger, and never
// beyond the bytes the file really has), so a corrupt length cannot allocate.
//
// Ownership: `file` must outlive the reader. Spans returned by Next() are valid until the next
// call (or longer: mapped(), RetainWindows). Single-threaded.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mmsb/env.h"

#include "log/log_format.h"

namespace mmsb::log {

// Read windows whose records must stay valid after the reader moves past them (a replay's apply
// thread still reads a group's deltas; LogReaderOptions::retain_files): a reader given a pool
// puts each window it leaves in `retired` instead of reusing it, and takes the next from `spare`.
struct WindowPool {
  std::vector<std::vector<std::uint8_t>> spare;
  std::vector<std::vector<std::uint8_t>> retired;
};

class RecordReader {
 public:
  RecordReader(const RandomAccessFile* file, std::string name);

  // Reads and checks the file header. Corruption/Serialization on a bad header; a file shorter
  // than a header is reported as Corruption too (the caller decides whether that is a torn
  // creation).
  Status ReadHeader(FileHeader* h);

  struct Record {
    std::uint8_t type = 0;
    std::uint64_t offset = 0;  // of the record header
    std::span<const std::uint8_t> payload;
  };
  // A damaged byte range found before the next record (or the end).
  struct Damage {
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    bool torn_tail = false;  // no valid record follows
  };

  enum class Result { kRecord, kEnd, kDamage, kError };
  // kRecord: *rec is the next valid record. kEnd: clean end of file (or a zero tail: see above).
  // kDamage: *damage describes
  // bad bytes at the current position; the next call continues after them (at the next valid
  // record, or kEnd after a torn tail). kError: an I/O error in *status.
  Result Next(Record* rec, Damage* damage, Status* status);

  std::uint64_t position() const { return pos_; }  // next byte to parse
  // Bytes of the zero tail the reader ended at (0 when the file ended at a record boundary).
  std::uint64_t zero_tail() const { return zero_tail_; }
  std::uint64_t file_size() const { return size_; }
  std::uint64_t log_id() const { return log_id_; }
  const std::string& name() const { return name_; }
  // True when payloads point into a mapping that lives as long as the file object.
  bool mapped() const { return !map_.empty(); }
  // From now on windows are not reused but retired into `pool` (which must outlive the reader),
  // so every span Next() returns stays valid until the pool lets the window go.
  void RetainWindows(WindowPool* pool) { pool_ = pool; }
  // Retires the current window too (the reader is done with the file).
  void RetireWindow();

 private:
  // Makes bytes [off, off + n) contiguous in the window; returns null on I/O error (*status set).
  // Requires off + n <= size_.
  const std::uint8_t* Window(std::uint64_t off, std::size_t n, Status* status);
  // True when a valid record (header and payload) starts at `off`.
  bool ValidAt(std::uint64_t off, RecordHeader* h, Status* status);
  // True when bytes [from, size_) are all zero (false on I/O error, *status set).
  bool ZerosToEnd(std::uint64_t from, Status* status);
  // The offset of the first valid record at or after `from`, or size_ if none.
  std::uint64_t FindNext(std::uint64_t from, Status* status);

  const RandomAccessFile* file_;
  std::span<const std::uint8_t> map_;
  std::string name_;
  std::uint64_t size_;
  std::uint64_t log_id_ = 0;
  HeaderHashCache header_hashes_;
  std::uint64_t pos_ = 0;
  std::uint64_t zero_tail_ = 0;
  std::vector<std::uint8_t> buf_;
  std::uint64_t buf_off_ = 0;  // file offset of buf_[0]
  std::size_t buf_len_ = 0;    // valid bytes in buf_
  WindowPool* pool_ = nullptr;
};

}  // namespace mmsb::log
