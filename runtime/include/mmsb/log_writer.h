// Writing the transaction log: LogBatch frames an epoch's records, LogWriter appends groups to
// segments with the chosen durability and retires segments behind checkpoints, CompactLog applies
// a retention policy to a closed log. The directory layout is described in mmsb/log.h.
//
// Ownership: a LogWriter owns its files and the directory lock until destroyed.
// Thread-safety: LogWriter's methods may be called from many threads at once (that is how group
// commit shares an fsync). A LogBatch is a single-threaded object.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mmsb/delta.h"
#include "mmsb/env.h"
#include "mmsb/log_format.h"
#include "mmsb/status.h"
#include "mmsb/type_desc.h"
#include "mmsb/types.h"

namespace mmsb {

// When a commit counts as durable.
enum class Durability : std::uint8_t {
  kNone = 0,   // buffered: handed to the OS when the buffer fills, on Flush() and on close (a
               // crash loses a suffix of the log; sealed segments are synced under every policy)
  kGroup = 1,  // on disk before Commit returns; concurrent commits share one write and fsync
  kSync = 2,   // on disk before Commit returns; one write and fsync per commit
};
const char* DurabilityName(Durability d);

// Which checkpoints a log keeps, and so which of its segments: the segments whose every epoch is
// at or before the oldest kept checkpoint are deleted (replay starts at that checkpoint). At
// least one checkpoint is always kept, and the segment being written is never deleted.
struct RetentionPolicy {
  std::size_t keep_checkpoints = 2;  // the newest N
  // When > 0: keep fewer checkpoints (down to one) while the log's segments and checkpoints would
  // add up to more than this many bytes.
  std::uint64_t max_bytes = 0;
  // When > 0: keep fewer checkpoints (down to one) while the oldest kept one was taken longer ago
  // than this (its checkpoint-end record's wall-clock time against Env::NowUnixNanos()). A
  // checkpoint whose time cannot be read counts as new: it is kept.
  std::chrono::seconds max_age{0};
};

struct CompactReport {
  std::uint64_t checkpoints_removed = 0;
  std::uint64_t segments_removed = 0;
  std::uint64_t bytes_before = 0;
  std::uint64_t bytes_after = 0;
  Epoch oldest_checkpoint = 0;  // the oldest kept: the earliest epoch still replayable
};

struct LogOptions {
  Durability durability = Durability::kGroup;
  // A new segment starts (at an epoch boundary) once the current one reaches this size.
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;
  // Durability::kNone hands buffered bytes to the OS when this many are pending.
  std::size_t buffer_bytes = std::size_t{1} << 20;
  // What opening an existing log does when its last segment has corruption before its end:
  // kStrict refuses to open (Corruption); kSalvage keeps the damaged segment as it is (readers
  // in salvage mode skip the damage) and continues in a new segment.
  RecoveryMode recovery = RecoveryMode::kStrict;
  // Checkpoints delete the segments they cover, as `retention` says (by default keeping the two
  // newest checkpoints).
  bool retire_segments = true;
  RetentionPolicy retention;
  // LogSink: record each commit's typed events (mmsb/events.h, EncodeEvents) as an event record,
  // so a replay yields the same event sequence.
  bool log_events = true;
  // LogSink: record what committed each epoch (site and commit-info records, format 1.1; see
  // mmsb/provenance.h). Off only to measure its cost.
  bool log_provenance = true;
  Env* env = nullptr;  // null: Env::Default()
};

namespace log {
class CommitInfoFramer;
}  // namespace log

// Records of one epoch, framed and checksummed as they are added (on the caller's thread, outside
// the writer's lock). Reusable after Clear().
class LogBatch {
 public:
  // `log_id` seeds the checksums: use LogWriter::NewBatch() or LogWriter::log_id().
  explicit LogBatch(std::uint64_t log_id = 0) : log_id_(log_id) {}

  void AddPageCreate(const LogPageCreate& rec);
  void AddTypeDescriptor(const TypeDescriptor& type);
  // InvalidArgument when the encoded delta exceeds the record size limit (4 GiB - 1).
  Status AddDelta(const Delta& delta);
  void AddPageFree(PageId id);
  void AddEdgeChange(const LogEdgeChange& change);
  void AddRecompute(const LogRecompute& rec);
  void AddSite(const LogSite& site);
  void AddCommitInfo(const LogCommitInfo& info);
  // The same record for a commit of one transaction and no state hash (every commit of the bus's
  // log sink), framed from a per-thread template: only the sequence and the payload checksum are
  // written per call.
  void AddCommitInfoFor(const LogCommitTransaction& t);
  // The same, framed from the caller's `framer` (log/commit_info_frame.h), which the caller keeps
  // for as long as it writes commit-infos and uses from one thread at a time (the log sink keeps
  // one per sink, under the sink's lock): no thread-local lookup, and the framer's code inlined
  // into this call.
  void AddCommitInfoFor(const LogCommitTransaction& t, log::CommitInfoFramer& framer);
  void AddBuild(const LogBuild& build);
  void AddVerifyMiss(const LogVerifyMiss& miss);
  // Events are opaque bytes (the event module's encoding) stamped with their epoch.
  void AddEvent(Epoch epoch, std::span<const std::uint8_t> bytes);
  // Any record type, raw payload: for types this build does not model, for copying records from
  // another log (a page-create still counts in page_id_high()), and for tests.
  void AddRaw(std::uint8_t type, std::span<const std::uint8_t> payload);

  void Clear();
  bool empty() const { return bytes_.empty(); }
  std::uint32_t record_count() const { return counted_; }  // events excluded
  std::size_t byte_size() const { return bytes_.size(); }
  PageId page_id_high() const { return page_id_high_; }
  std::uint64_t log_id() const { return log_id_; }
  void set_log_id(std::uint64_t id);  // re-frames already added records if it changes

  std::span<const std::uint8_t> bytes() const { return bytes_; }

 private:
  // Reserves a header, returns its offset; Seal() fills it in once the payload is appended.
  std::size_t Begin();
  void Seal(std::size_t at, std::uint8_t type);

  std::uint64_t log_id_;
  std::vector<std::uint8_t> bytes_;  // framed records
  std::uint32_t counted_ = 0;
  PageId page_id_high_ = 0;
};

inline constexpr Epoch kNextEpoch = ~Epoch{0};

// A commit accepted by LogWriter::Append, to be waited on with WaitDurable.
struct CommitTicket {
  Epoch epoch = 0;
  std::uint64_t end = 0;  // log position (bytes appended since open) just past the commit
};

class LogWriter {
 public:
  // Opens (creating if needed) the log directory `dir` for writing and takes its lock. An existing
  // log is recovered first: a torn tail and any records after the last commit record are cut from
  // the last segment (durably), then writing continues in a new segment. A second writer gets
  // FailedPrecondition naming the lock file.
  static Expected<std::unique_ptr<LogWriter>> Open(const std::string& dir,
                                                   const LogOptions& options = {});
  ~LogWriter();  // Close() if not closed; errors are lost (call Close() to see them)

  LogBatch NewBatch() const { return LogBatch(log_id_); }

  // Appends the batch and a commit record as one contiguous group and returns once the epoch is
  // as durable as the options say. `epoch` must exceed every epoch committed before, or be
  // kNextEpoch (last + 1). `unix_nanos` 0 means now. The batch is left as it was.
  Expected<Epoch> Commit(const LogBatch& batch, Epoch epoch = kNextEpoch,
                         std::uint64_t unix_nanos = 0);
  // The two halves of Commit, for callers that must not wait while holding their own lock:
  // Append orders and buffers the group (never waits for I/O under Durability::kGroup);
  // WaitDurable returns once it is durable (immediately under kNone).
  Expected<CommitTicket> Append(const LogBatch& batch, Epoch epoch = kNextEpoch,
                                std::uint64_t unix_nanos = 0);
  Status WaitDurable(const CommitTicket& ticket);

  // Appends an event record outside any batch; durable with the next commit or Sync().
  Status AppendEvent(Epoch epoch, std::span<const std::uint8_t> bytes);

  // Hands buffered bytes to the OS / makes everything appended durable.
  Status Flush();
  Status Sync();
  // Flushes, syncs (unless Durability::kNone), closes and releases the lock.
  Status Close();

  // Records that checkpoint file `file_name` (already durable in the directory) captures
  // `epoch`: appends a checkpoint-marker record, syncs, and (retire_segments) deletes segments
  // whose every epoch is <= `epoch`, keeping the two newest checkpoints. Used by mmsb/checkpoint.h.
  Status NoteCheckpoint(Epoch epoch, const std::string& file_name);

  const std::string& dir() const { return dir_; }
  std::uint64_t log_id() const { return log_id_; }
  const LogOptions& options() const { return options_; }
  Epoch last_epoch() const;     // last epoch appended (or found at open)
  PageId page_id_high() const;  // highest page id appended (or found at open)
  // Problems recovery found when opening (torn tail cut, salvage-kept damage).
  const std::vector<LogProblem>& recovery_problems() const { return recovery_problems_; }

  struct Counters {
    std::uint64_t commits = 0;
    std::uint64_t bytes = 0;     // bytes appended (framed records)
    std::uint64_t writes = 0;    // write calls to the OS
    std::uint64_t syncs = 0;     // fsyncs of segments
    std::uint64_t segments = 0;  // segments opened by this writer
  };
  Counters counters() const;

  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

 private:
  class Impl;
  LogWriter(std::string dir, const LogOptions& options, std::unique_ptr<Impl> impl);
  std::string dir_;
  LogOptions options_;
  std::uint64_t log_id_ = 0;
  std::vector<LogProblem> recovery_problems_;
  std::unique_ptr<Impl> impl_;
};

// Applies `policy` to the log directory `dir` now (what a writer does after each checkpoint):
// takes the log's LOCK (FailedPrecondition naming the holder while a writer runs), removes the
// leftovers of interrupted checkpoint writes, then deletes the checkpoints the policy drops and
// the segments behind the oldest kept one. Crash-safe: segments go before checkpoints, each
// removal leaves a log that replays from its oldest checkpoint. `mmsb log compact` runs it.
Expected<CompactReport> CompactLog(const std::string& dir, const RetentionPolicy& policy = {},
                                   Env* env = nullptr);

}  // namespace mmsb
