#include "graph/graph.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <span>

#include <fmt/format.h>

#include "mmsb/barrier.h"
#include "mmsb/status.h"

#include "core/clock.h"
#include "core/page_record.h"
namespace mmsb {
namespace {

std::string NodeName(const Page* p) {
  return p->name().empty() ? fmt::format("page {}", p->id())
                           : fmt::format("page {} ('{}')", p->id(), p->name());
}

}  // namespace

DependencyGraph::DependencyGraph(unsigned threads) {
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  threads_ = threads == 0 ? std::min(hw, 8u) : threads;
}
DependencyGraph::~DependencyGraph() = default;

std::uint32_t DependencyGraph::NodeFor(Page* page) {
  auto it = index_.find(page->id());
  if (it != index_.end()) return it->second;
  std::uint32_t n;
  if (!free_nodes_.empty()) {
    n = free_nodes_.back();
    free_nodes_.pop_back();
    hot_[n] = NodeHot{};
    sched_[n] = NodeSched{};
    changed_[n] = NodeChanged{};
    nodes_[n] = Node{};
    fns_[n] = nullptr;
    plain_fns_[n] = nullptr;
  } else {
    n = static_cast<std::uint32_t>(nodes_.size());
    hot_.emplace_back();
    sched_.emplace_back();
    changed_.emplace_back();
    nodes_.emplace_back();
    fns_.emplace_back();
    plain_fns_.emplace_back();
  }
  hot_[n].page = page;
  sched_[n].id = page->id();
  if (buckets_.empty()) buckets_.resize(1);  // a new node's height is 0 (see Schedule)
  hot_[n].flags = kLive;
  index_.emplace(page->id(), n);
  ++stats_.nodes;
  return n;
}

void DependencyGraph::MaybeDropNode(std::uint32_t n) {
  const Node& node = nodes_[n];
  if ((hot_[n].flags & kLive) == 0 || !node.in_edges.empty() || !node.children.empty() || fns_[n])
    return;
  index_.erase(sched_[n].id);
  hot_[n] = NodeHot{};
  sched_[n] = NodeSched{};
  changed_[n] = NodeChanged{};
  nodes_[n] = Node{};
  free_nodes_.push_back(n);
  --stats_.nodes;
}

// Heights increase strictly along edges, so a path from `from` to `target` only visits nodes no
// higher than `target`: everything above is pruned (Incremental's cycle check).
bool DependencyGraph::Reaches(std::uint32_t from, std::uint32_t target) const {
  const int limit = sched_[target].height;
  std::vector<std::uint32_t> stack{from};
  const std::uint64_t stamp = ++visit_round_;  // visited marks without an O(nodes) clear
  while (!stack.empty()) {
    const std::uint32_t n = stack.back();
    stack.pop_back();
    if (n == target) return true;
    if (nodes_[n].visit_stamp == stamp || sched_[n].height > limit) continue;
    nodes_[n].visit_stamp = stamp;
    for (std::uint32_t c : nodes_[n].children) stack.push_back(c);
  }
  return false;
}

// Re-derives heights downstream of `start` (height = 1 + max parent height, 0 for roots).
void DependencyGraph::UpdateHeights(std::uint32_t start) {
  std::deque<std::uint32_t> work{start};
  while (!work.empty()) {
    const std::uint32_t n = work.front();
    work.pop_front();
    int h = 0;
    for (std::uint32_t e : nodes_[n].in_edges) h = std::max(h, sched_[edges_[e].parent].height + 1);
    if (h == sched_[n].height && n != start) continue;
    // The depth is kept exact on increase; a decrease of a node at the maximum makes it stale,
    // recomputed when stats are read (a scan per edge change would make building O(n^2)).
    if (h > static_cast<int>(stats_.graph_depth)) {
      stats_.graph_depth = static_cast<std::uint32_t>(h);
    } else if (h < sched_[n].height && sched_[n].height == static_cast<int>(stats_.graph_depth)) {
      depth_stale_ = true;
    }
    sched_[n].height = h;
    // Schedule's invariant: a bucket for every node's height, made here rather than per visit.
    if (buckets_.size() <= static_cast<std::size_t>(h)) buckets_.resize(h + 1);
    for (std::uint32_t c : nodes_[n].children) work.push_back(c);
  }
}

const PropagationStats& DependencyGraph::stats() const {
  if (depth_stale_) {
    int depth = 0;
    for (std::size_t n = 0; n < hot_.size(); ++n) {
      if ((hot_[n].flags & kLive) != 0) depth = std::max(depth, sched_[n].height);
    }
    stats_.graph_depth = static_cast<std::uint32_t>(depth);
    depth_stale_ = false;
  }
  return stats_;
}

Status DependencyGraph::AddEdge(Page* parent, Page* child, EdgeKind kind, Projection proj,
                                EdgeOptions options) {
  if (options.policy != DerivedPolicy::kLog &&
      options.policy != DerivedPolicy::kRecomputeOnReplay) {
    return InvalidArgument(fmt::format("edge {} -> {}: unknown derived policy {}", NodeName(parent),
                                       NodeName(child), static_cast<int>(options.policy)));
  }
  if (parent == child)
    return GraphCycle(fmt::format("edge {} -> itself is a cycle", NodeName(parent)));
  if (kind == EdgeKind::kPassthrough && parent->size() != child->size()) {
    return InvalidArgument(
        fmt::format("passthrough edge needs equal sizes: {} has {} bytes, {} has {}",
                    NodeName(parent), parent->size(), NodeName(child), child->size()));
  }
  if (kind == EdgeKind::kProjection &&
      (std::uint64_t{proj.src_offset} + proj.length > parent->size() ||
       std::uint64_t{proj.dst_offset} + proj.length > child->size() || proj.length == 0)) {
    return InvalidArgument(
        fmt::format("projection [{}, +{}) -> +{} does not fit {} ({} B) -> {} ({} B)",
                    proj.src_offset, proj.length, proj.dst_offset, NodeName(parent), parent->size(),
                    NodeName(child), child->size()));
  }
  const bool had_parent = index_.count(parent->id()) != 0;
  const bool had_child = index_.count(child->id()) != 0;
  const std::uint32_t p = NodeFor(parent);
  const std::uint32_t c = NodeFor(child);
  auto undo_nodes = [&] {
    if (!had_child) MaybeDropNode(c);
    if (!had_parent) MaybeDropNode(p);
  };
  for (std::uint32_t e : nodes_[c].in_edges) {
    if (edges_[e].parent == p && (kind != EdgeKind::kUser || edges_[e].kind == EdgeKind::kUser)) {
      undo_nodes();
      return AlreadyExists(
          fmt::format("edge {} -> {} already exists", NodeName(parent), NodeName(child)));
    }
  }
  if (sched_[c].height <= sched_[p].height && Reaches(c, p)) {
    undo_nodes();
    return GraphCycle(
        fmt::format("edge {} -> {} would close a cycle", NodeName(parent), NodeName(child)));
  }
  std::uint32_t e;
  Edge edge{p, c, kind, proj, options.policy};
  if (!free_edges_.empty()) {
    e = free_edges_.back();
    free_edges_.pop_back();
    edges_[e] = edge;
    edge_live_[e] = true;
  } else {
    e = static_cast<std::uint32_t>(edges_.size());
    edges_.push_back(edge);
    edge_live_.push_back(true);
  }
  // In-edges stay in parent page id order: Recompute copies in this order, and replay, which
  // only knows the edges as the log lists them (by parent id), must copy in the same one.
  std::vector<std::uint32_t>& in = nodes_[c].in_edges;
  const PageId parent_id = parent->id();
  in.insert(std::upper_bound(
                in.begin(), in.end(), parent_id,
                [&](PageId id, std::uint32_t x) { return id < sched_[edges_[x].parent].id; }),
            e);
  nodes_[p].children.push_back(c);
  if (kind != EdgeKind::kUser) ++nodes_[c].copy_in_edges;
  SyncHot(p);
  SyncHot(c);
  ++stats_.edges;
  if (sched_[c].height <= sched_[p].height) UpdateHeights(c);
  stats_.graph_depth = std::max<std::uint32_t>(stats_.graph_depth, sched_[c].height);
  return Status::Ok();
}

Status DependencyGraph::SetUserFunction(Page* child, const std::vector<Page*>& parents,
                                        RecomputeFn fn, EdgeOptions options) {
  if (!fn) return InvalidArgument("user recompute function is empty");
  if (options.policy == DerivedPolicy::kRecomputeOnReplay) {
    return InvalidArgument(
        fmt::format("user edges into {} cannot use DerivedPolicy::kRecomputeOnReplay: replay runs "
                    "offline from the log and "
                    "cannot call a user function (it is code, not data), so a user-computed page's "
                    "deltas must be logged "
                    "(DerivedPolicy::kLog)",
                    NodeName(child)));
  }
  if (parents.empty()) return InvalidArgument("a user edge needs at least one parent");
  auto it = index_.find(child->id());
  if (it != index_.end() && fns_[it->second]) {
    return AlreadyExists(fmt::format("{} already has a user recompute function", NodeName(child)));
  }
  std::vector<std::pair<PageId, PageId>> added;
  for (Page* parent : parents) {
    Status s = AddEdge(parent, child, EdgeKind::kUser, {}, options);
    if (!s.ok()) {
      for (auto& [pp, cc] : added) (void)RemoveEdge(pp, cc);  // leave the graph unchanged
      return s;
    }
    added.emplace_back(parent->id(), child->id());
  }
  const std::uint32_t c = index_.at(child->id());
  Node& node = nodes_[c];
  fns_[c] = std::move(fn);
  node.user_parents.clear();
  node.user_parent_pages.clear();
  for (Page* parent : parents) {
    node.user_parents.push_back(index_.at(parent->id()));
    node.user_parent_pages.push_back(parent);
  }
  SyncHot(c);
  return Status::Ok();
}

void DependencyGraph::DropEdge(std::uint32_t e) {
  const Edge edge = edges_[e];
  Node& child = nodes_[edge.child];
  Node& parent = nodes_[edge.parent];
  child.in_edges.erase(std::find(child.in_edges.begin(), child.in_edges.end(), e));
  parent.children.erase(std::find(parent.children.begin(), parent.children.end(), edge.child));
  if (edge.kind == EdgeKind::kUser) {
    auto& up = child.user_parents;
    if (auto it = std::find(up.begin(), up.end(), edge.parent); it != up.end()) {
      child.user_parent_pages.erase(child.user_parent_pages.begin() + (it - up.begin()));
      up.erase(it);
    }
    if (up.empty()) fns_[edge.child] = nullptr;
  } else {
    --child.copy_in_edges;
  }
  SyncHot(edge.child);
  SyncHot(edge.parent);
  edge_live_[e] = false;
  free_edges_.push_back(e);
  --stats_.edges;
}

Status DependencyGraph::RemoveEdge(PageId parent, PageId child) {
  auto pi = index_.find(parent);
  auto ci = index_.find(child);
  if (pi == index_.end() || ci == index_.end()) {
    return NotFound(fmt::format("no edge page {} -> page {}", parent, child));
  }
  const std::uint32_t p = pi->second, c = ci->second;
  for (std::uint32_t e : nodes_[c].in_edges) {
    if (edges_[e].parent == p) {
      DropEdge(e);
      UpdateHeights(c);
      MaybeDropNode(c);
      MaybeDropNode(p);
      return Status::Ok();
    }
  }
  return NotFound(fmt::format("no edge page {} -> page {}", parent, child));
}

void DependencyGraph::RemovePage(PageId page) {
  auto it = index_.find(page);
  if (it == index_.end()) return;
  const std::uint32_t n = it->second;
  std::vector<std::uint32_t> touched;
  while (!nodes_[n].in_edges.empty()) {
    touched.push_back(edges_[nodes_[n].in_edges.back()].parent);
    DropEdge(nodes_[n].in_edges.back());
  }
  while (!nodes_[n].children.empty()) {
    const std::uint32_t c = nodes_[n].children.back();
    for (std::uint32_t e : nodes_[c].in_edges) {
      if (edges_[e].parent == n) {
        DropEdge(e);
        break;
      }
    }
    touched.push_back(c);
  }
  fns_[n] = nullptr;
  SyncHot(n);
  if (sched_[n].height == static_cast<int>(stats_.graph_depth)) depth_stale_ = true;
  MaybeDropNode(n);
  for (std::uint32_t t : touched) {
    if ((hot_[t].flags & kLive) == 0) continue;
    UpdateHeights(t);
    MaybeDropNode(t);
  }
}

std::vector<EdgeInfo> DependencyGraph::ListEdges() const {
  std::vector<EdgeInfo> out;
  for (std::size_t e = 0; e < edges_.size(); ++e) {
    if (!edge_live_[e]) continue;
    const Edge& x = edges_[e];
    out.push_back({sched_[x.parent].id, sched_[x.child].id, x.kind, x.proj, x.policy});
  }
  std::sort(out.begin(), out.end(), [](const EdgeInfo& a, const EdgeInfo& b) {
    return std::tie(a.child, a.parent) < std::tie(b.child, b.parent);
  });
  return out;
}

int DependencyGraph::Height(PageId page) const {
  auto it = index_.find(page);
  return it == index_.end() ? -1 : sched_[it->second].height;
}

void DependencyGraph::SyncHot(std::uint32_t node) {
  NodeHot& h = hot_[node];
  const Node& n = nodes_[node];
  h.flags &= kLive;
  if (fns_[node]) h.flags |= kUserFn;
  const PlainFn* plain = fns_[node].target<PlainFn>();
  plain_fns_[node] = plain != nullptr ? *plain : nullptr;
  if (plain_fns_[node] != nullptr) h.flags |= kPlainFn;
  if (n.copy_in_edges != 0) h.flags |= kCopyIn;
  const std::size_t kids = n.children.size();
  if (kids > std::size(h.child)) h.flags |= kManyChildren;
  h.child_count = static_cast<std::uint8_t>(std::min(kids, std::size(h.child)));
  for (std::size_t i = 0; i < std::size(h.child); ++i) h.child[i] = i < kids ? n.children[i] : 0;
  h.user_parent = nullptr;
  if (n.user_parent_pages.size() == 1) {
    h.flags |= kOneUserParent;
    h.user_parent = n.user_parent_pages[0];
  }
}

[[gnu::always_inline]] inline void DependencyGraph::Schedule(std::uint32_t node) {
  NodeSched& n = sched_[node];
  if (n.dirty_stamp == round_) return;  // at most once per commit
  n.dirty_stamp = round_;
  // buckets_ has a bucket for every node's height (NodeFor, UpdateHeights): propagation never
  // grows it, so the bucket being walked stays in place.
#ifndef NDEBUG
  MMSB_CHECK(static_cast<std::size_t>(n.height) < buckets_.size());
#endif
  buckets_[n.height].emplace_back(n.id, node);
}

// Runs on the commit thread or a pool thread; touches only the work's own child page.
[[gnu::always_inline]] inline bool DependencyGraph::Recompute(const CommitServices& services,
                                                              std::uint32_t node, UndoLog* undo,
                                                              Delta* out, Status* error) {
  const NodeHot& n = hot_[node];
  Page* child = n.page;
#ifndef NDEBUG
  // graph.h, "Who writes a derived page": the cut took every mark, and nothing but this recompute
  // writes `child` until it has been diffed.
  if (services.has_marks != nullptr && services.has_marks(services.diff_host, child)) {
    AbortWithStatus(
        FailedPrecondition(fmt::format(
            "derived {} was written during the commit's propagation by something other than its "
            "recompute: a program store racing with commit(), or another node's user function "
            "(a derived page belongs to the runtime while a commit propagates; mmsb/graph.h)",
            NodeName(child))),
        "propagation");
  }
#endif
  const std::vector<Delta>& deltas = *services.out;
  // A node with user edges only has nothing to copy (and need not read its edges).
  if ((n.flags & kCopyIn) != 0) {
    for (std::uint32_t e : nodes_[node].in_edges) {
      const Edge& edge = edges_[e];
      if (edge.kind == EdgeKind::kUser) continue;
      const NodeChanged& pn = changed_[edge.parent];
      if (pn.round != round_) continue;
      const Page* parent = hot_[edge.parent].page;
      for (std::uint32_t k = 0; k < pn.count; ++k) {
        deltas[pn.delta[k]].ForEachRun(
            [&](std::uint32_t off, std::uint32_t length, const std::uint8_t*) {
              std::uint32_t src = off, len = length, dst = off;
              if (edge.kind == EdgeKind::kProjection) {
                const std::uint32_t lo = std::max(off, edge.proj.src_offset);
                const std::uint32_t hi =
                    std::min(off + length, edge.proj.src_offset + edge.proj.length);
                if (lo >= hi) return;
                src = lo;
                len = hi - lo;
                dst = edge.proj.dst_offset + (lo - edge.proj.src_offset);
              }
              std::memcpy(rt::w(child->data() + dst, len), parent->data() + src, len);
            });
      }
    }
  }
  bool full = false;
  if ((n.flags & kUserFn) != 0) {
    // A node is scheduled only by a parent that changed this round (Propagate, Finished). When
    // all its in-edges are user edges, that parent is one of user_parents: no need to look.
    bool any = (n.flags & kCopyIn) == 0;
    if (!any) {
      for (std::uint32_t up : nodes_[node].user_parents) {
        if (changed_[up].round == round_) {
          any = true;
          break;
        }
      }
    }
    if (any) {
      const std::span<const Page* const> parents =
          (n.flags & kOneUserParent) != 0
              ? std::span<const Page* const>(&n.user_parent, 1)
              : std::span<const Page* const>(nodes_[node].user_parent_pages);
      Status st = (n.flags & kPlainFn) != 0 ? plain_fns_[node](parents, *child)
                                            : fns_[node](parents, *child);
      if (!st.ok()) {
        *error = st.WithContext(fmt::format("recompute of {} failed", NodeName(child)));
        return false;
      }
      full = true;  // user code may write without barriers: diff the whole child
    }
  }
  services.diff_now(services.diff_host, child, full, undo, out);
  return true;
}

// After a node's recompute: count it, keep its delta (already out.back()) or cut off.
[[gnu::always_inline]] inline void DependencyGraph::Finished(std::uint32_t node, bool failed_before,
                                                             Epoch epoch, std::vector<Delta>& out) {
  ++stats_.nodes_recomputed;
  if (out.back().empty()) {
    ++stats_.cutoffs;  // nothing changed: children are not scheduled from here
    out.pop_back();
    return;
  }
  derived_bytes_ += out.back().changed_bytes();
  Page* page = hot_[node].page;
  PageRecord& rec = RecOf(*page);
  rec.epoch_ = epoch;  // a failed commit's undo log restores it
  rec.maybe_nonzero = true;
  MarkChanged(node, static_cast<std::uint32_t>(out.size() - 1));
  if (!failed_before) {
    for (std::uint32_t c : Children(node)) Schedule(c);
  }
}

[[gnu::always_inline]] inline void DependencyGraph::MarkChanged(std::uint32_t node,
                                                                std::uint32_t delta) {
  NodeChanged& n = changed_[node];
  if (n.round != round_) {
    n.round = round_;
    n.count = 0;
  }
  // A page has at most one delta from collection and one from its own recompute.
  MMSB_CHECK(n.count < 2);
  n.delta[n.count++] = delta;
}

Status DependencyGraph::Propagate(Epoch epoch, const CommitServices& services) {
  derived_bytes_ = 0;
  if (index_.empty()) return Status::Ok();
  const std::uint64_t t0 = MonotonicNanos();
  ++round_;
  std::vector<Delta>& out = *services.out;
  const std::size_t begin = out.size();
  // Every node adds at most one delta: one allocation at most. (Nodes name their deltas by
  // index, so a growth would move nothing they point at.)
  out.reserve(begin + nodes_.size());
  const std::uintptr_t slots_end = reinterpret_cast<std::uintptr_t>(out.data() + out.capacity());
  for (std::size_t i = 0; i < begin; ++i) {
    auto it = index_.find(out[i].page());
    if (it == index_.end()) continue;
    MarkChanged(it->second, static_cast<std::uint32_t>(i));
    for (std::uint32_t c : Children(it->second)) Schedule(c);
  }
  bool any = false;
  Status failure;
  std::vector<Work>& works = works_;
  for (std::size_t h = 0; h < buckets_.size() && failure.ok(); ++h) {
    if (buckets_[h].empty()) continue;
    // Work on a swapped-out copy: the children scheduled meanwhile go to other (higher) buckets,
    // and the walk must not see its own bucket change under it.
    std::vector<Queued>& bucket = current_;
    bucket.swap(buckets_[h]);
    any = true;
    // Deterministic order within a height: by page id (scheduling order usually is already).
    auto by_id = [](const Queued& a, const Queued& b) { return a.id < b.id; };
    if (!std::is_sorted(bucket.begin(), bucket.end(), by_id))
      std::sort(bucket.begin(), bucket.end(), by_id);
    bool parallel = threads_ > 1 && bucket.size() >= kParallelMinNodes;
    if (threads_ > 1 && !parallel && bucket.size() >= 2) {
      std::size_t bytes = 0;
      for (const Queued& q : bucket) bytes += hot_[q.node].page->size();
      parallel = bytes >= kParallelMinBytes;
    }
    if (!parallel) {
      // Serial: each delta goes straight into its final slot. A wide bucket walks far more nodes
      // and pages than the caches hold, so the loop prefetches ahead in stages, each reading only
      // what an earlier stage fetched: the node's hot line, its page record's first line (and its
      // single user parent's), then the page's bytes, twin, user function and parent bytes, and
      // last the scheduling entries of the children it will schedule.
      const std::size_t count = bucket.size();
      for (std::size_t i = 0; i < count; ++i) {
        if (i + kPrefetchNodes < count) __builtin_prefetch(&hot_[bucket[i + kPrefetchNodes].node]);
        if (i + kPrefetchPages < count) {
          const NodeHot& far = hot_[bucket[i + kPrefetchPages].node];
          // Every field the visit reads is in the record's first line (PageRecordHead, Page).
          __builtin_prefetch(&RecOf(*far.page), 1);
          if (far.user_parent != nullptr) __builtin_prefetch(&RecOf(*far.user_parent));
        }
        if (i + kPrefetchNear < count) {
          const std::uint32_t n = bucket[i + kPrefetchNear].node;
          const NodeHot& near = hot_[n];
          __builtin_prefetch(near.page->data(), 1);
          __builtin_prefetch(RecOf(*near.page).twin);
          if ((near.flags & kPlainFn) != 0) {
            __builtin_prefetch(static_cast<const void*>(&plain_fns_[n]));
          } else if ((near.flags & kUserFn) != 0) {
            __builtin_prefetch(&fns_[n]);
          }
          if (near.user_parent != nullptr) __builtin_prefetch(near.user_parent->data());
          if ((near.flags & (kCopyIn | kManyChildren)) != 0) __builtin_prefetch(&nodes_[n]);
        }
        if (i + kPrefetchChildren < count) {
          // The scheduling entries of the children Finished() will schedule: the first and the
          // last of those the hot line holds (children made together are neighbours in sched_).
          const NodeHot& kin = hot_[bucket[i + kPrefetchChildren].node];
          if (kin.child_count != 0) {
            __builtin_prefetch(&sched_[kin.child[0]], 1);
            __builtin_prefetch(&sched_[kin.child[kin.child_count - 1]], 1);
          }
        }
        {
          // The delta slot a later node will write (reserved above, not yet constructed): a
          // write miss there would otherwise drain into the diff's mark exchange. Compared as an
          // address first: the slot may lie past the reservation, where no pointer may point.
          const auto* end = reinterpret_cast<const char*>(std::to_address(out.end()));
          constexpr std::size_t kAhead = kPrefetchDeltas * sizeof(Delta);
          if (reinterpret_cast<std::uintptr_t>(end) + kAhead < slots_end) {
            __builtin_prefetch(end + kAhead, 1);
            __builtin_prefetch(end + kAhead + sizeof(Delta) - 1, 1);
          }
        }
        const std::uint32_t node = bucket[i].node;
        out.emplace_back();
        if (!Recompute(services, node, services.undo, &out.back(), &failure)) {
          out.pop_back();
          services.discard(hot_[node].page);
          break;
        }
        Finished(node, false, epoch, out);
      }
      bucket.clear();
      bucket.swap(buckets_[h]);  // hand the (empty) buffer back, keeping its capacity
      continue;
    }
    if (works.size() < bucket.size()) works.resize(bucket.size());
    for (std::size_t i = 0; i < bucket.size(); ++i) {
      works[i].node = bucket[i].node;
      works[i].failed = false;
    }
    if (!pool_) pool_ = std::make_unique<ThreadPool>(threads_ - 1);
    pool_->ParallelFor(bucket.size(), [&](std::size_t i) {
      Work& w = works[i];
      w.undo.Clear();
      w.delta = Delta();  // diff_now writes into an empty delta
      w.failed =
          !Recompute(services, w.node, services.undo ? &w.undo : nullptr, &w.delta, &w.status);
    });
    ++stats_.parallel_batches;
    for (std::size_t i = 0; i < bucket.size(); ++i) {
      Work& w = works[i];
      if (w.failed) {
        services.discard(hot_[w.node].page);
        if (failure.ok()) failure = w.status;
        continue;
      }
      if (services.undo && !w.undo.empty()) services.undo->Append(w.undo);
      out.push_back(std::move(w.delta));
      Finished(w.node, !failure.ok(), epoch, out);
    }
    bucket.clear();
    bucket.swap(buckets_[h]);
  }
  if (!failure.ok()) {
    for (auto& b : buckets_) b.clear();
    // The derived deltas stay: the commit thread's undo log names them by index
    // (UndoLog::SaveDerived), and the caller's rollback reads them.
    return failure;
  }
  if (any) {
    ++stats_.propagations;
    latency_.Record(MonotonicNanos() - t0);
  }
  return Status::Ok();
}

}  // namespace mmsb
