// The transaction log's records: the record types, their decoded forms, and what a reader reports
// when bytes are damaged. Shared by the writer (mmsb/log_writer.h), the reader (mmsb/log_reader.h)
// and replay; every on-disk byte is described in docs/SerializationSpec.md ("Transaction log").
//
// Ownership: records are values; the spans in LogImageChunk point into the reader's buffers
// (valid as LogEntry says). Thread-safety: plain data.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mmsb/graph.h"
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

}  // namespace mmsb
