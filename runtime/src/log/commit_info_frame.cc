// CommitInfoFramer (log/commit_info_frame.h).
#include "log/commit_info_frame.h"

#include "mmsb/log_writer.h"

// The payload is 5 to 22 bytes: XXH3's short-input path, inlined here, is a few multiplies, less
// than the shared library's call and dispatch. Same function, same result as XXH3_64bits_withSeed
// in the other files (XXH_INLINE_ALL gives this file private copies of xxHash's functions,
// internal ones included: the register path calls XXH3_len_4to8_64b and XXH3_len_9to16_64b, the
// paths XXH3_64bits_withSeed takes for 4 … 16 bytes, which xxHash 0.8's header defines;
// record_framing_test compares the result with the shared library's).
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cstring>

#include "core/varint.h"

namespace mmsb::log {
void CommitInfoFramer::Rebuild(std::uint64_t log_id, const LogCommitTransaction& t,
                               std::size_t seq_size) {
  // The compact layout (docs/SerializationSpec.md): flags 0 (no state hash), count 1, then the
  // transaction's site, thread and sequence varints.
  std::uint8_t* const payload = bytes_ + kRecordHeaderSize;
  std::uint8_t* p = payload;
  *p++ = 0;
  *p++ = 1;
  p = varint::PutAt(p, t.site);
  p = varint::PutAt(p, t.thread);
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
  word_ = size_ - kRecordHeaderSize <= kWordPayload;
  prefix_ = 0;
  if (word_) {
    for (std::size_t i = seq_at_; i-- > kRecordHeaderSize;) prefix_ = prefix_ << 8 | bytes_[i];
  }
}

void CommitInfoFramer::AppendFromTemplate(std::vector<std::uint8_t>& out, std::uint64_t sequence) {
  varint::PutAt(bytes_ + seq_at_, sequence);
  Put64(bytes_ + 16,
        XXH3_64bits_withSeed(bytes_ + kRecordHeaderSize, size_ - kRecordHeaderSize, hash_));
  out.insert(out.end(), bytes_, bytes_ + size_);
}

void CommitInfoFramer::Append(std::vector<std::uint8_t>& out, std::uint64_t log_id,
                              const LogCommitTransaction& t) {
  const std::size_t seq_size = varint::Size(t.sequence);
  if (seq_size != seq_size_ || t.site != site_ || t.thread != thread_ || log_id != log_id_)
      [[unlikely]] {
    Rebuild(log_id, t, seq_size);
  }
  if (!word_) [[unlikely]] {
    AppendFromTemplate(out, t.sequence);
    return;
  }
  // The payload in a register, stored whole: XXH3's loads (≤ 16 bytes, contained in the store)
  // are forwarded from it.
  const unsigned __int128 payload = prefix_ | varint::Word(t.sequence)
                                                  << (8 * (seq_at_ - kRecordHeaderSize));
  std::uint8_t word[kWordPayload];
  std::memcpy(word, &payload, sizeof word);
  const std::size_t payload_size = size_ - kRecordHeaderSize;
  // What XXH3_64bits_withSeed does for 4 … 16 bytes (a payload has at least 5: flags, count and
  // three varints), called directly: the entry point is too large to be inlined here, and inlined
  // this reads `word` from registers.
  const std::uint64_t check = payload_size > 8
                                  ? XXH3_len_9to16_64b(word, payload_size, XXH3_kSecret, hash_)
                                  : XXH3_len_4to8_64b(word, payload_size, XXH3_kSecret, hash_);
  // Room for a whole-word store of the payload; the bytes past the record are cut again.
  const std::size_t at = out.size();
  out.resize(at + kRecordHeaderSize + kWordPayload);
  std::uint8_t* const d = out.data() + at;
  std::memcpy(d, bytes_, 16);  // magic, length, type, flags, reserved, header_check
  Put64(d + 16, check);
  std::memcpy(d + kRecordHeaderSize, word, sizeof word);
  out.resize(at + size_);
}

}  // namespace mmsb::log

namespace mmsb {

// Here rather than in log_writer.cc so that the framer's Append, on every commit's path, is
// inlined into it.
void LogBatch::AddCommitInfoFor(const LogCommitTransaction& t, log::CommitInfoFramer& framer) {
  framer.Append(bytes_, log_id_, t);
  ++counted_;
}

}  // namespace mmsb
