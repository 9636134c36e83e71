#include "log/recompute.h"

#include <algorithm>
#include <cstring>
#include <deque>

#include <fmt/format.h>

namespace mmsb::log {

std::vector<PageId> ReplayRecomputedChildren(std::span<const EdgeInfo> edges) {
  std::vector<PageId> out;
  for (std::size_t i = 0; i < edges.size();) {
    const PageId child = edges[i].child;
    bool all = true;
    for (; i < edges.size() && edges[i].child == child; ++i) {
      all = all && edges[i].kind != EdgeKind::kUser &&
            edges[i].policy == DerivedPolicy::kRecomputeOnReplay;
    }
    if (all) out.push_back(child);
  }
  return out;
}

std::string CheckRecomputeEdge(const EdgeInfo& e, std::uint64_t parent_size,
                               std::uint64_t child_size) {
  if (e.policy != DerivedPolicy::kRecomputeOnReplay) return {};
  switch (e.kind) {
    case EdgeKind::kUser:
      return fmt::format("user edge {} -> {} cannot be recomputed on replay", e.parent, e.child);
    case EdgeKind::kPassthrough:
      if (parent_size != child_size) {
        return fmt::format("passthrough edge {} -> {} joins pages of {} and {} bytes", e.parent,
                           e.child, parent_size, child_size);
      }
      return {};
    case EdgeKind::kProjection: {
      const Projection& p = e.projection;
      if (p.length == 0 || std::uint64_t{p.src_offset} + p.length > parent_size ||
          std::uint64_t{p.dst_offset} + p.length > child_size) {
        return fmt::format(
            "projection [{}, +{}) -> +{} of edge {} -> {} does not fit pages of {} and {} bytes",
            p.src_offset, p.length, p.dst_offset, e.parent, e.child, parent_size, child_size);
      }
      return {};
    }
  }
  return fmt::format("edge {} -> {} has an unknown kind", e.parent, e.child);
}

// Heights over the whole graph, as the bus computes them (0 for a page without parents, else one
// more than its highest parent), so children are visited in the engine's order. Pages on a cycle
// (impossible in a log the sink wrote) get no height and are never recomputed.
void ReplayRecompute::Build(const LogState& st) {
  children_.clear();
  feeds_.clear();
  buckets_.clear();
  built_ = true;
  const std::vector<PageId> ids = ReplayRecomputedChildren(st.edges);
  if (ids.empty()) return;
  std::unordered_map<PageId, std::vector<PageId>> out;
  std::unordered_map<PageId, std::uint32_t> indegree;
  std::unordered_map<PageId, int> height;
  for (const EdgeInfo& e : st.edges) {
    out[e.parent].push_back(e.child);
    ++indegree[e.child];
    indegree.try_emplace(e.parent, 0);
  }
  std::deque<PageId> ready;
  for (const auto& [id, n] : indegree) {
    if (n == 0) ready.push_back(id);
  }
  while (!ready.empty()) {
    const PageId n = ready.front();
    ready.pop_front();
    const int h = height[n];
    auto it = out.find(n);
    if (it == out.end()) continue;
    for (PageId c : it->second) {
      int& hc = height[c];
      hc = std::max(hc, h + 1);
      if (--indegree[c] == 0) ready.push_back(c);
    }
  }
  std::unordered_map<PageId, std::uint32_t> index;
  auto edge = std::lower_bound(st.edges.begin(), st.edges.end(), ids.front(),
                               [](const EdgeInfo& e, PageId id) { return e.child < id; });
  for (PageId id : ids) {
    while (edge != st.edges.end() && edge->child < id) ++edge;
    Child child;
    child.id = id;
    bool usable = indegree[id] == 0;  // not on a cycle
    auto cp = st.pages.find(id);
    usable = usable && cp != st.pages.end();
    for (; edge != st.edges.end() && edge->child == id; ++edge) {
      auto pp = st.pages.find(edge->parent);
      usable = usable && pp != st.pages.end() &&
               CheckRecomputeEdge(*edge, pp->second.bytes.size(), cp->second.bytes.size()).empty();
      child.in.push_back({edge->parent, edge->kind, edge->projection});
    }
    if (!usable)
      continue;  // replay validated the edges and pages; this only keeps bad input harmless
    child.height = height[id];
    index[id] = static_cast<std::uint32_t>(children_.size());
    children_.push_back(std::move(child));
  }
  for (std::uint32_t c = 0; c < children_.size(); ++c) {
    for (const InEdge& e : children_[c].in) {
      std::vector<std::uint32_t>& f = feeds_[e.parent];
      if (f.empty() || f.back() != c) f.push_back(c);
    }
  }
}

bool ReplayRecompute::Feeds(const LogState& st, PageId page) {
  if (!built_) Build(st);
  return feeds_.count(page) != 0;
}

void ReplayRecompute::Schedule(std::uint32_t c) {
  Child& child = children_[c];
  if (child.scheduled == round_) return;
  child.scheduled = round_;
  const auto h = static_cast<std::size_t>(child.height);
  if (buckets_.size() <= h) buckets_.resize(h + 1);
  buckets_[h].push_back(c);
}

std::uint32_t ReplayRecompute::Run(LogState& st, Epoch epoch, ChangedRuns& changed) {
  if (!built_) Build(st);
  if (children_.empty()) return 0;
  ++round_;
  for (const auto& [page, runs] : changed) {
    if (auto it = feeds_.find(page); it != feeds_.end() && !runs.empty()) {
      for (std::uint32_t c : it->second) Schedule(c);
    }
  }
  std::uint32_t count = 0;
  std::vector<std::uint32_t> bucket;
  for (std::size_t h = 0; h < buckets_.size(); ++h) {
    if (buckets_[h].empty()) continue;
    bucket.swap(buckets_[h]);  // visits schedule only higher buckets
    std::sort(bucket.begin(), bucket.end(),
              [&](std::uint32_t a, std::uint32_t b) { return children_[a].id < children_[b].id; });
    for (std::uint32_t c : bucket) {
      if (!Visit(st, epoch, c, changed)) continue;  // cutoff
      ++count;
      if (auto it = feeds_.find(children_[c].id); it != feeds_.end()) {
        for (std::uint32_t g : it->second) Schedule(g);
      }
    }
    bucket.clear();
  }
  return count;
}

bool ReplayRecompute::Visit(LogState& st, Epoch epoch, std::uint32_t c, ChangedRuns& changed) {
  const Child& child = children_[c];
  auto cit = st.pages.find(child.id);
  if (cit == st.pages.end()) return false;
  ReplayedPage& page = cit->second;
  // The copies DependencyGraph::Recompute makes: each changed run of each changed parent, by
  // parent id, clipped to a projection's source range.
  copies_.clear();
  for (const InEdge& e : child.in) {
    auto rit = changed.find(e.parent);
    if (rit == changed.end()) continue;
    auto pit = st.pages.find(e.parent);
    if (pit == st.pages.end()) continue;
    const std::uint8_t* parent = pit->second.bytes.data();
    for (const ByteRun& r : rit->second) {
      std::uint64_t src = r.offset, len = r.length, dst = r.offset;
      if (e.kind == EdgeKind::kProjection) {
        const std::uint64_t lo = std::max<std::uint64_t>(r.offset, e.proj.src_offset);
        const std::uint64_t hi = std::min(std::uint64_t{r.offset} + r.length,
                                          std::uint64_t{e.proj.src_offset} + e.proj.length);
        if (lo >= hi) continue;
        src = lo;
        len = hi - lo;
        dst = e.proj.dst_offset + (lo - e.proj.src_offset);
      }
      copies_.push_back(
          {parent + src, static_cast<std::uint32_t>(dst), static_cast<std::uint32_t>(len)});
    }
  }
  if (copies_.empty()) return false;
  // The bytes the copies may change, before they land: the diff below is against these.
  ranges_.clear();
  for (const Copy& cp : copies_) ranges_.push_back({cp.dst, cp.len});
  std::sort(ranges_.begin(), ranges_.end(),
            [](const ByteRun& a, const ByteRun& b) { return a.offset < b.offset; });
  std::size_t n = 0;
  for (const ByteRun& r : ranges_) {
    if (n > 0 && r.offset <= ranges_[n - 1].offset + ranges_[n - 1].length) {
      const std::uint32_t end =
          std::max(ranges_[n - 1].offset + ranges_[n - 1].length, r.offset + r.length);
      ranges_[n - 1].length = end - ranges_[n - 1].offset;
    } else {
      ranges_[n++] = r;
    }
  }
  ranges_.resize(n);
  std::uint8_t* bytes = page.bytes.data();
  before_.clear();
  for (const ByteRun& r : ranges_)
    before_.insert(before_.end(), bytes + r.offset, bytes + r.offset + r.length);
  for (const Copy& cp : copies_) std::memmove(bytes + cp.dst, cp.from, cp.len);
  // Exactly the bytes whose value changed, as the bus's diff finds them.
  std::vector<ByteRun>* out = nullptr;
  const std::uint8_t* old = before_.data();
  for (const ByteRun& r : ranges_) {
    const std::uint8_t* now = bytes + r.offset;
    std::uint32_t i = 0;
    while (i < r.length) {
      if (now[i] == old[i]) {
        ++i;
        continue;
      }
      const std::uint32_t start = i;
      while (i < r.length && now[i] != old[i]) ++i;
      if (out == nullptr) out = &changed[child.id];
      out->push_back({r.offset + start, i - start});
    }
    old += r.length;
  }
  if (out == nullptr) return false;
  page.epoch = epoch;
  page.changed = true;
  return true;
}

}  // namespace mmsb::log
