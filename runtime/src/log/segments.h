// The log directory: file names, listing, recovery of the last segment, retiring old segments.
//
// Files of a log directory (see docs/SerializationSpec.md, "Log directory"):
//   00000001.seg ...                    segments, consecutive sequence numbers
//   ckpt-00000000000000000042.ckpt      checkpoint of epoch 42
//   ckpt-....ckpt.tmp                   a checkpoint being written (removed at open)
//   LOCK                                held by the writer
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mmsb/env.h"
#include "mmsb/log.h"

namespace mmsb::log {

std::string SegmentFileName(std::uint64_t seq);
bool ParseSegmentFileName(std::string_view name, std::uint64_t* seq);
std::string CheckpointFileName(Epoch epoch);
bool ParseCheckpointFileName(std::string_view name, Epoch* epoch);

struct LogDirListing {
  struct Segment {
    std::uint64_t seq = 0;
    std::string path;
  };
  struct Checkpoint {
    Epoch epoch = 0;
    std::string path;
  };
  std::vector<Segment> segments;        // ascending seq
  std::vector<Checkpoint> checkpoints;  // ascending epoch
  std::vector<std::string> temp_files;  // leftovers of interrupted checkpoint writes
  bool has_lock = false;                // a LOCK file: a writer opened this directory
};
Expected<LogDirListing> ListLogDir(Env* env, const std::string& dir);

// Removes the leftovers of checkpoint writes that a crash interrupted (listing.temp_files) and
// syncs the directory. Only the log's writer calls it: it holds the LOCK, so no checkpoint is
// being written by anyone else.
Status RemoveTempFiles(Env* env, const std::string& dir, const LogDirListing& listing);

// What the writer needs to continue a log, found by scanning the last segment(s).
struct RecoveredTail {
  bool found = false;  // a segment with a readable header exists
  std::uint64_t log_id = 0;
  std::uint64_t last_seq = 0;
  Epoch last_epoch = 0;
  PageId page_id_high = 0;
  std::vector<LogProblem> problems;
};
// Scans the last segment, cuts (durably) everything after its last complete epoch, and removes a
// last segment whose header was never completely written. Strict: corruption before the end
// returns Corruption naming file and offset. Salvage: it is reported and left in place.
Expected<RecoveredTail> RecoverTail(Env* env, const std::string& dir, const LogDirListing& listing,
                                    RecoveryMode mode);

// Applies `policy`: picks the checkpoints to keep (the newest keep_checkpoints, fewer while the
// files exceed max_bytes, never none), deletes the leading segments (below `current_seq`, never
// the last) whose every epoch is at or before the oldest kept checkpoint, then the older
// checkpoints. Fills `report` when not null.
Status RetireCovered(Env* env, const std::string& dir, std::uint64_t current_seq,
                     const RetentionPolicy& policy, CompactReport* report = nullptr);

}  // namespace mmsb::log
