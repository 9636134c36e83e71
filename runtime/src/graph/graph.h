// DependencyGraph: nodes (pages), edges with recompute rules, heights, and the propagation pass
// that runs inside commit. See mmsb/graph.h for the user-facing contract.
//
// Owned by the Bus and always used under the bus mutex; only the per-node recompute and diff run
// on pool threads, each touching its own child page.
//
// Who writes a derived page (a page with in-edges), and when. While a commit propagates (from
// its cut, where every page's marks are taken, until the stages run) a derived page belongs to
// the runtime: it is written only by its own recompute, on the one thread that runs it (the
// commit thread or one pool worker; each node at most once per commit), and, when that recompute
// fails, by the discard that restores it from its twin (on the commit thread, once the failed
// node's batch is over). The program may write a derived page directly (those writes are
// collected and logged as the page's own), but not while a commit may be propagating: such a
// store races with the recompute and the discard, and either may overwrite it; a user function
// writes its own child only (mmsb/graph.h). The runtime relies on this where it writes a derived
// page's memory with plain stores and no lock: the copies of Recompute, the discard's restore
// (Bus::DiscardDerived) and the rollback's restore of live memory.
//
// Enforced in debug builds (NDEBUG unset, as in the ASan preset): a derived page that carries
// barrier marks when its recompute starts was written by something else since the cut, and the
// commit aborts naming the page (CommitServices::has_marks; GraphTest.
// ADerivedPageWrittenByAnotherNodesFunctionAbortsInDebugBuilds). Whatever a racing store does,
// the discard keeps live memory and the log in agreement: it takes the page's marks by atomic
// exchange before it restores (the barrier stores before it marks), never with a plain clear.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "mmsb/delta.h"
#include "mmsb/graph.h"
#include "mmsb/page.h"
#include "mmsb/stats.h"

#include "core/undo_log.h"
#include "graph/thread_pool.h"

namespace mmsb {

class DependencyGraph {
 public:
  // The bus's services the propagation needs.
  struct CommitServices {
    // Diffs `page` now against its twin (fully when `full`) into `*out` (empty on entry, left
    // empty when nothing changed), updates the twin and clears the page's shadow. Thread-safe
    // for distinct pages. When `undo` is set, the overwritten twin bytes are saved there first.
    // A plain function and its host (`diff_host`): called once per recomputed node, where a
    // std::function's call and a returned Delta's moves were a tenth of the node's cost.
    void (*diff_now)(const void* host, Page* page, bool full, UndoLog* undo, Delta* out) = nullptr;
    const void* diff_host = nullptr;
    // The commit thread's undo log (null when the commit cannot fail). Pool workers save into
    // their own logs, merged here.
    UndoLog* undo = nullptr;
    // Drops un-diffed writes to `page` (restores it from its twin) after a failed recompute. Runs
    // on the commit thread once no recompute runs (after the failed node's batch), so among the
    // runtime's writers it is the page's only one (see "Who writes a derived page" above).
    std::function<void(Page* page)> discard;
    // Debug builds (NDEBUG unset): whether `page` carries barrier marks, checked as each
    // recompute starts (null: not checked).
    bool (*has_marks)(const void* host, const Page* page) = nullptr;
    // The epoch's deltas: on entry the collected ones, which start the propagation; derived
    // deltas are appended as nodes finish (commit thread only). On failure the deltas derived
    // before it stay appended: `undo`'s derived saves name them by index, so the caller rolls
    // back before it drops them.
    std::vector<Delta>* out = nullptr;
  };

  // `threads`: 0 = one per hardware thread (at most 8), 1 = serial.
  explicit DependencyGraph(unsigned threads = 0);
  ~DependencyGraph();

  Status AddEdge(Page* parent, Page* child, EdgeKind kind, Projection proj, EdgeOptions options);
  Status SetUserFunction(Page* child, const std::vector<Page*>& parents, RecomputeFn fn,
                         EdgeOptions options);
  Status RemoveEdge(PageId parent, PageId child);
  void RemovePage(PageId page);  // drops the node and all its edges
  std::vector<EdgeInfo> ListEdges() const;
  int Height(PageId page) const;
  bool empty() const { return index_.empty(); }
  const PropagationStats& stats() const;
  const LatencyHistogram& latency() const { return latency_; }
  // Changed bytes of the deltas the last Propagate appended.
  std::uint64_t derived_bytes() const { return derived_bytes_; }

  // Recomputes every node downstream of the pages changed by `*services.out` (the epoch's deltas so
  // far) in height order, appending their deltas to it and moving each recomputed page to
  // `epoch`. Returns the first recompute error, naming the node; the caller then rolls the commit
  // back (the undo log restores the pages' bytes and epochs).
  Status Propagate(Epoch epoch, const CommitServices& services);

  // Work thresholds above which one height bucket is recomputed on the pool.
  static constexpr std::size_t kParallelMinNodes = 64;
  static constexpr std::size_t kParallelMinBytes = std::size_t{1} << 20;
  // Prefetch distances (in nodes) of the serial recompute loop.
  static constexpr std::size_t kPrefetchNodes = 24;
  static constexpr std::size_t kPrefetchPages = 16;
  static constexpr std::size_t kPrefetchNear = 8;
  static constexpr std::size_t kPrefetchChildren = 4;
  static constexpr std::size_t kPrefetchDeltas = 8;

 private:
  struct Edge {
    std::uint32_t parent;
    std::uint32_t child;
    EdgeKind kind;
    Projection proj;
    DerivedPolicy policy;
  };
  // A node is split by how often, and when, the propagation reads it (docs/Performance.md,
  // "Propagation's node layout"): the visit is bound by memory traffic, so each line a node costs
  // is a few nanoseconds at 100k nodes, and a line written is a line written back.
  // - `hot_[n]` (half a line, read-only while propagating) holds what a visit of a node with at
  //   most two children and at most one user parent reads: its page, its first children and its
  //   single user parent.
  // - `sched_[n]` holds what scheduling the node reads and writes (its id, height and the round it
  //   was queued in): Schedule touches this, not the hot line, of each child.
  // - `changed_[n]` holds this round's deltas of the node's page, written when the node (or a
  //   collected page) changes and read only by children with copying edges or several parents.
  // `nodes_[n]` holds the edge lists (authoritative) and `fns_[n]` the user function (and
  // `plain_fns_[n]` its pointer, when it is a plain function). The hot line
  // mirrors the first children and the single user parent; SyncHot(n) re-derives the mirror after
  // every edge change of n.
  struct alignas(32) NodeHot {
    Page* page = nullptr;
    // The user function's parent page when it has exactly one (kOneUserParent): the span the
    // function is called with, without reading nodes_[n].
    const Page* user_parent = nullptr;
    std::uint32_t child[2] = {0, 0};  // the first children, in nodes_[n].children's order
    std::uint8_t child_count = 0;     // children mirrored in `child` (all unless kManyChildren)
    std::uint8_t flags = 0;
  };
  static_assert(sizeof(NodeHot) == 32, "two nodes per cache line on the visit's path");
  struct NodeSched {
    std::uint64_t dirty_stamp = 0;  // propagation round in which the node was last queued
    PageId id = kInvalidPageId;
    int height = 0;
  };
  struct NodeChanged {
    // This round's deltas of the node's page (valid when round == round_), as indices into the
    // epoch's deltas (CommitServices::out).
    std::uint64_t round = 0;
    std::uint32_t delta[2] = {0, 0};
    std::uint32_t count = 0;
  };
  static constexpr std::uint8_t kLive = 1;
  static constexpr std::uint8_t kUserFn = 2;          // fns_[n] is set
  static constexpr std::uint8_t kCopyIn = 4;          // some in-edge copies bytes
  static constexpr std::uint8_t kManyChildren = 8;    // more than two children: read nodes_[n]
  static constexpr std::uint8_t kOneUserParent = 16;  // user_parent is the user function's span
  static constexpr std::uint8_t kPlainFn = 32;        // plain_fns_[n] is fns_[n]'s function
  struct Node {
    std::vector<std::uint32_t> children;  // node indices, one per out-edge
    std::vector<std::uint32_t> in_edges;  // indices into edges_, by parent page id
    // In-edges that copy bytes (passthrough, projection). Zero means every in-edge is a user
    // edge, so a scheduled node's recompute neither walks in_edges nor checks its parents.
    std::uint32_t copy_in_edges = 0;
    std::vector<std::uint32_t> user_parents;
    // The user parents' pages, in user_parents' order: the span the user function is called
    // with (no copy, no parent node read per recompute).
    std::vector<const Page*> user_parent_pages;
    mutable std::uint64_t visit_stamp = 0;  // Reaches() search in which the node was visited
  };
  // One node of a height bucket recomputed on the pool.
  struct Work {
    std::uint32_t node = 0;
    Delta delta;
    UndoLog undo;
    bool failed = false;
    Status status;  // set when failed
  };

  std::uint32_t NodeFor(Page* page);
  bool Reaches(std::uint32_t from, std::uint32_t target) const;
  void DropEdge(std::uint32_t e);
  void MaybeDropNode(std::uint32_t n);
  // Recomputes and diffs `node` into `*out`; false when its user function failed, with the
  // error (naming the node) in `*error`. (A bool, not a Status: an OK Status is built and dropped
  // per node otherwise.)
  bool Recompute(const CommitServices& services, std::uint32_t node, UndoLog* undo, Delta* out,
                 Status* error);
  void Finished(std::uint32_t node, bool failed_before, Epoch epoch, std::vector<Delta>& out);
  void MarkChanged(std::uint32_t node, std::uint32_t delta);
  void SyncHot(std::uint32_t node);
  // The node's children: the hot mirror when it holds them all.
  std::span<const std::uint32_t> Children(std::uint32_t node) const {
    const NodeHot& h = hot_[node];
    if ((h.flags & kManyChildren) != 0) return nodes_[node].children;
    return {h.child, h.child_count};
  }
  void Schedule(std::uint32_t node);
  void UpdateHeights(std::uint32_t start);

  std::vector<NodeHot> hot_;
  std::vector<NodeSched> sched_;
  std::vector<NodeChanged> changed_;
  std::vector<Node> nodes_;
  std::vector<RecomputeFn> fns_;
  // The user function when fns_[n] holds a plain function pointer (kPlainFn): called directly,
  // without the std::function's call, and read from an 8-byte slot instead of its 32 bytes.
  // SyncHot re-derives it (and the flag) after every change of fns_[n].
  using PlainFn = Status (*)(std::span<const Page* const>, Page&);
  std::vector<PlainFn> plain_fns_;
  std::vector<std::uint32_t> free_nodes_;
  std::unordered_map<PageId, std::uint32_t> index_;
  std::vector<Edge> edges_;
  std::vector<std::uint32_t> free_edges_;
  std::vector<bool> edge_live_;

  // A scheduled node with its page id, so a bucket sorts without touching the nodes.
  struct Queued {
    // Built in place field by field (Schedule): no zeroing first, no temporary to copy.
    Queued(PageId page_id, std::uint32_t node_index) : id(page_id), node(node_index) {}
    PageId id;
    std::uint32_t node;
  };
  // Propagation scratch: bucket queue by height.
  std::vector<std::vector<Queued>> buckets_;
  std::vector<Work> works_;      // one height bucket's work, reused
  std::vector<Queued> current_;  // the bucket being recomputed

  std::uint64_t round_ = 0;
  std::uint64_t derived_bytes_ = 0;
  mutable std::uint64_t visit_round_ = 0;
  unsigned threads_ = 1;
  std::unique_ptr<ThreadPool> pool_;
  mutable PropagationStats stats_;
  mutable bool depth_stale_ = false;
  LatencyHistogram latency_;
};

}  // namespace mmsb
