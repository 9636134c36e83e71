#include "log/record_reader.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace mmsb::log {
namespace {

constexpr std::size_t kReadChunk = std::size_t{1} << 20;

bool AllZero(const std::uint8_t* p, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w != 0) return false;
  }
  for (; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

}  // namespace

RecordReader::RecordReader(const RandomAccessFile* file, std::string name)
    : file_(file), map_(file->Map()), name_(std::move(name)), size_(file->Size()) {
  if (map_.size() != size_) map_ = {};
}

const std::uint8_t* RecordReader::Window(std::uint64_t off, std::size_t n, Status* status) {
  if (!map_.empty()) return map_.data() + off;  // callers keep off + n <= size_
  if (off >= buf_off_ && off + n <= buf_off_ + buf_len_) return buf_.data() + (off - buf_off_);
  // Keep the bytes from `off` that are already here, read the rest (at least a chunk ahead).
  const std::uint64_t want_end = std::min<std::uint64_t>(size_, off + std::max(n, kReadChunk));
  const std::size_t want = static_cast<std::size_t>(want_end - off);
  std::size_t keep = 0;
  if (pool_ != nullptr && buf_len_ > 0) {
    // Records returned from this window may still be read: keep it, start a new one.
    std::vector<std::uint8_t> fresh;
    if (!pool_->spare.empty()) {
      fresh = std::move(pool_->spare.back());
      pool_->spare.pop_back();
    }
    if (fresh.size() < want) fresh.resize(want);
    if (off >= buf_off_ && off < buf_off_ + buf_len_) {
      keep = static_cast<std::size_t>(buf_off_ + buf_len_ - off);
      std::memcpy(fresh.data(), buf_.data() + (off - buf_off_), keep);
    }
    pool_->retired.push_back(std::move(buf_));
    buf_ = std::move(fresh);
  } else if (off >= buf_off_ && off < buf_off_ + buf_len_) {
    keep = static_cast<std::size_t>(buf_off_ + buf_len_ - off);
    std::memmove(buf_.data(), buf_.data() + (off - buf_off_), keep);
  }
  // Grow for a large record; give the memory back once records are small again.
  if (buf_.size() < want || buf_.size() > 4 * std::max(want, kReadChunk)) {
    std::vector<std::uint8_t> fresh(want);
    if (keep > 0) std::memcpy(fresh.data(), buf_.data(), keep);
    buf_.swap(fresh);
  }
  buf_off_ = off;
  buf_len_ = keep;
  std::size_t got = 0;
  Status s = file_->Read(off + keep, want - keep, buf_.data() + keep, &got);
  if (!s.ok()) {
    *status = s;
    buf_len_ = 0;
    return nullptr;
  }
  buf_len_ = keep + got;
  if (buf_len_ < n) {
    *status = IOError(
        fmt::format("{}:{}: short read ({} of {} bytes); was the file truncated while reading?",
                    name_, off, buf_len_, n));
    return nullptr;
  }
  return buf_.data();
}

void RecordReader::RetireWindow() {
  if (pool_ == nullptr || buf_.empty()) return;
  pool_->retired.push_back(std::move(buf_));
  buf_ = {};
  buf_off_ = 0;
  buf_len_ = 0;
}

Status RecordReader::ReadHeader(FileHeader* h) {
  Status io;
  const std::size_t n =
      static_cast<std::size_t>(std::min<std::uint64_t>(size_, kMaxFileHeaderSize));
  const std::uint8_t* p = n > 0 ? Window(0, n, &io) : nullptr;
  if (n > 0 && p == nullptr) return io;
  MMSB_RETURN_IF_ERROR(DecodeFileHeader({p, n}, name_, h));
  log_id_ = h->log_id;
  pos_ = h->header_size;
  return Status::Ok();
}

bool RecordReader::ValidAt(std::uint64_t off, RecordHeader* h, Status* status) {
  if (size_ - off < kRecordHeaderSize) return false;
  const std::uint8_t* p = Window(off, kRecordHeaderSize, status);
  if (p == nullptr) return false;
  if (!ParseRecordHeader(p, log_id_, h, header_hashes_)) return false;
  if (h->length > size_ - off - kRecordHeaderSize) return false;
  p = Window(off + kRecordHeaderSize, h->length, status);
  if (p == nullptr) return false;
  return PayloadMatches(*h, {p, h->length});
}

bool RecordReader::ZerosToEnd(std::uint64_t from, Status* status) {
  for (std::uint64_t pos = from; pos < size_;) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(size_ - pos, kReadChunk));
    const std::uint8_t* p = Window(pos, n, status);
    if (p == nullptr || !AllZero(p, n)) return false;
    pos += n;
  }
  return true;
}

std::uint64_t RecordReader::FindNext(std::uint64_t from, Status* status) {
  std::uint8_t magic[4];
  Put32(magic, kRecordMagic);
  std::uint64_t pos = from;
  while (size_ - pos >= kRecordHeaderSize) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(size_ - pos, kReadChunk));
    const std::uint8_t* p = Window(pos, n, status);
    if (p == nullptr) return size_;
    const void* hit = memmem(p, n, magic, sizeof magic);
    if (hit == nullptr) {
      pos += n >= 3 ? n - 3 : n;  // a magic may straddle the chunk boundary
      continue;
    }
    const std::uint64_t cand =
        pos + static_cast<std::uint64_t>(static_cast<const std::uint8_t*>(hit) - p);
    RecordHeader h;
    if (ValidAt(cand, &h, status)) return cand;
    if (!status->ok()) return size_;
    pos = cand + 1;
  }
  return size_;
}

RecordReader::Result RecordReader::Next(Record* rec, Damage* damage, Status* status) {
  if (pos_ >= size_) return Result::kEnd;
  RecordHeader h;
  Status io;
  if (ValidAt(pos_, &h, &io)) {
    rec->type = h.type;
    rec->offset = pos_;
    rec->payload = {Window(pos_ + kRecordHeaderSize, h.length, &io), h.length};
    pos_ += kRecordHeaderSize + h.length;
    return Result::kRecord;
  }
  if (!io.ok()) {
    *status = io;
    return Result::kError;
  }
  // Zeros from here to the end: space the writer wrote ahead and never used (a record never
  // starts with a zero byte). Zeros followed by a valid record are damage, found below.
  if (ZerosToEnd(pos_, &io)) {
    zero_tail_ = size_ - pos_;
    pos_ = size_;
    return Result::kEnd;
  }
  if (!io.ok()) {
    *status = io;
    return Result::kError;
  }
  const std::uint64_t next = FindNext(pos_ + 1, &io);
  if (!io.ok()) {
    *status = io;
    return Result::kError;
  }
  damage->offset = pos_;
  damage->length = next - pos_;
  damage->torn_tail = next >= size_;
  pos_ = next;
  return Result::kDamage;
}

}  // namespace mmsb::log
