// Replay-recomputed pages (mmsb/graph.h, DerivedPolicy::kRecomputeOnReplay): which children the
// log sink leaves the derived deltas of out, and the replay side that recomputes them the way the
// bus's propagation did (DependencyGraph::Recompute in graph/graph.cc). Both sides classify pages
// with ReplayRecomputedChildren, so they agree on every edge set. See docs/SerializationSpec.md
// ("recompute").
//
// Thread-compatible: one ReplayRecompute per Replayer.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "mmsb/delta.h"
#include "mmsb/graph.h"
#include "mmsb/replay.h"

namespace mmsb::log {

// The children whose every incoming edge is a passthrough or projection edge with policy
// kRecomputeOnReplay, in increasing id. `edges` must be sorted by (child, parent), the order
// ListEdges() and LogState::edges use. A child with any kLog or user edge is not one of them.
std::vector<PageId> ReplayRecomputedChildren(std::span<const EdgeInfo> edges);

// Empty when a kRecomputeOnReplay edge can be recomputed between pages of these sizes (the
// checks AddPassthroughEdge/AddProjectionEdge make), else what is wrong. Replay only trusts edges
// that pass this, since it copies bytes along them.
std::string CheckRecomputeEdge(const EdgeInfo& edge, std::uint64_t parent_size,
                               std::uint64_t child_size);

// Per page, the byte runs an epoch changed so far (runs may overlap and repeat).
using ChangedRuns = std::unordered_map<PageId, std::vector<ByteRun>>;

// The replay side: the replay-recomputed part of LogState::edges, rebuilt when the edges change.
class ReplayRecompute {
 public:
  // Call whenever LogState::edges changes (or the state is replaced).
  void Invalidate() { built_ = false; }

  // True when `page` has a replay-recomputed child in `st`'s graph: its changes are inputs to
  // Run. Builds the graph view if needed.
  bool Feeds(const LogState& st, PageId page);

  // One propagation, as commit() ran it after collecting the epoch's writes: every
  // replay-recomputed child of a page in `changed` is visited in height order (at most once); for
  // each of its edges, in parent id order, whose parent changed, the parent's changed runs
  // (intersected with a projection's source range) are copied from the parent's current bytes to
  // the child. The child's exactly changed bytes (against its bytes before the visit) are added to
  // `changed`, so its own replay-recomputed children see them, and it is stamped with `epoch`; a
  // visit that changes nothing cuts off. Returns the number of children whose bytes changed.
  std::uint32_t Run(LogState& st, Epoch epoch, ChangedRuns& changed);

 private:
  struct InEdge {
    PageId parent = kInvalidPageId;
    EdgeKind kind = EdgeKind::kPassthrough;
    Projection proj;
  };
  struct Child {
    PageId id = kInvalidPageId;
    int height = 0;
    std::vector<InEdge> in;       // by parent id
    std::uint64_t scheduled = 0;  // Run() round in which it was last queued
  };
  // One copy of a visit: `len` bytes from `parent` at `src` to the child at `dst`.
  struct Copy {
    const std::uint8_t* from = nullptr;
    std::uint32_t dst = 0;
    std::uint32_t len = 0;
  };

  void Build(const LogState& st);
  void Schedule(std::uint32_t c);
  // Visits children_[c]; returns true when its bytes changed.
  bool Visit(LogState& st, Epoch epoch, std::uint32_t c, ChangedRuns& changed);

  bool built_ = false;
  std::vector<Child> children_;
  std::unordered_map<PageId, std::vector<std::uint32_t>> feeds_;  // page -> children_ indices
  std::uint64_t round_ = 0;
  std::vector<std::vector<std::uint32_t>> buckets_;  // by height
  std::vector<Copy> copies_;
  std::vector<ByteRun> ranges_;
  std::vector<std::uint8_t> before_;
};

}  // namespace mmsb::log
