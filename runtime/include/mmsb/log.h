// The transaction log (TLog): durable, checksummed, append-only records of every commit.
//
// A log is a directory (conventionally `run.tlog/`) holding
//   - segments `00000001.seg`, `00000002.seg`, ...: a file header, then framed records
//     (length, type, XXH3 checksums seeded with the log's random id);
//   - checkpoints `ckpt-<epoch>.ckpt` (see mmsb/checkpoint.h);
//   - `LOCK`, held by the one writer.
// Every on-disk byte is described in docs/SerializationSpec.md ("Transaction log").
//
// An epoch is logged as a group: its page-create, type, edge, delta and page-free records (and a
// recompute record where the bus left out the derived deltas of replay-recomputed pages, see
// DerivedPolicy in mmsb/graph.h), then one commit record that names the epoch and counts the
// group. Readers apply a group only when its commit record is present and complete, so a crash
// never leaves half an epoch applied.
//
// Writing: LogWriter (any caller) or LogSink (the bus's commit sink, see AttachLog). Reading:
// LogReader yields records in order with their file and offset; mmsb/replay.h rebuilds state.
//
// Ownership: a LogWriter owns its files and the directory lock until destroyed. LogReader owns
// its open files; spans it returns are valid until the next call to Next().
// Thread-safety: LogWriter's methods may be called from many threads at once (that is how group
// commit shares an fsync). LogBatch and LogReader are single-threaded objects.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mmsb/commit.h"
#include "mmsb/delta.h"
#include "mmsb/env.h"
#include "mmsb/graph.h"
#include "mmsb/status.h"
#include "mmsb/type_desc.h"
#include "mmsb/types.h"

namespace mmsb {

// Record types. Values are part of the format. A reader skips (and counts) types it does not
// know, so new types can be added without breaking older readers; a change older readers must
// not ignore bumps the format's major version instead.
enum class LogRecordType : std::uint8_t {
  kPageCreate = 1,
  kPageFree = 2,
  kTypeDescriptor = 3,
  kDelta = 4,
  kCommit = 5,
  kCheckpointMarker = 6,
  kGraphEdge = 7,
  kEvent = 8,
  kRunStart = 9,
  kRecompute = 10,
  // Format 1.1 (docs/SerializationSpec.md, "Provenance"); a 1.0 reader skips them.
  kSite = 11,        // a transaction site, interned once per run
  kCommitInfo = 12,  // what committed an epoch (sites, threads, sequence numbers), a state hash
  kBuild = 13,       // the build a run was made from (after its run-start)
  kVerifyMiss = 14,  // bytes a commit found changed without a mark (verify or sampling)
  // Checkpoint files only.
  kPageImage = 16,
  kCheckpointEnd = 17,
};
const char* LogRecordTypeName(LogRecordType t);  // "delta", "commit", ...; "unknown" otherwise

// When a commit counts as durable.
enum class Durability : std::uint8_t {
  kNone = 0,   // buffered: handed to the OS when the buffer fills, on Flush() and on close (a
               // crash loses a suffix of the log; sealed segments are synced under every policy)
  kGroup = 1,  // on disk before Commit returns; concurrent commits share one write and fsync
  kSync = 2,   // on disk before Commit returns; one write and fsync per commit
};
const char* DurabilityName(Durability d);

// What a reader does at a corrupt record in the middle of the log.
enum class RecoveryMode : std::uint8_t {
  kStrict = 0,   // stop with a Corruption status naming file and offset
  kSalvage = 1,  // skip to the next valid record; report what was dropped
};

// Something a reader found wrong or cut. Corruption, bad segments, dropped epochs and
// inconsistencies are errors; a torn tail or an unfinished last epoch (the expected result of a
// crash) are not.
struct LogProblem {
  enum class Kind : std::uint8_t {
    kTornTail = 0,         // the last segment ends in an incomplete or garbage record: cut
    kCorruption = 1,       // bytes that are not a valid record, followed by valid records
    kBadSegment = 2,       // a segment whose header is unreadable, or missing from the sequence
    kDroppedEpoch = 3,     // an epoch's group was incomplete or damaged and was not applied
    kIncompleteEpoch = 4,  // records after the last commit record (a commit that never finished)
    kInconsistent = 5,     // a valid record that contradicts the state (e.g. delta for no page)
  };
  Kind kind = Kind::kCorruption;
  std::string file;          // path of the segment or checkpoint
  std::uint64_t offset = 0;  // byte offset in `file` where the problem starts
  std::uint64_t length = 0;  // bytes affected (0 when not a byte range)
  Epoch epoch = 0;           // the epoch concerned, when known
  std::string message;

  bool is_error() const { return kind != Kind::kTornTail && kind != Kind::kIncompleteEpoch; }
  std::string ToString() const;  // "run.tlog/00000001.seg:4096: corruption: ..."
};
const char* LogProblemKindName(LogProblem::Kind k);

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

// A page-create record.
struct LogPageCreate {
  PageId id = kInvalidPageId;
  std::uint64_t size = 0;
  Location location = Location::kCpu;
  bool is_static = false;
  std::string name;       // stable identity (mangled variable name for static pages); may be empty
  std::string type_name;  // a type-descriptor record logged earlier, or empty for raw bytes
};

struct LogCommit {
  Epoch epoch = 0;
  std::uint64_t unix_nanos = 0;
  std::uint32_t record_count = 0;  // records in the epoch's group, events excluded
  PageId page_id_high = 0;         // highest page id used in the log so far
};

enum class EdgeOp : std::uint8_t { kAdd = 1, kRemove = 2 };
struct LogEdgeChange {
  EdgeOp op = EdgeOp::kAdd;
  EdgeInfo edge;
};

struct LogCheckpointMarker {
  Epoch epoch = 0;
  std::string file;  // checkpoint file name inside the log directory
};

// Written at the first commit of each writer session: the pages and edges of earlier sessions
// (another process, or an earlier bus run) are gone from here on.
struct LogRunStart {
  Epoch epoch_base = 0;     // last epoch before this run
  PageId page_id_base = 0;  // the run's page ids are bus ids plus this
  std::uint64_t unix_nanos = 0;
  std::uint32_t pid = 0;
};

// Where in an epoch's group the bus's propagation ran, written when the sink left out derived
// deltas of replay-recomputed pages (mmsb/graph.h, DerivedPolicy): replay recomputes those pages
// at this record, from the deltas before it. `pages` counts the deltas left out, which is the
// number of replay-recomputed pages whose recompute changed bytes.
struct LogRecompute {
  std::uint32_t pages = 0;
};

// Provenance (format 1.1). A site record names a place that commits: a [[mmsb::transaction]]
// function or a call of mmsb::commit(). Sites are numbered per run (from 1) and each is logged
// once per run, in the group of the first commit that uses it, before that group's commit-info.
struct LogSite {
  enum class Kind : std::uint8_t { kTransaction = 1, kCommitCall = 2 };
  std::uint32_t id = 0;  // >= 1, unique within the run
  Kind kind = Kind::kTransaction;
  std::uint32_t line = 0;
  std::string function;  // demangled
  std::string file;
};
struct LogCommitTransaction {
  std::uint32_t site = 0;    // a site record of this run; 0: unknown
  std::uint32_t thread = 0;  // the run's thread number, from 1 in order of first commit
  std::uint64_t sequence = 0;
};
// What committed an epoch: the last record of its group before the commit record.
struct LogCommitInfo {
  std::uint64_t state_hash = 0;  // LogState::Hash after the epoch; 0: not computed
  std::vector<LogCommitTransaction> transactions;
};
// The build a run was made from: written after the run's run-start record.
struct LogBuild {
  std::string build_id;    // the executable's GNU build id as lower-case hex; empty if unknown
  std::string executable;  // its path as the process saw it
  struct Unit {
    std::string source;
    std::uint64_t content_hash = 0;
  };
  std::vector<Unit> units;  // per translation unit content hashes (empty when not known)
};

// A tracking miss (format 1.1, a record a reader may skip): bytes of `page` that changed without a
// barrier's mark after epoch `after_epoch`'s cut and before `epoch`'s, found by the commit of the
// group holding the record (verify mode, or sampled verification in a normal run). The group's
// deltas hold the bytes all the same: a check diffs the page in full.
struct LogVerifyMiss {
  PageId page = kInvalidPageId;
  std::uint32_t offset = 0;
  std::uint32_t length = 0;
  Epoch after_epoch = 0;
  Epoch epoch = 0;
  bool sampled = false;  // found by sampled verification
  std::string field;     // "Particles.x[12]" when the page's type resolves it; may be empty
};

// Checkpoint files only: one chunk of a page's bytes, and the closing summary.
struct LogImageChunk {
  PageId page = kInvalidPageId;
  Epoch epoch = 0;           // the page's last change
  std::uint64_t offset = 0;  // of the chunk in the page
  std::span<const std::uint8_t> bytes;
};
struct LogCheckpointEnd {
  Epoch epoch = 0;
  std::uint64_t unix_nanos = 0;
  PageId page_id_high = 0;
  std::uint64_t pages = 0;
  std::uint64_t types = 0;
  std::uint64_t edges = 0;
  std::uint64_t image_bytes = 0;
};

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

// One record as LogReader yields it: where it is, which epoch it belongs to, and its decoded
// content. Only the member matching `type` is meaningful: a reused LogEntry keeps stale values in
// the others.
struct LogEntry {
  LogRecordType type = LogRecordType::kCommit;
  std::uint8_t raw_type = 0;      // the type byte, also for unknown types
  std::size_t file_index = 0;     // index into LogReader::files()
  std::uint64_t offset = 0;       // of the record header
  std::uint64_t framed_size = 0;  // header plus payload
  // Commit, event, checkpoint marker: their own epoch. Other records: the epoch whose group they
  // belong to (the last commit seen + 1).
  Epoch epoch = 0;

  LogPageCreate page_create;
  PageId page_free = kInvalidPageId;
  TypeDescriptor type_descriptor;
  Delta delta;
  LogCommit commit;
  LogEdgeChange edge;
  LogCheckpointMarker checkpoint;
  LogRunStart run_start;
  LogRecompute recompute;
  LogSite site;
  LogCommitInfo commit_info;
  LogBuild build;
  LogVerifyMiss verify_miss;
  LogImageChunk image;  // bytes valid until the next Next()
  LogCheckpointEnd checkpoint_end;
  std::span<const std::uint8_t> event;    // valid until the next Next()
  std::span<const std::uint8_t> payload;  // raw payload; valid until the next Next()
  // The spans above stay valid until the reader moves to the next file (a memory-mapped sealed
  // segment), not just until the next Next().
  bool payload_mapped = false;
};

struct LogReaderOptions {
  RecoveryMode mode = RecoveryMode::kStrict;
  Env* env = nullptr;  // null: Env::Default()
  // Largest page a delta or page-create record may describe; bigger is reported as corruption.
  std::uint64_t max_page_bytes = (std::uint64_t{1} << 32) - 1;
  // Segments whose every epoch is <= this are not opened (replay from a checkpoint).
  Epoch skip_through_epoch = 0;
  // Decode delta records into LogEntry::delta. Replay turns this off and applies the encoded
  // payload in place instead (after the same checks).
  bool decode_deltas = true;
};

class LogReader {
 public:
  // `path` is a log directory (all its segments, in sequence order) or one segment file.
  static Expected<std::unique_ptr<LogReader>> Open(const std::string& path,
                                                   const LogReaderOptions& options = {});
  // Reads framed records held in memory (an epoch group as LoggedGroup::records has it, e.g.
  // received by a replication follower) with the same checks as a segment whose last epoch
  // before them is `base_epoch`. `log_id` is the id that seeded their checksums. The bytes are
  // copied; options.env is not used.
  static Expected<std::unique_ptr<LogReader>> OpenBuffer(std::span<const std::uint8_t> records,
                                                         std::uint64_t log_id, Epoch base_epoch,
                                                         const LogReaderOptions& options = {});
  ~LogReader();

  // Reads the next record into *entry. Returns true for a record, false at the end of the log.
  // Strict mode: a corruption returns a Corruption status naming file and offset (and is also in
  // problems()). Salvage mode: damage is recorded in problems() and reading goes on. Either way a
  // torn tail at the end of the last segment is recorded and ends the log.
  Expected<bool> Next(LogEntry* entry);

  const std::vector<std::string>& files() const;  // segment paths in read order
  const std::vector<LogProblem>& problems() const;
  std::uint64_t log_id() const;
  std::uint64_t bytes_read() const;   // file bytes consumed so far
  std::uint64_t total_bytes() const;  // sum of segment sizes
  // The base epoch of the first segment (0 unless old segments were retired).
  Epoch first_base_epoch() const;

 private:
  class Impl;
  explicit LogReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- The bus's log sink ------------------------------------------------------------------------

// An epoch group as the log sink appended it, for a replicator (mmsb::replication,
// docs/Replication.md). Valid only during LogGroupObserver::OnGroup.
struct LoggedGroup {
  Epoch epoch = 0;  // log epoch
  std::uint64_t unix_nanos = 0;
  std::uint64_t log_id = 0;  // seeded the records' checksums
  // The group's framed records exactly as appended, its commit record last
  // (LogReader::OpenBuffer and Replayer::ApplyGroup read them).
  std::span<const std::uint8_t> records;
  // LogState::ReplicaHash() of the state after this epoch, from the committed pages; 0 unless
  // the observer asked for it.
  std::uint64_t state_hash = 0;
};

// Sees every group a LogSink appends. Records appended outside a group (LogSink::AppendEvent
// after its epoch, a checkpoint's event and marker) are not shown.
class LogGroupObserver {
 public:
  virtual ~LogGroupObserver() = default;
  // Under the commit lock, right after the group was appended to the local log (before it is
  // durable there). Copy what you keep; do not block for long. An error fails the commit.
  virtual Status OnGroup(const LoggedGroup& group) = 0;
  // After the commit lock is released, on the committing thread, once the local log's own wait
  // for its durability is over: where a replicator waits for its own durability level.
  virtual Status AfterGroup(Epoch log_epoch) { return Status::Ok(); }
  // The sink wrote checkpoint `path` (inside the log directory) of log epoch `epoch`; under the
  // commit lock, after the group of that epoch. The file may be retired by later checkpoints.
  virtual void OnCheckpoint(Epoch epoch, const std::string& path) {}
};

// Logs every commit of the running bus. Page ids and epochs in the log are the bus's plus the
// bases found in an existing log (0 for a new one), so a log continued by a later run keeps both
// unique and increasing; LogRunStart records the mapping. Pages that already existed when the
// sink was attached are logged at its first commit with their full contents. From the second
// commit on, the deltas propagation derives for replay-recomputed pages (DerivedPolicy in
// mmsb/graph.h) are left out, and a recompute record marks where replay recomputes them.
class LogSink final : public CommitSink {
 public:
  static Expected<std::shared_ptr<LogSink>> Open(const std::string& dir,
                                                 const LogOptions& options = {});
  ~LogSink() override;

  const char* name() const override { return "log"; }
  Status OnCommit(const CommitBatch& batch) override;
  Status AfterCommit(Epoch epoch) override;
  // The checkpoint-written event of a checkpoint the last commit triggered, once.
  std::vector<Event> TakeEvents() override;
  bool wants_events() const override;
  // Hands what is buffered to the OS and syncs it (unless Durability::kNone); the log stays open.
  Status Flush() override;

  // Appends opaque event bytes for bus epoch `epoch`. With LogOptions::log_events the sink already
  // records every commit's event batch (EncodeEvents, page ids and epochs in log terms) and each
  // checkpoint's Checkpoint event; this is for anything else a program wants kept in order.
  Status AppendEvent(Epoch epoch, std::span<const std::uint8_t> bytes);

  // Makes the next commit write a checkpoint of the whole state (pages, types, edges) after its
  // records, then note it in the log and retire covered segments. Checkpoint() does that with a
  // commit of its own and returns the checkpoint's log epoch.
  void RequestCheckpoint();
  Expected<Epoch> Checkpoint();

  // Log epoch and page id of a bus epoch / page id.
  Epoch LogEpoch(Epoch bus_epoch) const;
  PageId LogPageId(PageId bus_id) const;

  // Shows every later group to `observer` (null removes it); with `state_hash`, each with its
  // LogState::ReplicaHash(), kept up to date from each commit's changes (O(changed bytes); the
  // first commit after this call is a full pass). Not from inside a commit.
  void SetGroupObserver(std::shared_ptr<LogGroupObserver> observer, bool state_hash);

  LogWriter& writer() { return *writer_; }
  // Removes the sink from the bus (if attached) and closes the log: flushes what is buffered,
  // syncs (unless Durability::kNone), closes the segment and releases the LOCK. Idempotent: a
  // second Close() returns the first one's result. Not from inside a commit. The destructor
  // calls it and drops its error.
  //
  // fork(): the log belongs to the process that opened it. In a forked child every commit that
  // reaches this sink fails with FailedPrecondition (nothing is appended), and Close() only
  // detaches the sink, never flushing the parent's buffered bytes. A child that wants a log
  // attaches its own (another directory).
  Status Close();

 private:
  LogSink() = default;
  bool forked() const;
  Status ForkedError() const;
  struct State;
  std::unique_ptr<LogWriter> writer_;
  std::unique_ptr<State> state_;
};

// Opens the log at `dir` and adds it to the running bus as a sink. Call right after start(),
// before creating pages, so the log holds every page from its creation.
Expected<std::shared_ptr<LogSink>> AttachLog(const std::string& dir,
                                             const LogOptions& options = {});

// Whether `path` can be read as a log, before anything reads it: a directory that holds a
// segment, a checkpoint or a LOCK file, or a file that starts with a valid segment or checkpoint
// header. NotFound: nothing there. InvalidArgument: something else, and the message says what
// it looks like (an empty file, an ELF binary, an SQLite database, ...). Corruption: an MMSB
// file whose header is damaged (salvage cannot read past that either). LogReader::Open and
// Replayer::Open call it.
Status CheckLogPath(const std::string& path, Env* env = nullptr);

// Applies `policy` to the log directory `dir` now (what a writer does after each checkpoint):
// takes the log's LOCK (FailedPrecondition naming the holder while a writer runs), removes the
// leftovers of interrupted checkpoint writes, then deletes the checkpoints the policy drops and
// the segments behind the oldest kept one. Crash-safe: segments go before checkpoints, each
// removal leaves a log that replays from its oldest checkpoint. `mmsb log compact` runs it.
Expected<CompactReport> CompactLog(const std::string& dir, const RetentionPolicy& policy = {},
                                   Env* env = nullptr);

}  // namespace mmsb
