// CommitInfoFramer (log/commit_info_frame.h).
#include "log/commit_info_frame.h"

// The payload is 5 to 22 bytes: XXH3's short-input path, inlined here, is a few multiplies, less
// than the shared library's call and dispatch. Same function, same result as XXH3_64bits_withSeed
// in the other files (XXH_INLINE_ALL gives this file private copies of xxHash's functions).
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace mmsb::log {
namespace {

std::size_t VarSize(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

std::uint8_t* PutVar(std::uint8_t* p, std::uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<std::uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<std::uint8_t>(v);
  return p;
}

}  // namespace

void CommitInfoFramer::Rebuild(std::uint64_t log_id, const LogCommitTransaction& t,
                               std::size_t seq_size) {
  // The compact layout (docs/SerializationSpec.md): flags 0 (no state hash), count 1, then the
  // transaction's site, thread and sequence varints.
  std::uint8_t* const payload = bytes_ + kRecordHeaderSize;
  std::uint8_t* p = payload;
  *p++ = 0;
  *p++ = 1;
  p = PutVar(p, t.site);
  p = PutVar(p, t.thread);
  seq_at_ = static_cast<std::uint8_t>(p - bytes_);
  p += seq_size;
  size_ = static_cast<std::uint8_t>(p - bytes_);
  FillRecordHeaderPrefix(bytes_, kCompactCommitInfoType, static_cast<std::uint32_t>(p - payload));
  hash_ = HeaderHash(bytes_, log_id);
  Put32(bytes_ + 12, static_cast<std::uint32_t>(hash_));
  log_id_ = log_id;
  site_ = t.site;
  thread_ = t.thread;
  seq_size_ = static_cast<std::uint8_t>(seq_size);
}

void CommitInfoFramer::Append(std::vector<std::uint8_t>& out, std::uint64_t log_id,
                              const LogCommitTransaction& t) {
  const std::size_t seq_size = VarSize(t.sequence);
  if (seq_size != seq_size_ || t.site != site_ || t.thread != thread_ || log_id != log_id_) {
    Rebuild(log_id, t, seq_size);
  }
  PutVar(bytes_ + seq_at_, t.sequence);
  Put64(bytes_ + 16,
        XXH3_64bits_withSeed(bytes_ + kRecordHeaderSize, size_ - kRecordHeaderSize, hash_));
  out.insert(out.end(), bytes_, bytes_ + size_);
}

}  // namespace mmsb::log
