// Replay: rebuilding the state of any epoch from a log (restore and state diff, which build on it,
// are mmsb/restore.h and mmsb/state_diff.h).
//
// Replay starts from the newest usable checkpoint at or before the target epoch (or from the
// beginning), then applies committed epoch groups in order. A group is applied only when its
// commit record is present, its record count matches, no damage was found inside it and every
// record is consistent with the state (pages exist, sizes match, each delta continues its page's
// epoch chain); otherwise it is reported and, in salvage mode, skipped whole. Pages whose derived
// deltas the log leaves out (replay-recomputed pages: DerivedPolicy in mmsb/graph.h) are
// recomputed from their parents at the group's recompute record, exactly as the live commit did.
// The result is bit-identical to the live state at that epoch and deterministic.
//
// Ownership: LogState is a value. A Replayer owns its reader and state.
// Thread-safety: none; use one Replayer per thread. Const LogState methods are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mmsb/env.h"
#include "mmsb/graph.h"
#include "mmsb/log_format.h"
#include "mmsb/status.h"
#include "mmsb/type_desc.h"
#include "mmsb/types.h"

namespace mmsb {

inline constexpr Epoch kLatestEpoch = ~Epoch{0};

struct ReplayedPage {
  PageId id = kInvalidPageId;
  std::string name;
  Location location = Location::kCpu;
  bool is_static = false;
  std::string type_name;                       // as logged; may name an unknown type
  std::shared_ptr<const TypeDescriptor> type;  // null for raw bytes or an unknown type
  Epoch epoch = 0;  // last change; a page created in epoch E starts at E - 1 (the bus epoch then)
  bool changed = false;  // a delta was applied since its creation (always true from a checkpoint)
  std::vector<std::uint8_t> bytes;
};

struct ReplayedEvent {
  Epoch epoch = 0;
  std::vector<std::uint8_t> bytes;
};

// The state of the bus at one epoch, as recorded in a log.
struct LogState {
  Epoch epoch = 0;
  std::uint64_t unix_nanos = 0;  // time of that epoch's commit (0 if unknown)
  PageId page_id_high = 0;
  std::map<PageId, ReplayedPage> pages;
  std::map<std::string, std::shared_ptr<const TypeDescriptor>, std::less<>> types;
  std::vector<EdgeInfo> edges;  // sorted by (child, parent), as ListEdges() returns them

  const ReplayedPage* FindPage(PageId id) const;
  const ReplayedPage* FindPageByName(std::string_view name) const;
  const TypeDescriptor* FindType(std::string_view name) const;
  std::uint64_t PageBytes() const;
  // XXH3-64 of a canonical serialisation of everything above but unix_nanos.
  std::uint64_t Hash() const;
  // Hash() without the type descriptors, in a form that can be kept up to date from each epoch's
  // changes (docs/Replication.md, "The state hash"): what a replication leader computes from its
  // committed pages for every epoch (LogGroupObserver), which a follower checks after applying
  // it. Page type names are hashed, so a page that changes type still changes the hash. This is
  // a full pass; Replayer::ReplicaHash() returns the same value incrementally.
  std::uint64_t ReplicaHash() const;
};

struct ReplayOptions {
  Epoch epoch = kLatestEpoch;  // the target
  RecoveryMode mode = RecoveryMode::kStrict;
  bool use_checkpoints = true;
  bool collect_events = false;  // keep event records (epoch <= target) in the report
  // Bounds for untrusted logs: a page larger than max_page_bytes, or pages adding up to more than
  // max_total_bytes (0: half of physical memory), are reported as corruption, not allocated.
  std::uint64_t max_page_bytes = (std::uint64_t{1} << 32) - 1;
  std::uint64_t max_total_bytes = 0;
  Env* env = nullptr;
  // A group whose deltas add up to at least this many bytes is applied on a second thread while
  // the next group is read and checked (the machine must have more than one hardware thread; the
  // state is the same either way). 0: every group; ~0: never. Groups are applied on the calling
  // thread while Replayer::ReplicaHash() is being kept.
  std::uint64_t apply_thread_min_bytes = std::uint64_t{64} << 10;
  // Called about every 16 MiB of log read, with bytes read and total bytes.
  std::function<void(std::uint64_t done, std::uint64_t total)> progress;
};

struct ReplayReport {
  Epoch epoch = 0;             // the epoch reached
  Epoch last_log_epoch = 0;    // the last committed epoch seen in the log
  Epoch checkpoint_epoch = 0;  // the checkpoint replay started from (0: none)
  std::string checkpoint_file;
  std::uint64_t epochs_applied = 0;
  std::uint64_t epochs_dropped = 0;
  std::uint64_t records = 0;
  std::uint64_t deltas_applied = 0;
  // Derived deltas the log left out and replay recomputed (replay-recomputed pages whose
  // recompute changed bytes; mmsb/graph.h, DerivedPolicy).
  std::uint64_t deltas_recomputed = 0;
  std::uint64_t unknown_records = 0;
  std::uint64_t bytes_read = 0;
  std::vector<LogProblem> problems;  // the reader's and the replay's, in order found
  std::vector<ReplayedEvent> events;

  bool has_errors() const;
};

// Incremental replay: advance through the log epoch by epoch.
class Replayer {
 public:
  // `path`: a log directory, a segment file, or a checkpoint file. Opens the newest usable
  // checkpoint at or before options.epoch.
  static Expected<std::unique_ptr<Replayer>> Open(const std::string& path,
                                                  const ReplayOptions& options = {});
  ~Replayer();

  // Applies committed epochs up to and including `epoch` (or to the end of the log). Returns the
  // epoch reached. Strict mode: corruption or inconsistency returns its error; the state stays at
  // the last complete epoch before it.
  Expected<Epoch> AdvanceTo(Epoch epoch);
  // Applies the next committed epoch; false at the end of the log.
  Expected<bool> Step();

  // A Replayer that starts at `state` (e.g. a checkpoint a replication follower received) and
  // has no log of its own: it advances only through ApplyGroup.
  static std::unique_ptr<Replayer> FromState(LogState state, const ReplayOptions& options = {});
  // Applies one epoch group held in memory: framed records whose checksums `log_id` seeded, the
  // commit record last (LoggedGroup::records, as a replication follower receives it). The group
  // goes through the same checks and the same apply as one read from a log, after the log this
  // Replayer has read (which must be at its end). Returns the epoch reached: the group's own, or
  // the current epoch when the group was not applied (incomplete, or an epoch already applied).
  // Strict mode: a damaged or inconsistent group returns its error and changes nothing.
  Expected<Epoch> ApplyGroup(std::span<const std::uint8_t> records, std::uint64_t log_id);

  const LogState& state() const;
  // state().ReplicaHash(), kept up to date from each applied epoch's changes (O(changed bytes)
  // per epoch; the first call is a full pass). A replication follower checks it per epoch.
  std::uint64_t ReplicaHash();
  const ReplayReport& report() const;
  // Moves the state out; the Replayer must not be advanced afterwards.
  LogState TakeState();

 private:
  class Impl;
  explicit Replayer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Replays `path` to options.epoch. NotFound when the log ends before that epoch, or when the
// epoch precedes every retained segment and no checkpoint covers it.
Expected<LogState> Replay(const std::string& path, const ReplayOptions& options = {},
                          ReplayReport* report = nullptr);

// ---- JSON (stable keys; see docs/SerializationSpec.md, "CLI JSON") -----------------------------

// Page metadata and XXH3 of each page's bytes; `with_bytes` adds the bytes as hex.
std::string LogStateToJson(const LogState& state, const ReplayReport* report, bool with_bytes);

}  // namespace mmsb
