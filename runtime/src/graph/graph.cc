#include "graph/graph.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>

#include <fmt/format.h>

#include "mmsb/barrier.h"

namespace mmsb {
namespace {

std::uint64_t NowNanos() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

std::string NodeName(const Page* p) {
  return p->name().empty() ? fmt::format("page {}", p->id()) : fmt::format("page {} ('{}')", p->id(), p->name());
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
    nodes_[n] = Node{};
  } else {
    n = static_cast<std::uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  nodes_[n].page = page;
  nodes_[n].id = page->id();
  nodes_[n].live = true;
  index_.emplace(page->id(), n);
  ++stats_.nodes;
  return n;
}

void DependencyGraph::MaybeDropNode(std::uint32_t n) {
  Node& node = nodes_[n];
  if (!node.live || !node.in_edges.empty() || !node.children.empty() || node.user_fn) return;
  index_.erase(node.id);
  node = Node{};
  free_nodes_.push_back(n);
  --stats_.nodes;
}

// Heights increase strictly along edges, so a path from `from` to `target` only visits nodes no
// higher than `target`: everything above is pruned (Incremental's cycle check).
bool DependencyGraph::Reaches(std::uint32_t from, std::uint32_t target) const {
  const int limit = nodes_[target].height;
  std::vector<std::uint32_t> stack{from};
  std::vector<bool> seen(nodes_.size(), false);
  while (!stack.empty()) {
    const std::uint32_t n = stack.back();
    stack.pop_back();
    if (n == target) return true;
    if (seen[n] || nodes_[n].height > limit) continue;
    seen[n] = true;
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
    for (std::uint32_t e : nodes_[n].in_edges) h = std::max(h, nodes_[edges_[e].parent].height + 1);
    if (h == nodes_[n].height && n != start) continue;
    nodes_[n].height = h;
    for (std::uint32_t c : nodes_[n].children) work.push_back(c);
  }
  int depth = 0;
  for (const Node& node : nodes_) {
    if (node.live) depth = std::max(depth, node.height);
  }
  stats_.graph_depth = static_cast<std::uint32_t>(depth);
}

Status DependencyGraph::AddEdge(Page* parent, Page* child, EdgeKind kind, Projection proj,
                                EdgeOptions options) {
  if (parent == child) return GraphCycle(fmt::format("edge {} -> itself is a cycle", NodeName(parent)));
  if (kind == EdgeKind::kPassthrough && parent->size() != child->size()) {
    return InvalidArgument(fmt::format("passthrough edge needs equal sizes: {} has {} bytes, {} has {}",
                                       NodeName(parent), parent->size(), NodeName(child), child->size()));
  }
  if (kind == EdgeKind::kProjection &&
      (std::uint64_t{proj.src_offset} + proj.length > parent->size() ||
       std::uint64_t{proj.dst_offset} + proj.length > child->size() || proj.length == 0)) {
    return InvalidArgument(fmt::format("projection [{}, +{}) -> +{} does not fit {} ({} B) -> {} ({} B)",
                                       proj.src_offset, proj.length, proj.dst_offset, NodeName(parent),
                                       parent->size(), NodeName(child), child->size()));
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
      return AlreadyExists(fmt::format("edge {} -> {} already exists", NodeName(parent), NodeName(child)));
    }
  }
  if (nodes_[c].height <= nodes_[p].height && Reaches(c, p)) {
    undo_nodes();
    return GraphCycle(fmt::format("edge {} -> {} would close a cycle", NodeName(parent), NodeName(child)));
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
  nodes_[c].in_edges.push_back(e);
  nodes_[p].children.push_back(c);
  ++stats_.edges;
  if (nodes_[c].height <= nodes_[p].height) UpdateHeights(c);
  stats_.graph_depth = std::max<std::uint32_t>(stats_.graph_depth, nodes_[c].height);
  return Status::Ok();
}

Status DependencyGraph::SetUserFunction(Page* child, std::vector<Page*> parents, RecomputeFn fn,
                                        EdgeOptions options) {
  if (!fn) return InvalidArgument("user recompute function is empty");
  if (parents.empty()) return InvalidArgument("a user edge needs at least one parent");
  auto it = index_.find(child->id());
  if (it != index_.end() && nodes_[it->second].user_fn) {
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
  Node& node = nodes_[index_.at(child->id())];
  node.user_fn = std::move(fn);
  node.user_parents.clear();
  for (Page* parent : parents) node.user_parents.push_back(index_.at(parent->id()));
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
    if (auto it = std::find(up.begin(), up.end(), edge.parent); it != up.end()) up.erase(it);
    if (up.empty()) child.user_fn = nullptr;
  }
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
  nodes_[n].user_fn = nullptr;
  MaybeDropNode(n);
  for (std::uint32_t t : touched) {
    if (!nodes_[t].live) continue;
    UpdateHeights(t);
    MaybeDropNode(t);
  }
}

std::vector<EdgeInfo> DependencyGraph::ListEdges() const {
  std::vector<EdgeInfo> out;
  for (std::size_t e = 0; e < edges_.size(); ++e) {
    if (!edge_live_[e]) continue;
    const Edge& x = edges_[e];
    out.push_back({nodes_[x.parent].id, nodes_[x.child].id, x.kind, x.proj, x.policy});
  }
  std::sort(out.begin(), out.end(), [](const EdgeInfo& a, const EdgeInfo& b) {
    return std::tie(a.child, a.parent) < std::tie(b.child, b.parent);
  });
  return out;
}

int DependencyGraph::Height(PageId page) const {
  auto it = index_.find(page);
  return it == index_.end() ? -1 : nodes_[it->second].height;
}

void DependencyGraph::Schedule(std::uint32_t node) {
  Node& n = nodes_[node];
  if (n.dirty_stamp == round_) return;  // at most once per commit
  n.dirty_stamp = round_;
  if (buckets_.size() <= static_cast<std::size_t>(n.height)) buckets_.resize(n.height + 1);
  buckets_[n.height].push_back(node);
}

// Runs on the commit thread or a pool thread; touches only the work's own child page.
void DependencyGraph::Recompute(const Host& host, Work& work) {
  const Node& n = nodes_[work.node];
  Page* child = n.page;
  work.ran = true;
  for (std::uint32_t e : n.in_edges) {
    const Edge& edge = edges_[e];
    if (edge.kind == EdgeKind::kUser) continue;
    auto it = changed_.find(edge.parent);
    if (it == changed_.end()) continue;
    const Page* parent = nodes_[edge.parent].page;
    for (const Delta* d : it->second) {
      for (const ByteRun& r : d->Runs()) {
        std::uint32_t src = r.offset, len = r.length, dst = r.offset;
        if (edge.kind == EdgeKind::kProjection) {
          const std::uint32_t lo = std::max(r.offset, edge.proj.src_offset);
          const std::uint32_t hi = std::min(r.offset + r.length, edge.proj.src_offset + edge.proj.length);
          if (lo >= hi) continue;
          src = lo;
          len = hi - lo;
          dst = edge.proj.dst_offset + (lo - edge.proj.src_offset);
        }
        std::memcpy(rt::w(child->data() + dst, len), parent->data() + src, len);
      }
    }
  }
  bool full = false;
  if (n.user_fn) {
    bool any = false;
    for (std::uint32_t p : n.user_parents) any = any || changed_.count(p) != 0;
    if (any) {
      std::vector<const Page*> parents;
      parents.reserve(n.user_parents.size());
      for (std::uint32_t p : n.user_parents) parents.push_back(nodes_[p].page);
      work.status = n.user_fn(parents, *child);
      if (!work.status.ok()) {
        work.status = work.status.WithContext(fmt::format("recompute of {} failed", NodeName(child)));
        return;
      }
      full = true;  // user code may write without barriers: diff the whole child
    }
  }
  work.delta = host.diff_now(child, full, &work.undo);
}

Status DependencyGraph::Propagate(Epoch epoch, std::span<const Delta> changed, const Host& host) {
  if (index_.empty()) return Status::Ok();
  const std::uint64_t t0 = NowNanos();
  ++round_;
  changed_.clear();
  owned_.clear();
  for (const Delta& d : changed) {
    auto it = index_.find(d.page());
    if (it == index_.end()) continue;
    changed_[it->second].push_back(&d);
    for (std::uint32_t c : nodes_[it->second].children) Schedule(c);
  }
  bool any = false;
  Status failure;
  std::vector<Work> works;
  for (std::size_t h = 0; h < buckets_.size() && failure.ok(); ++h) {
    auto& bucket = buckets_[h];
    if (bucket.empty()) continue;
    any = true;
    // Deterministic order within a height: by page id.
    std::sort(bucket.begin(), bucket.end(), [&](std::uint32_t a, std::uint32_t b) { return nodes_[a].id < nodes_[b].id; });
    works.assign(bucket.size(), Work{});
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < bucket.size(); ++i) {
      works[i].node = bucket[i];
      bytes += nodes_[bucket[i]].page->size();
    }
    const bool parallel = threads_ > 1 && bucket.size() >= 2 &&
                          (bucket.size() >= kParallelMinNodes || bytes >= kParallelMinBytes);
    if (parallel) {
      if (!pool_) pool_ = std::make_unique<ThreadPool>(threads_ - 1);
      pool_->ParallelFor(works.size(), [&](std::size_t i) { Recompute(host, works[i]); });
      ++stats_.parallel_batches;
    } else {
      for (Work& w : works) {
        Recompute(host, w);
        if (!w.status.ok()) break;
      }
    }
    bucket.clear();
    for (Work& w : works) {
      if (!w.ran) continue;
      Page* child = nodes_[w.node].page;
      if (!w.status.ok()) {
        host.discard(child);
        if (failure.ok()) failure = w.status;
        continue;
      }
      ++stats_.nodes_recomputed;
      if (!w.undo.empty()) host.record_undo(child, std::move(w.undo));
      if (w.delta.empty()) {
        ++stats_.cutoffs;  // nothing changed: children are not scheduled from here
        continue;
      }
      owned_.push_back(std::make_unique<Delta>(std::move(w.delta)));
      changed_[w.node].push_back(owned_.back().get());
      if (failure.ok()) {
        for (std::uint32_t c : nodes_[w.node].children) Schedule(c);
      }
    }
  }
  if (!failure.ok()) {
    for (auto& b : buckets_) b.clear();
    return failure;
  }
  for (auto& d : owned_) host.emit(std::move(*d));
  owned_.clear();
  if (any) {
    ++stats_.propagations;
    latency_.Record(NowNanos() - t0);
  }
  (void)epoch;
  return Status::Ok();
}

}  // namespace mmsb
