// Checkpoints: a consistent snapshot of all pages, type descriptors and graph edges at one epoch.
//
// A checkpoint file has the log's file header (magic "MMSBCKPT") and the log's framed records:
// type descriptors, then for each page a page-create record and its bytes in page-image chunks
// (at most 64 MiB each), then graph edges, then a checkpoint-end record with the counts. It is
// written to `<name>.tmp`, synced, renamed into place and the directory synced, so a reader sees
// either the whole checkpoint or none. See docs/SerializationSpec.md ("Checkpoint").
//
// Ownership: CheckpointContents only points at bytes it does not own; they must stay unchanged
// while WriteCheckpointFile runs.
// Thread-safety: the functions are reentrant; concurrent writers of one path are not supported.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mmsb/env.h"
#include "mmsb/log.h"
#include "mmsb/replay.h"

namespace mmsb {

struct CheckpointPage {
  PageId id = kInvalidPageId;
  Epoch epoch = 0;  // the page's last change
  Location location = Location::kCpu;
  bool is_static = false;
  std::string_view name;
  std::string_view type_name;
  std::span<const std::uint8_t> bytes;
};

struct CheckpointContents {
  std::uint64_t log_id = 0;  // seeds the checksums; the log's id when the checkpoint is in a log
  Epoch epoch = 0;
  std::uint64_t unix_nanos = 0;
  PageId page_id_high = 0;
  std::vector<const TypeDescriptor*> types;
  std::vector<CheckpointPage> pages;
  std::vector<EdgeInfo> edges;
};

// Points `contents` at `state` (which must outlive it).
CheckpointContents ContentsOf(const LogState& state, std::uint64_t log_id);

struct CheckpointOptions {
  bool sync = true;  // fsync the file and the directory (false only for benchmarks and tests)
  Env* env = nullptr;
};

// Writes `contents` atomically to `path`. Returns the file's size.
Expected<std::uint64_t> WriteCheckpointFile(const std::string& path,
                                            const CheckpointContents& contents,
                                            const CheckpointOptions& options = {});

struct CheckpointLoadOptions {
  Env* env = nullptr;
  std::uint64_t max_page_bytes = (std::uint64_t{1} << 32) - 1;
  std::uint64_t max_total_bytes = 0;  // 0: half of physical memory
  // When set, the file's log id must equal this.
  std::uint64_t expect_log_id = 0;
};

// Loads and fully checks a checkpoint. Any damage is Corruption naming the file and offset: a
// checkpoint is used whole or not at all.
Expected<LogState> LoadCheckpoint(const std::string& path,
                                  const CheckpointLoadOptions& options = {});

// Writes a checkpoint of `contents` (its epoch must be committed in the log) into the writer's
// directory, then notes it in the log and retires the segments it covers. Returns the file path.
Expected<std::string> WriteLogCheckpoint(LogWriter& writer, CheckpointContents contents,
                                         const CheckpointOptions& options = {});

}  // namespace mmsb
