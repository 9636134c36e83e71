// Reading the transaction log: LogReader yields records in order with their file and offset,
// checking each frame; CheckLogPath says whether a path can be read as a log at all.
// mmsb/replay.h rebuilds state from what it reads.
//
// Ownership: LogReader owns its open files; spans it returns are valid until the next call to
// Next() (or, for a mapped segment, until it moves to the next file).
// Thread-safety: a LogReader is a single-threaded object.
#pragma once

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
  // segment), not just until the next Next(); with LogReaderOptions::retain_files, until a
  // LogReader::ReleaseRetained() releases them.
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
  // The files and read buffers the reader has finished with stay open, mapped or allocated until
  // ReleaseRetained() lets them go, so every entry is payload_mapped: its spans outlive the
  // reader's move past them. Replay sets it: its apply thread reads one group's deltas while the
  // reader goes on.
  bool retain_files = false;
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
  // LogReaderOptions::retain_files: a mark for what has been retained so far, and the release of
  // everything retained before a mark. The spans of entries returned before RetainMark() was
  // taken become invalid at ReleaseRetained(mark), unless they lie in the current file or window
  // (which a later mark covers once the reader has left it).
  std::uint64_t RetainMark() const;
  void ReleaseRetained(std::uint64_t mark);

 private:
  class Impl;
  explicit LogReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Whether `path` can be read as a log, before anything reads it: a directory that holds a
// segment, a checkpoint or a LOCK file, or a file that starts with a valid segment or checkpoint
// header. NotFound: nothing there. InvalidArgument: something else, and the message says what
// it looks like (an empty file, an ELF binary, an SQLite database, ...). Corruption: an MMSB
// file whose header is damaged (salvage cannot read past that either). LogReader::Open and
// Replayer::Open call it.
Status CheckLogPath(const std::string& path, Env* env = nullptr);

}  // namespace mmsb
