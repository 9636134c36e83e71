// The bus's log sink: LogSink logs every commit of the running bus (AttachLog adds one), and a
// LogGroupObserver sees each epoch group it appends (how a replicator follows the log).
//
// Ownership: the sink owns its LogWriter; the bus holds the sink as a shared_ptr while attached.
// Thread-safety: the bus calls the sink under its commit lock; Close() and SetGroupObserver() are
// not for use from inside a commit.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mmsb/commit.h"
#include "mmsb/events.h"
#include "mmsb/log_writer.h"
#include "mmsb/status.h"
#include "mmsb/types.h"

namespace mmsb {

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

}  // namespace mmsb
