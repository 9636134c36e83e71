// The commit pipeline's extension points.
//
// mmsb::commit() collects every touched and escaped page, computes exact deltas, advances the
// epoch, and hands one CommitBatch to each stage and sink, in registration order:
//   1. CommitStages run first and may change pages (through barriers) while the batch is open;
//      their changes are diffed and appended to the same epoch (propagation plugs in here).
//   2. CommitSinks then observe the final batch (the log, GPU mirrors and event dispatch).
// A batch and everything it points to is valid only during the call.
//
// Thread-safety: stages and sinks are called under the commit lock, one commit at a time, while
// other threads may run (transactions that began after the commit's cut, plain stores). They must
// not call commit() themselves. AddSink/RemoveSink may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mmsb/delta.h"
#include "mmsb/events.h"
#include "mmsb/graph.h"
#include "mmsb/provenance.h"
#include "mmsb/status.h"
#include "mmsb/type_desc.h"
#include "mmsb/types.h"

namespace mmsb {

class Page;

struct PageCreatedRecord {
  PageId id = kInvalidPageId;
  std::uint64_t size = 0;
  Location location = Location::kCpu;
  const TypeDescriptor* type = nullptr;
  std::string name;
  bool is_static = false;
};

// A write the tracked path missed, found by verify mode or sampled verification.
struct VerifyMiss {
  PageId page = kInvalidPageId;
  std::string page_name;
  std::uint32_t offset = 0;  // first missed byte of a run
  std::uint32_t length = 0;  // bytes in the run
  std::string field;         // "Particles.x[12]" when a type descriptor resolves it
  // The epoch window of the unmarked store: after commit `after_epoch`'s cut and before commit
  // `epoch`'s (the commit that found it).
  Epoch after_epoch = 0;
  Epoch epoch = 0;
  bool sampled = false;  // found by sampled verification (not verify mode)
};

struct CommitBatch {
  Epoch epoch = 0;               // the epoch this commit produces
  std::uint64_t unix_nanos = 0;  // wall-clock time of the commit
  // Pages created since the previous commit and still live, and pages an earlier commit saw that
  // were freed since. A page created and freed between two commits appears in neither.
  std::span<const PageCreatedRecord> created;
  std::span<const PageId> freed;
  std::span<const Delta> deltas;  // non-empty deltas, at most one per page per round
  // deltas[derived_begin, derived_end) are the ones propagation derived for graph children (see
  // mmsb/graph.h); those before were collected from the epoch's writes, those after come from
  // commit stages.
  std::size_t derived_begin = 0;
  std::size_t derived_end = 0;
  std::span<const VerifyMiss> verify_misses;
  // Every live page after this commit, in no particular order. Other threads may be storing to
  // a page's live bytes during OnCommit: a sink that needs a page's state at `epoch` (the log, for
  // the baseline of pages it has not seen) reads CommittedImage(page) instead.
  std::span<Page* const> live_pages;
  // The dependency graph's edges after this commit, in ListEdges() order, and a counter that
  // changes whenever the edge set changed; a sink compares it with the last value it saw.
  std::span<const EdgeInfo> edges;
  std::uint64_t graph_version = 0;
  // The commit's events (see events.h); empty unless a subscriber or a sink wants them.
  std::span<const Event> events;
  // Finds a registered type descriptor by name during the call (the registry cannot be queried
  // through FindType() from a sink: the commit lock is held). Used for nested record types.
  TypeLookup find_type;
  // What committed: the transactions (or commit() calls) this epoch carries (mmsb/provenance.h).
  std::span<const CommitProvenance> transactions;
};

class CommitSink {
 public:
  virtual ~CommitSink() = default;
  virtual const char* name() const = 0;
  // Called once per commit with the final batch. An error is returned from commit() and counted;
  // in-memory state has already advanced to the new epoch.
  virtual Status OnCommit(const CommitBatch& batch) = 0;
  // Called after the commit lock is released, on the thread that called commit(), for every
  // commit whose batch reached OnCommit. A durable log waits here until `epoch` is on disk, so
  // concurrent commits share one write and one fsync (group commit). An error is returned from
  // commit() (the epoch has advanced in memory either way).
  virtual Status AfterCommit(Epoch epoch) { return Status::Ok(); }
  // Events the sink raised in AfterCommit (e.g. a log's checkpoint-written event). The bus calls
  // this right after AfterCommit and delivers them after the commit's own events.
  virtual std::vector<Event> TakeEvents() { return {}; }
  // True when the sink needs CommitBatch::events (e.g. a log that records events).
  virtual bool wants_events() const { return false; }
  // Makes everything the sink has accepted durable. The bus calls it when the process exits (an
  // atexit handler registered by start()) and after every commit that runs later, from a static
  // destructor or another atexit handler (docs/API.md, "MMSB in static destructors").
  virtual Status Flush() { return Status::Ok(); }
};

class CommitStage {
 public:
  virtual ~CommitStage() = default;
  virtual const char* name() const = 0;
  // Sees the deltas so far. May write pages through barriers; the runtime diffs those writes
  // after the stage returns and adds them to the batch. An error aborts the commit's sinks and is
  // returned from commit().
  virtual Status Process(const CommitBatch& batch) = 0;
};

// A page's bytes as of the last commit (its twin), for stages and sinks during a commit; zeros
// before the page's first commit. Valid until the next commit.
std::span<const std::uint8_t> CommittedImage(const Page* page);

// Sinks and stages are shared: the runtime keeps a reference until removed or stop().
Status AddSink(std::shared_ptr<CommitSink> sink);
Status RemoveSink(const CommitSink* sink);
Status AddStage(std::shared_ptr<CommitStage> stage);
Status RemoveStage(const CommitStage* stage);

}  // namespace mmsb
