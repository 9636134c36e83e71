// The commit-info record of a commit that carries one transaction and no state hash (what the
// bus's log sink writes at every commit), framed from a template instead of encoded and framed
// field by field.
//
// For a given log id, site, thread and sequence varint length, the whole record but its sequence
// bytes and its payload checksum is the same at every commit: magic, length, type, header_check
// (H depends only on the log id and the record's shape), flags 0, count 1, site and thread. The
// framer keeps those bytes and patches the two fields that change. The result is byte for byte
// what EncodeCommitInfo + FillRecordHeader write for {state_hash 0, {t}}
// (record_framing_test checks it for random and boundary values); any change of the key rebuilds
// the template with the generic encoder's rules.
//
// When the payload fits 16 bytes (site and thread below 2^14, any sequence: 2 + 2 + 2 + 10), it is
// composed in a register (the template's bytes before the sequence, or'ed with the sequence's
// varint), hashed from one 16-byte store, and written straight into `out` with whole-word stores.
// Writing the varint byte by byte into the template and hashing or copying the template back made
// the CPU's loads wait for those narrower stores to drain (a failed store-to-load forwarding) on
// every commit. Larger payloads take the template path.
//
// Not thread-safe: one per thread or per caller that serialises its use (LogBatch keeps one per
// thread, keyed by log id, so it serves every batch of that thread; the log sink keeps one per
// sink, used under the sink's lock). Constant-initialised, so a thread_local needs no guard.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "mmsb/log_format.h"

#include "log/log_format.h"

namespace mmsb::log {

class CommitInfoFramer {
 public:
  // Appends the framed compact commit-info record for {state_hash 0, transactions {t}}, seeded
  // with `log_id`, to `out`.
  // Inlined into LogBatch::AddCommitInfoFor, its one caller (same file).
  [[gnu::always_inline]] void Append(std::vector<std::uint8_t>& out, std::uint64_t log_id,
                                     const LogCommitTransaction& t);

 private:
  // Both rare, kept out of Append's hot path (its code is on every commit's path).
  [[gnu::noinline]] void Rebuild(std::uint64_t log_id, const LogCommitTransaction& t,
                                 std::size_t seq_size);
  // A payload over kWordPayload bytes: the sequence patched into the template, hashed and copied.
  [[gnu::noinline]] void AppendFromTemplate(std::vector<std::uint8_t>& out, std::uint64_t sequence);

  // Header, flags, count, site (≤ 5), thread (≤ 5), sequence (≤ 10).
  static constexpr std::size_t kMaxBytes = kRecordHeaderSize + 1 + 1 + 5 + 5 + 10;
  // The register path's payload: site and thread below 2^14 (≤ 2 bytes each) leave ≤ 6 bytes
  // before the sequence, so any sequence (≤ 10 bytes) ends within 16.
  static constexpr std::size_t kWordPayload = 16;

  std::uint64_t log_id_ = 0;
  // The payload's bytes before the sequence (flags, count, site, thread), little-endian; valid
  // when `word_` is set.
  unsigned __int128 prefix_ = 0;
  bool word_ = false;       // the payload fits kWordPayload bytes: the register path applies
  std::uint64_t hash_ = 0;  // H of the template's header
  std::uint32_t site_ = 0;
  std::uint32_t thread_ = 0;
  std::uint8_t seq_size_ = 0;  // 0: no template yet
  std::uint8_t seq_at_ = 0;    // the sequence's offset in the record
  std::uint8_t size_ = 0;      // record bytes
  std::uint8_t bytes_[kMaxBytes] = {};
};

}  // namespace mmsb::log
