// Replayer::Impl: the replayer's state, shared by the files that define its parts:
//   epoch_group_reader.cc  reads one epoch's group of records up to its commit record
//   group_validator.cc     checks a whole group against the state before anything changes
//   replay.cc              applies groups, steps and advances, and the public Replayer
// Internal to the log component. Thread-safety: none; a Replayer is used by one thread at a time.
// Its apply worker (apply_worker.h) writes the pages of the group handed to it while this thread
// reads the next group; Drain() ends that overlap before any page is read or changed.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mmsb/log.h"
#include "mmsb/replay.h"

#include "delta/delta_view.h"
#include "log/apply_worker.h"
#include "log/log_records.h"
#include "log/recompute.h"
#include "log/state_hash.h"

namespace mmsb {
namespace log {

inline bool EdgeLess(const EdgeInfo& a, const EdgeInfo& b) {
  return std::tie(a.child, a.parent) < std::tie(b.child, b.parent);
}

// Site, commit-info (both layouts: 12 and 15) and build records (11, 13) carry provenance only:
// known, nothing to apply.
inline bool KnownLogType(std::uint8_t t) {
  return t >= static_cast<std::uint8_t>(LogRecordType::kPageCreate) && t <= kLastSegmentRecordType;
}

// One record of the epoch group being read. Kept small: deltas are the common case and are held
// as views of their encoded bytes; the rarer records keep their content in side vectors.
struct Op {
  LogRecordType type = LogRecordType::kCommit;
  std::uint8_t raw_type = 0;
  std::uint32_t file_index = 0;
  std::uint64_t offset = 0;
  Epoch epoch = 0;  // the group's epoch as the reader saw it
  // Page creates, types, edges and recomputes: the record's index in its type's side vector.
  std::uint32_t side_index = 0;
  PageId freed_page = kInvalidPageId;  // a page free: the page
  delta_internal::DeltaView delta;
  // A delta's page in the state, when Validate found it there (not created in this group). Apply
  // uses it instead of a second lookup: Apply goes in group order, and only a run-start or a free
  // of the page, both later in the group than the delta, can take the page away.
  ReplayedPage* target = nullptr;
};

// Validate's view of a page as the group changes it, for the pages the group touches: a small
// flat list (most groups touch a few pages), indexed by a hash map once it grows.
template <class Sim>
class Overlay {
 public:
  void Clear() {
    entries_.clear();
    index_.clear();
  }
  Sim* Find(PageId id) {
    if (index_.empty()) {
      for (auto& [k, v] : entries_) {
        if (k == id) return &v;
      }
      return nullptr;
    }
    auto it = index_.find(id);
    return it == index_.end() ? nullptr : &entries_[it->second].second;
  }
  void Set(PageId id, const Sim& s) {
    if (Sim* at = Find(id)) {
      *at = s;
      return;
    }
    entries_.emplace_back(id, s);
    if (entries_.size() > kFlat) {
      if (index_.empty()) {
        for (std::size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].first, i);
      } else {
        index_.emplace(id, entries_.size() - 1);
      }
    }
  }
  template <class Fn>
  void ForEach(Fn fn) {
    for (auto& [k, v] : entries_) fn(v);
  }

 private:
  static constexpr std::size_t kFlat = 32;
  std::vector<std::pair<PageId, Sim>> entries_;
  std::unordered_map<PageId, std::size_t> index_;
};

// Copies of payloads that do not stay in a mapping until the group closes. Chunks are kept, so
// views into earlier payloads stay valid while later ones are added.
class PayloadArena {
 public:
  std::span<const std::uint8_t> Copy(std::span<const std::uint8_t> in) {
    for (;;) {
      // Moving the inner vectors when chunks_ grows keeps their buffers, so old views stay valid.
      if (cur_ == chunks_.size()) chunks_.emplace_back(std::max<std::size_t>(in.size(), kChunk));
      std::vector<std::uint8_t>& c = chunks_[cur_];
      if (c.size() - used_ >= in.size()) {
        std::uint8_t* at = c.data() + used_;
        if (!in.empty()) std::memcpy(at, in.data(), in.size());
        used_ += in.size();
        return {at, in.size()};
      }
      ++cur_;
      used_ = 0;
    }
  }
  void Reset() {
    cur_ = 0;
    used_ = 0;
    if (chunks_.size() > 8) chunks_.resize(8);
  }

 private:
  static constexpr std::size_t kChunk = std::size_t{1} << 20;
  std::vector<std::vector<std::uint8_t>> chunks_;
  std::size_t cur_ = 0;
  std::size_t used_ = 0;
};

}  // namespace log

class Replayer::Impl {
 public:
  using Op = log::Op;
  template <class Sim>
  using Overlay = log::Overlay<Sim>;
  using PayloadArena = log::PayloadArena;

  ReplayOptions opts;
  Env* env = nullptr;
  std::unique_ptr<LogReader> reader;  // null when replaying a checkpoint file alone
  LogState st;
  ReplayReport rep;
  std::uint64_t max_total = 0;
  std::uint64_t allocated = 0;
  Epoch base = 0;  // records of epochs <= base are already in st (checkpoint)

  std::vector<Op> group;
  std::vector<LogPageCreate> group_creates;
  std::vector<std::shared_ptr<TypeDescriptor>> group_types;
  std::vector<LogEdgeChange> group_edges;
  std::vector<LogRecompute> group_recomputes;
  PayloadArena arena;
  // The arena of the group the apply worker holds (swapped with `arena` when a group is handed
  // over: the views into it stay valid until the worker is drained).
  PayloadArena arena_in_flight;
  // Replay-recomputed pages (mmsb/graph.h, DerivedPolicy) of st.edges, and a recompute's input.
  log::ReplayRecompute recompute;
  // LogState::ReplicaHash() of st, kept from each group's changes once Replayer::ReplicaHash()
  // asked for it (state_hash.h); invalid until then, and after TakeState().
  log::ReplicaHashTracker tracker;
  std::vector<ByteRun> track_runs;
  log::ChangedRuns changed_runs;
  bool tainted = false;
  std::uint64_t damage_end = 0;  // end of the last damage in the group's file
  std::size_t group_file = ~std::size_t{0};
  std::size_t problems_seen = 0;
  std::vector<ReplayedEvent> pending_events;
  bool have_stash = false;
  LogCommit stash;
  std::uint64_t stash_offset = 0;
  std::size_t stash_file = 0;
  bool at_end = false;
  Status deferred;
  std::uint64_t next_progress = 0;

  const std::string& FileName(std::size_t i) const;

  // Problems the reader found since we last looked: copy them; an error in the file of the
  // current group may have eaten some of its records.
  void TakeReaderProblems(std::size_t file_index);

  void ClearGroup();

  void DropGroup(Epoch epoch, std::size_t file_index, std::uint64_t offset, std::string why);

  void DeliverEvents();

  // Reads records until a commit record: true with *commit set, false at the end of the log.
  // One entry, reused for every record (its members' buffers are kept; each record's decode sets
  // the members of its type, and the ones moved out below are reset).
  LogEntry entry;

  Expected<bool> ReadGroup(LogCommit* commit, std::uint64_t* commit_offset,
                           std::size_t* commit_file);

  // Checks the whole group against the state before changing anything. Returns the problem of
  // the first inconsistent record, if any. Chain mismatches are returned separately: salvage
  // applies them (an earlier epoch was dropped), strict refuses.
  struct Sim {
    bool live;
    std::uint64_t size;
    Epoch epoch;
    bool changed;
    ReplayedPage* page;  // the state's page, when the group did not create it
  };
  Overlay<Sim> overlay;  // Validate's scratch, reused across groups

  std::optional<LogProblem> Validate(const LogCommit& c, std::vector<LogProblem>* chain);

  // The recompute record group[at]: recomputes the replay-recomputed pages from the changes of
  // the deltas before it, as the bus's propagation did at that point of the commit.
  void Recompute(const LogCommit& c, std::size_t at);

  Status Apply(const LogCommit& c);

  // The deltas Apply has gathered for the worker (applied on this thread instead when the group
  // is small, when a non-delta record of the group needs the pages, or when no worker is used).
  std::vector<log::ApplyWorker::Delta> jobs;
  std::uint64_t job_bytes = 0;
  // LogReader::RetainMark() after the last applied group: what Drain() releases.
  std::uint64_t release_mark = 0;
  void ApplyJobsHere();
  // Waits for the group in flight and releases what the reader retained for it
  // (LogReaderOptions::retain_files).
  // Called before anything reads or changes a page: at each Apply, and before AdvanceTo, Step and
  // ApplyGroup return.
  void Drain();
  struct DrainOnExit {
    Impl* m;
    ~DrainOnExit() { m->Drain(); }
  };

  // Applies (or drops) the group that `c` closes. Errors only in strict mode.
  Status Close(const LogCommit& c, std::uint64_t offset, std::size_t file_index);

  Expected<Epoch> AdvanceTo(Epoch target);

  Expected<bool> Step();

  // Last: destroyed first, so it stops before the state, arenas and files its jobs point into.
  log::ApplyWorker worker;
};

}  // namespace mmsb
