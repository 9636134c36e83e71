// Dependency graph: pages derived from other pages, recomputed inside commit().
//
// An edge parent -> child says "child is computed from parent". Three kinds:
//   - passthrough: the child mirrors the parent byte for byte (sizes must match);
//   - projection:  bytes [src_offset, src_offset+length) of the parent land at dst_offset of the
//                  child (a field or range projection);
//   - user:        a function (const parents..., child&) recomputes the child from all its user
//                  parents, in the order they were given.
// Propagation runs inside commit(), after the epoch's deltas are collected: dirty children are
// visited in height order (a bucket queue, as in Jane Street's Incremental), each at most once per
// commit however many parents changed; a recompute that produces no delta cuts off propagation
// below it. Recomputed changes are exact deltas of the same epoch, so they reach the log and the
// GPU like any other. Independent nodes (same height) are recomputed on a small thread pool when
// the batch is large enough to pay for it.
//
// When several edges of one child write the same child byte in one commit, their copies are
// applied in increasing parent page id (the last one wins): the order ListEdges() and the log
// list them in, so a replay that recomputes the child applies them in the same order.
//
// Derived policy (EdgeOptions::policy). By default a child's recomputed changes are logged like
// any other delta. A child whose every incoming edge is a passthrough or projection edge with
// DerivedPolicy::kRecomputeOnReplay is *replay-recomputed*: the log sink leaves out the deltas
// propagation derives for it (its creation, type and edges, and its own direct writes, are still
// logged) and replay recomputes them from its parents exactly as commit() did, so the log is
// smaller and replay stays bit-identical. A child with any kLog (or user) incoming edge is logged.
// User edges cannot be recomputed on replay: replay runs offline from the log and a user function
// is code, not data; AddUserEdges rejects kRecomputeOnReplay with InvalidArgument.
//
// Failure: if any recompute fails, the whole commit is rolled back: derived pages return to their
// bytes at the previous epoch, the epoch does not advance, no sink sees the batch, and commit()
// returns the error naming the failing node. The program's own writes stay in its memory (a
// failed commit never writes over memory other threads may be storing to) and the next commit
// logs them.
//
// Thread-safety: edge mutation may be called from any thread, but not from inside a recompute.
// User functions may run concurrently with each other (for different children) and must only
// write their own child page. While a commit propagates, a derived page belongs to the runtime:
// the program may write one directly (those writes are logged as the page's own), but not while
// a commit may be running, or the recompute may overwrite the store. Debug builds abort a commit
// that finds a derived page written by anything but its recompute, naming the page.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "mmsb/status.h"
#include "mmsb/types.h"

namespace mmsb {

class Page;

enum class EdgeKind : std::uint8_t { kPassthrough = 0, kProjection = 1, kUser = 2 };
// "passthrough", "projection", "user"; "unknown" otherwise (the names the CLI and JSON use).
const char* EdgeKindName(EdgeKind k);

// Whether a derived page's deltas are logged (default) or recomputed on replay instead (see the
// file comment: it applies to a child only when all its incoming edges ask for it, and never to
// user edges).
enum class DerivedPolicy : std::uint8_t { kLog = 0, kRecomputeOnReplay = 1 };

struct Projection {
  std::uint32_t src_offset = 0;
  std::uint32_t length = 0;
  std::uint32_t dst_offset = 0;
};

// parents are in registration order; the child's bytes may be read and must be written through
// barriers or plainly (the child is diffed in full after the call, so either is exact).
using RecomputeFn = std::function<Status(std::span<const Page* const> parents, Page& child)>;

struct EdgeOptions {
  DerivedPolicy policy = DerivedPolicy::kLog;
};

// A persisted description of an edge (user functions are identified by name only).
struct EdgeInfo {
  PageId parent = kInvalidPageId;
  PageId child = kInvalidPageId;
  EdgeKind kind = EdgeKind::kPassthrough;
  Projection projection;
  DerivedPolicy policy = DerivedPolicy::kLog;
};

// Each returns GraphCycle (graph unchanged) when the edge would close a cycle, NotFound for an
// unknown page, InvalidArgument for a bad projection, mismatched passthrough sizes or an unknown
// policy, and AlreadyExists when the same parent -> child edge exists.
Status AddPassthroughEdge(PageId parent, PageId child, EdgeOptions options = {});
Status AddProjectionEdge(PageId parent, PageId child, Projection projection,
                         EdgeOptions options = {});
// Registers `fn` as the child's recompute over `parents` (one user function per child).
// options.policy must be kLog: kRecomputeOnReplay is InvalidArgument (graph unchanged), since an
// offline replay cannot run `fn`.
Status AddUserEdges(std::span<const PageId> parents, PageId child, RecomputeFn fn,
                    EdgeOptions options = {});
// Removes one edge; NotFound when absent. Freeing a page removes its edges.
Status RemoveEdge(PageId parent, PageId child);

std::vector<EdgeInfo> ListEdges();
// Height of a node: 0 for pages with no parents, else 1 + max(parent heights). -1 if not in graph.
int NodeHeight(PageId page);

struct PropagationStats {
  std::uint64_t propagations = 0;  // commits that recomputed at least one node
  std::uint64_t nodes_recomputed = 0;
  std::uint64_t cutoffs = 0;           // recomputes that produced no delta
  std::uint64_t parallel_batches = 0;  // height buckets recomputed on the pool
  std::uint32_t graph_depth = 0;       // max height
  std::uint64_t nodes = 0;
  std::uint64_t edges = 0;
};

}  // namespace mmsb
