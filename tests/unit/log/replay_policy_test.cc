// Derived policy (mmsb/graph.h, DerivedPolicy::kRecomputeOnReplay): children whose every incoming
// edge is recompute-on-replay have their derived deltas left out of the log, and replay recomputes
// them the way commit() did. Replay must still equal the live state at every epoch (bytes and page
// epochs), from the start or from a checkpoint, with commit stages, direct writes to children,
// overlapping edges and edge changes, and the log must hold no derived delta of those children.
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "mmsb/checkpoint.h"
#include "mmsb/mmsb.h"

#include "log_test_util.h"

namespace mmsb {
namespace {

using testing::TempDir;

// A live or replayed state: every page's bytes hash and epoch, and the edges with policies.
struct Snapshot {
  std::map<PageId, std::pair<std::uint64_t, Epoch>> pages;
  std::vector<std::tuple<PageId, PageId, int, int>> edges;
  bool operator==(const Snapshot&) const = default;
};

Snapshot Live() {
  Snapshot s;
  for (const PageInfo& info : ListPages()) {
    const Page* p = FindPage(info.id);
    s.pages[info.id] = {XXH3_64bits(p->data(), p->size()), p->epoch()};
  }
  for (const EdgeInfo& e : ListEdges()) {
    s.edges.emplace_back(e.parent, e.child, static_cast<int>(e.kind), static_cast<int>(e.policy));
  }
  return s;
}

Snapshot Of(const LogState& st) {
  Snapshot s;
  for (const auto& [id, p] : st.pages)
    s.pages[id] = {XXH3_64bits(p.bytes.data(), p.bytes.size()), p.epoch};
  for (const EdgeInfo& e : st.edges) {
    s.edges.emplace_back(e.parent, e.child, static_cast<int>(e.kind), static_cast<int>(e.policy));
  }
  return s;
}

// Names the first page whose bytes or epoch differ.
std::string WhatDiffers(const Snapshot& live, const Snapshot& replayed) {
  for (const auto& [id, v] : live.pages) {
    auto it = replayed.pages.find(id);
    if (it == replayed.pages.end()) return fmt::format("page {} missing", id);
    if (it->second.first != v.first) return fmt::format("page {} bytes differ", id);
    if (it->second.second != v.second) {
      return fmt::format("page {} epoch {} (live {})", id, it->second.second, v.second);
    }
  }
  if (live.pages.size() != replayed.pages.size()) return "page sets differ";
  return live.edges == replayed.edges ? "nothing" : "edges differ";
}

// Counts, per page, the derived deltas of each commit whose page is a replay-recomputed child:
// what the log sink must leave out.
class DerivedCounter : public CommitSink {
 public:
  const char* name() const override { return "derived-counter"; }
  Status OnCommit(const CommitBatch& b) override {
    std::set<PageId> all_recompute, other;
    for (const EdgeInfo& e : b.edges) {
      (e.policy == DerivedPolicy::kRecomputeOnReplay && e.kind != EdgeKind::kUser ? all_recompute
                                                                                  : other)
          .insert(e.child);
    }
    for (std::size_t i = b.derived_begin; i < b.derived_end; ++i) {
      const PageId p = b.deltas[i].page();
      if (all_recompute.count(p) && !other.count(p)) ++omitted[p];
    }
    return Status::Ok();
  }
  std::map<PageId, std::uint64_t> omitted;
};

// What a log holds: delta records per page, and the recompute records.
struct LogCounts {
  std::map<PageId, std::uint64_t> deltas;
  std::uint64_t recompute_records = 0;
  std::uint64_t recompute_pages = 0;
};

LogCounts CountLog(const std::string& dir) {
  LogCounts c;
  auto r = LogReader::Open(dir);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return c;
  for (;;) {
    LogEntry e;
    auto more = (*r)->Next(&e);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    if (e.type == LogRecordType::kDelta) ++c.deltas[e.delta.page()];
    if (e.type == LogRecordType::kRecompute) {
      ++c.recompute_records;
      c.recompute_pages += e.recompute.pages;
    }
  }
  return c;
}

constexpr EdgeOptions kRecompute{DerivedPolicy::kRecomputeOnReplay};
constexpr EdgeOptions kLogged{DerivedPolicy::kLog};

class ReplayPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.arena_bytes = std::size_t{1} << 30;
    o.propagation_threads = 1;
    ASSERT_TRUE(start(o).ok());
    counter_ = std::make_shared<DerivedCounter>();
    ASSERT_TRUE(AddSink(counter_).ok());
    LogOptions lo;
    lo.durability = Durability::kNone;
    lo.retire_segments = false;  // replays start from scratch too
    auto s = AttachLog(log_, lo);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    sink_ = *s;
    // The session's first group logs everything (its images are not changes); start after it.
    Record();
  }
  void TearDown() override {
    sink_.reset();
    stop();
  }
  Page* NewPage(std::size_t size) {
    auto p = CreatePage(size);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? *p : nullptr;
  }
  // Commits and keeps the live snapshot of the new epoch.
  Epoch Record() {
    auto e = commit();
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    if (!e.ok()) return 0;
    if (live_.size() <= *e) live_.resize(*e + 1);
    live_[*e] = Live();
    return *e;
  }
  void Write(Page* p, std::size_t off, std::uint8_t v) { *rt::w(p->data() + off) = v; }
  void Fill(Page* p, std::size_t off, std::size_t n, std::uint8_t v) {
    std::memset(rt::w(p->data() + off, n), v, n);
  }

  // Replays every epoch in turn (strict) and checks it against the live state.
  void ExpectReplayMatchesEveryEpoch(ReplayReport* out = nullptr) {
    ASSERT_TRUE(sink_->writer().Flush().ok());
    ReplayOptions o;
    o.use_checkpoints = false;
    auto r = Replayer::Open(log_, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    for (Epoch e = 1; e < live_.size(); ++e) {
      auto reached = (*r)->AdvanceTo(e);
      ASSERT_TRUE(reached.ok()) << reached.status().ToString();
      ASSERT_EQ(*reached, e);
      const Snapshot got = Of((*r)->state());
      ASSERT_TRUE(got == live_[e]) << "epoch " << e << ": " << WhatDiffers(live_[e], got);
    }
    EXPECT_FALSE((*r)->report().has_errors())
        << ((*r)->report().problems.empty() ? "" : (*r)->report().problems[0].ToString());
    if (out) *out = (*r)->report();
  }

  std::uint64_t Omitted() const {
    std::uint64_t n = 0;
    for (const auto& [p, k] : counter_->omitted) n += k;
    return n;
  }

  TempDir dir_;
  std::string log_ = dir_.Sub("run.tlog");
  std::shared_ptr<LogSink> sink_;
  std::shared_ptr<DerivedCounter> counter_;
  std::vector<Snapshot> live_;
};

// Layers of pages: each page of layer k > 0 gets one or two parents in layer k - 1 (chains and
// diamonds) through passthrough or projection edges. Children listed in `recomputed` have only
// recompute-on-replay edges; `logged` children have at least one kLog edge.
struct RandomGraph {
  std::vector<std::vector<Page*>> layers;
  std::set<PageId> recomputed, logged;
};

RandomGraph BuildRandomGraph(std::mt19937_64& rng, int width, int depth,
                             const std::function<Page*(std::size_t)>& new_page) {
  RandomGraph g;
  static const std::size_t kSizes[] = {64, 256, 1000, 4096};
  for (int k = 0; k < depth; ++k) {
    g.layers.emplace_back();
    for (int i = 0; i < width; ++i) {
      Page* child = new_page(kSizes[rng() % 4]);
      g.layers.back().push_back(child);
      if (k == 0) continue;
      const auto& up = g.layers[k - 1];
      const int parents = 1 + static_cast<int>(rng() % 2);  // two parents make diamonds
      bool all_recompute = true, any = false;
      for (int j = 0; j < parents; ++j) {
        Page* parent = up[rng() % up.size()];
        const EdgeOptions opt = rng() % 4 == 0 ? kLogged : kRecompute;
        Status s;
        if (parent->size() == child->size() && rng() % 3 == 0) {
          s = AddPassthroughEdge(parent->id(), child->id(), opt);
        } else {
          const auto len =
              static_cast<std::uint32_t>(1 + rng() % std::min(parent->size(), child->size()));
          const auto src = static_cast<std::uint32_t>(rng() % (parent->size() - len + 1));
          const auto dst = static_cast<std::uint32_t>(rng() % (child->size() - len + 1));
          s = AddProjectionEdge(parent->id(), child->id(), {src, len, dst}, opt);
        }
        if (!s.ok()) continue;  // the same parent twice
        any = true;
        all_recompute = all_recompute && opt.policy == DerivedPolicy::kRecomputeOnReplay;
      }
      if (any) (all_recompute ? g.recomputed : g.logged).insert(child->id());
    }
  }
  return g;
}

TEST_F(ReplayPolicyTest,
       RandomChainsAndDiamondsReplayExactlyAndLogNoDerivedDeltaOfRecomputedPages) {
  std::mt19937_64 rng(11);
  RandomGraph g = BuildRandomGraph(rng, 12, 6, [&](std::size_t n) { return NewPage(n); });
  ASSERT_GE(g.recomputed.size(), 20u);
  ASSERT_GE(g.logged.size(), 5u);
  Record();
  for (int epoch = 0; epoch < 120; ++epoch) {
    // Writes land in the roots only: every change of a child is derived.
    const int writes = 1 + static_cast<int>(rng() % 12);
    for (int k = 0; k < writes; ++k) {
      Page* p = g.layers[0][rng() % g.layers[0].size()];
      const std::size_t off = rng() % p->size();
      Fill(p, off, std::min<std::size_t>(p->size() - off, 1 + rng() % 40),
           static_cast<std::uint8_t>(rng()));
    }
    Record();
  }
  ReplayReport rep;
  ExpectReplayMatchesEveryEpoch(&rep);
  const LogCounts counts = CountLog(log_);
  for (PageId id : g.recomputed)
    EXPECT_EQ(counts.deltas.count(id), 0u) << "page " << id << " is replay-recomputed";
  std::uint64_t logged_child_deltas = 0;
  for (PageId id : g.logged)
    logged_child_deltas += counts.deltas.count(id) ? counts.deltas.at(id) : 0;
  EXPECT_GT(logged_child_deltas, 0u) << "children with a kLog edge are logged";
  // Everything propagation derived for the recomputed pages was left out, and recomputed.
  EXPECT_GE(Omitted(), 500u);
  EXPECT_EQ(counts.recompute_pages, Omitted());
  EXPECT_EQ(rep.deltas_recomputed, Omitted());
  EXPECT_EQ(rep.deltas_applied + rep.deltas_recomputed, GetStats().deltas);
}

TEST_F(ReplayPolicyTest, RandomWorkloadWithDirectWritesAndEdgeChangesReplaysExactly) {
  std::mt19937_64 rng(23);
  std::vector<Page*> pages;
  RandomGraph g = BuildRandomGraph(rng, 10, 5, [&](std::size_t n) {
    Page* p = NewPage(n);
    pages.push_back(p);
    return p;
  });
  Record();
  for (int epoch = 0; epoch < 200; ++epoch) {
    // Writes anywhere, children included: a child's own writes are logged and recomputed over.
    const int writes = 1 + static_cast<int>(rng() % 20);
    for (int k = 0; k < writes; ++k) {
      Page* p = pages[rng() % pages.size()];
      const std::size_t off = rng() % p->size();
      Fill(p, off, std::min<std::size_t>(p->size() - off, 1 + rng() % 24),
           static_cast<std::uint8_t>(rng() % 4));
    }
    if (rng() % 4 == 0) {
      // A new edge of either policy (children whose bytes already differ from the parent's).
      Page* a = pages[rng() % pages.size()];
      Page* b = pages[rng() % pages.size()];
      const EdgeOptions opt = rng() % 3 == 0 ? kLogged : kRecompute;
      if (a != b) {
        const auto len = static_cast<std::uint32_t>(1 + rng() % std::min(a->size(), b->size()));
        (void)AddProjectionEdge(a->id(), b->id(),
                                {static_cast<std::uint32_t>(rng() % (a->size() - len + 1)), len,
                                 static_cast<std::uint32_t>(rng() % (b->size() - len + 1))},
                                opt);
      }
    }
    if (rng() % 6 == 0) {
      auto edges = ListEdges();
      if (!edges.empty()) {
        const EdgeInfo& x = edges[rng() % edges.size()];
        EXPECT_TRUE(RemoveEdge(x.parent, x.child).ok());
      }
    }
    if (rng() % 25 == 0 && pages.size() > 30) {
      const std::size_t k = rng() % pages.size();
      EXPECT_TRUE(FreePage(pages[k]).ok());
      pages.erase(pages.begin() + static_cast<std::ptrdiff_t>(k));
    }
    if (rng() % 15 == 0) pages.push_back(NewPage(256));
    Record();
  }
  ReplayReport rep;
  ExpectReplayMatchesEveryEpoch(&rep);
  EXPECT_GE(rep.deltas_recomputed, 200u);
  EXPECT_EQ(rep.deltas_recomputed, Omitted());
  EXPECT_EQ(rep.deltas_applied + rep.deltas_recomputed, GetStats().deltas);
}

// Propagation copies the parent's changed bytes of the epoch, not the whole projected range: a
// projection added after the child's bytes diverged leaves the unchanged rest of the range alone.
TEST_F(ReplayPolicyTest, AProjectionAddedAfterTheChildDivergedCopiesOnlyTheChangedBytes) {
  Page* parent = NewPage(256);
  Page* child = NewPage(256);
  Fill(parent, 0, 64, 0x11);
  Fill(child, 0, 64, 0xAA);
  Record();
  ASSERT_TRUE(AddProjectionEdge(parent->id(), child->id(), {0, 64, 0}, kRecompute).ok());
  Record();  // an edge alone copies nothing
  Write(parent, 10, 0x22);
  Write(parent, 100, 0x33);  // outside the projection
  const Epoch e = Record();
  ASSERT_EQ(child->data()[10], 0x22);
  ASSERT_EQ(child->data()[11], 0xAA) << "the engine copies changed bytes only";
  ASSERT_EQ(child->epoch(), e);
  ExpectReplayMatchesEveryEpoch();
  const LogCounts counts = CountLog(log_);
  EXPECT_EQ(counts.deltas.at(child->id()), 1u) << "only its direct write before the edge is logged";
  EXPECT_EQ(counts.recompute_pages, 1u);
}

TEST_F(ReplayPolicyTest, ChainedRecomputedChildrenAreRecomputedInOrderAndCutOff) {
  Page* a = NewPage(128);
  Page* b = NewPage(128);
  Page* c = NewPage(64);
  Page* d = NewPage(64);
  // a -> b copies all; b[32, 96) -> c[0, 64); c -> d copies all. Added out of order.
  ASSERT_TRUE(AddPassthroughEdge(c->id(), d->id(), kRecompute).ok());
  ASSERT_TRUE(AddProjectionEdge(b->id(), c->id(), {32, 64, 0}, kRecompute).ok());
  ASSERT_TRUE(AddPassthroughEdge(a->id(), b->id(), kRecompute).ok());
  Record();
  Fill(a, 40, 8, 7);  // reaches d[8, 16)
  const Epoch reach = Record();
  EXPECT_EQ(d->data()[8], 7);
  EXPECT_EQ(d->epoch(), reach);
  Fill(a, 0, 16, 9);  // outside the projection: b changes, c cuts off, d is untouched
  const Epoch cut = Record();
  EXPECT_EQ(b->epoch(), cut);
  EXPECT_EQ(c->epoch(), reach);
  Fill(a, 40, 8, 7);  // the same bytes again: no delta at all
  Record();
  Write(d, 0, 1);  // a direct write to the last child is logged
  Record();
  Fill(a, 90, 6, 3);  // reaches d[58, 64)
  Record();
  ReplayReport rep;
  ExpectReplayMatchesEveryEpoch(&rep);
  const LogCounts counts = CountLog(log_);
  EXPECT_EQ(counts.deltas.count(b->id()), 0u);
  EXPECT_EQ(counts.deltas.count(c->id()), 0u);
  EXPECT_EQ(counts.deltas.at(d->id()), 1u);
  EXPECT_EQ(rep.deltas_recomputed, 3u + 1u + 3u);
}

TEST_F(ReplayPolicyTest, AChildWithALoggedAndARecomputedParentIsLogged) {
  Page* p1 = NewPage(64);
  Page* p2 = NewPage(64);
  Page* mixed = NewPage(64);
  Page* pure = NewPage(64);
  ASSERT_TRUE(AddProjectionEdge(p1->id(), mixed->id(), {0, 32, 0}, kLogged).ok());
  ASSERT_TRUE(AddProjectionEdge(p2->id(), mixed->id(), {0, 32, 32}, kRecompute).ok());
  ASSERT_TRUE(AddPassthroughEdge(mixed->id(), pure->id(), kRecompute).ok());
  Record();
  for (int i = 0; i < 5; ++i) {
    Write(p1, i, static_cast<std::uint8_t>(i + 1));
    Write(p2, i, static_cast<std::uint8_t>(i + 100));
    Record();
  }
  ExpectReplayMatchesEveryEpoch();
  const LogCounts counts = CountLog(log_);
  EXPECT_EQ(counts.deltas.at(mixed->id()), 5u) << "mixed means logged";
  EXPECT_EQ(counts.deltas.count(pure->id()), 0u) << "its child, all recompute-on-replay, is not";
}

// When edges of one child overlap and both parents change, the copy from the higher parent id
// lands last, whatever order the edges were added in: the order the log (and replay) knows.
TEST_F(ReplayPolicyTest, OverlappingEdgesApplyInParentIdOrder) {
  Page* low = NewPage(64);
  Page* high = NewPage(64);
  Page* child = NewPage(64);
  ASSERT_LT(low->id(), high->id());
  ASSERT_TRUE(AddPassthroughEdge(high->id(), child->id(), kRecompute).ok());
  ASSERT_TRUE(AddProjectionEdge(low->id(), child->id(), {0, 16, 0}, kRecompute).ok());
  Record();
  Fill(low, 0, 16, 1);
  Fill(high, 8, 16, 2);
  Record();
  EXPECT_EQ(child->data()[0], 1);
  EXPECT_EQ(child->data()[8], 2) << "both parents wrote byte 8; the higher id wins";
  EXPECT_EQ(child->data()[20], 2);
  ExpectReplayMatchesEveryEpoch();
}

// A commit stage writes after propagation: its writes to a parent are not propagated in that
// commit, and its writes to a recomputed child land after the recompute. Replay recomputes where
// the recompute record sits, before the stage's deltas.
class StageWriter : public CommitStage {
 public:
  StageWriter(Page* parent, Page* child) : parent_(parent), child_(child) {}
  const char* name() const override { return "stage-writer"; }
  Status Process(const CommitBatch& b) override {
    if (b.epoch % 2 == 0) {
      *rt::w(parent_->data() + 5) = static_cast<std::uint8_t>(b.epoch);
      *rt::w(child_->data() + 6) = static_cast<std::uint8_t>(b.epoch * 3);
    }
    return Status::Ok();
  }

 private:
  Page* parent_;
  Page* child_;
};

TEST_F(ReplayPolicyTest, CommitStageWritesAfterPropagationReplayExactly) {
  Page* parent = NewPage(64);
  Page* child = NewPage(64);
  ASSERT_TRUE(AddPassthroughEdge(parent->id(), child->id(), kRecompute).ok());
  ASSERT_TRUE(AddStage(std::make_shared<StageWriter>(parent, child)).ok());
  Record();
  for (int i = 0; i < 8; ++i) {
    Fill(parent, 0, 8, static_cast<std::uint8_t>(i + 1));
    Record();
  }
  ASSERT_NE(child->data()[5], parent->data()[5]) << "the stage's parent writes were not propagated";
  ExpectReplayMatchesEveryEpoch();
  EXPECT_GT(CountLog(log_).deltas.at(child->id()), 0u)
      << "the stage's writes to the child are logged";
}

TEST_F(ReplayPolicyTest, ReplayFromACheckpointInTheMiddleRecomputes) {
  std::mt19937_64 rng(5);
  RandomGraph g = BuildRandomGraph(rng, 8, 5, [&](std::size_t n) { return NewPage(n); });
  Record();
  auto work = [&](int epochs) {
    for (int i = 0; i < epochs; ++i) {
      for (int k = 0; k < 6; ++k) {
        Page* p = g.layers[rng() % 2][rng() % 8];
        const std::size_t off = rng() % p->size();
        Fill(p, off, std::min<std::size_t>(p->size() - off, 1 + rng() % 30),
             static_cast<std::uint8_t>(rng()));
      }
      Record();
    }
  };
  work(20);
  auto ckpt = sink_->Checkpoint();
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  live_.resize(*ckpt + 1);
  live_[*ckpt] = Live();
  work(20);
  ASSERT_TRUE(sink_->writer().Flush().ok());
  ExpectReplayMatchesEveryEpoch();
  for (Epoch e = *ckpt; e < live_.size(); e += 3) {
    ReplayOptions o;
    o.epoch = e;
    ReplayReport rep;
    auto st = Replay(log_, o, &rep);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    EXPECT_EQ(rep.checkpoint_epoch, *ckpt);
    const Snapshot got = Of(*st);
    EXPECT_TRUE(got == live_[e]) << "epoch " << e << ": " << WhatDiffers(live_[e], got);
    if (e > *ckpt) EXPECT_GT(rep.deltas_recomputed, 0u);
  }
}

TEST_F(ReplayPolicyTest, EventsReplayAsSubscribersSawThemWhenPagesAreRecomputed) {
  std::vector<std::vector<Event>> seen;
  auto sub = Subscribe(
      [&](std::span<const Event> batch) { seen.emplace_back(batch.begin(), batch.end()); });
  ASSERT_TRUE(sub.ok());
  std::mt19937_64 rng(8);
  RandomGraph g = BuildRandomGraph(rng, 6, 4, [&](std::size_t n) { return NewPage(n); });
  Record();
  for (int i = 0; i < 30; ++i) {
    Page* p = g.layers[0][rng() % 6];
    const std::size_t off = rng() % p->size();
    Fill(p, off, std::min<std::size_t>(p->size() - off, 32), static_cast<std::uint8_t>(rng()));
    Record();
  }
  ASSERT_TRUE(Unsubscribe(*sub).ok());
  ReplayReport replayed_state;
  ExpectReplayMatchesEveryEpoch(&replayed_state);
  EXPECT_GT(replayed_state.deltas_recomputed, 0u);
  ReplayOptions o;
  o.collect_events = true;
  ReplayReport rep;
  ASSERT_TRUE(Replay(log_, o, &rep).ok());
  std::vector<std::vector<Event>> replayed;
  for (const ReplayedEvent& re : rep.events) {
    auto batch = DecodeEvents(re.bytes);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    replayed.push_back(*batch);
  }
  // The subscription started after the first commit.
  ASSERT_EQ(replayed.size(), seen.size() + 1);
  EXPECT_TRUE(std::equal(seen.begin(), seen.end(), replayed.begin() + 1));
  std::uint64_t derived_applied = 0;
  for (const auto& batch : seen) {
    for (const Event& ev : batch) {
      if (ev.type == EventType::kDeltaApplied && counter_->omitted.count(ev.page))
        ++derived_applied;
    }
  }
  EXPECT_GT(derived_applied, 0u) << "DeltaApplied events of recomputed pages are kept";
}

// A sink attached to a running bus logs the existing pages' images in its first group (nothing is
// left out there), then leaves the derived deltas out. A recomputed page's later direct write
// must continue its epoch chain from the recompute, not from the image.
TEST(ReplayPolicySinkTest, ASinkAttachedAfterTheGraphWasBuiltStartsFromImages) {
  Options o;
  o.arena_bytes = std::size_t{1} << 28;
  o.propagation_threads = 1;
  ASSERT_TRUE(start(o).ok());
  Page* parent = *CreatePage(128);
  Page* child = *CreatePage(128);
  ASSERT_TRUE(AddPassthroughEdge(parent->id(), child->id(), kRecompute).ok());
  std::memset(rt::w(parent->data(), 16), 4, 16);
  ASSERT_TRUE(commit().ok());
  ASSERT_TRUE(commit().ok());
  TempDir dir;
  const std::string log = dir.Sub("run.tlog");
  auto sink = AttachLog(log);
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  std::vector<std::vector<std::uint8_t>> live;  // child bytes after each logged epoch
  auto record = [&] {
    ASSERT_TRUE(commit().ok());
    live.emplace_back(child->data(), child->data() + child->size());
  };
  *rt::w(parent->data() + 20) = 5;  // derived, in the sink's first group: logged with the images
  record();
  *rt::w(parent->data() + 21) = 6;  // derived: left out
  record();
  *rt::w(child->data() + 100) = 7;  // a direct write: logged, based on the recomputed epoch
  record();
  *rt::w(parent->data() + 22) = 8;
  record();
  ASSERT_TRUE((*sink)->Close().ok());
  const PageId child_id = child->id();
  stop();
  auto r = Replayer::Open(log);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (std::size_t i = 0; i < live.size(); ++i) {
    auto more = (*r)->Step();
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    ASSERT_TRUE(*more);
    const ReplayedPage* c = (*r)->state().FindPage(child_id);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->bytes, live[i]) << "logged epoch " << i + 1;
  }
  EXPECT_FALSE((*r)->report().has_errors())
      << ((*r)->report().problems.empty() ? "" : (*r)->report().problems[0].ToString());
  EXPECT_EQ((*r)->report().deltas_recomputed, 2u);
}

// A bucket of at least DependencyGraph::kParallelMinNodes children is recomputed on the pool;
// replay is the same.
TEST(ReplayPolicySinkTest, AWideFanOutRecomputedOnThePoolReplaysExactly) {
  Options o;
  o.arena_bytes = std::size_t{1} << 28;
  o.propagation_threads = 2;
  ASSERT_TRUE(start(o).ok());
  TempDir dir;
  const std::string log = dir.Sub("run.tlog");
  auto sink = AttachLog(log);
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  ASSERT_TRUE(commit().ok());
  Page* root = *CreatePage(4096);
  std::vector<Page*> children;
  for (std::uint32_t i = 0; i < 100; ++i) {
    children.push_back(*CreatePage(64));
    ASSERT_TRUE(
        AddProjectionEdge(root->id(), children.back()->id(), {i * 40, 64, 0}, kRecompute).ok());
  }
  std::vector<std::uint64_t> live;  // hash of all children after each epoch, from epoch 2
  std::mt19937_64 rng(3);
  for (int e = 0; e < 10; ++e) {
    for (int k = 0; k < 20; ++k)
      *rt::w(root->data() + rng() % 4096) = static_cast<std::uint8_t>(rng());
    ASSERT_TRUE(commit().ok());
    std::uint64_t h = 0;
    for (const Page* c : children) h = h * 31 + XXH3_64bits(c->data(), c->size());
    live.push_back(h);
  }
  EXPECT_GT(GetStats().parallel_batches, 0u);
  std::vector<PageId> ids;
  for (const Page* c : children) ids.push_back(c->id());
  ASSERT_TRUE((*sink)->Close().ok());
  stop();
  for (std::size_t i = 0; i < live.size(); ++i) {
    ReplayOptions ro;
    ro.epoch = i + 2;
    ReplayReport rep;
    auto st = Replay(log, ro, &rep);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    std::uint64_t h = 0;
    for (PageId id : ids)
      h = h * 31 + XXH3_64bits(st->FindPage(id)->bytes.data(), st->FindPage(id)->bytes.size());
    EXPECT_EQ(h, live[i]) << "epoch " << i + 2;
    EXPECT_GT(rep.deltas_recomputed, 0u);
  }
}

// The format, written by hand: a reader recomputes at the recompute record, from the deltas
// before it, and checks the count the record gives.
TEST(ReplayPolicyFormatTest, AReaderRecomputesAtTheRecomputeRecordAndChecksItsCount) {
  TempDir dir;
  const std::string log = dir.Sub("run.tlog");
  {
    auto w = LogWriter::Open(log);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    LogBatch b = (*w)->NewBatch();
    b.AddPageCreate({1, 32, Location::kCpu, false, "", ""});
    b.AddPageCreate({2, 16, Location::kCpu, false, "", ""});
    b.AddEdgeChange({EdgeOp::kAdd,
                     {1, 2, EdgeKind::kProjection, {8, 16, 0}, DerivedPolicy::kRecomputeOnReplay}});
    ASSERT_TRUE((*w)->Commit(b, 1).ok());
    std::vector<std::uint8_t> before(32, 0), after(32, 0);
    after[9] = 5;   // inside the projection: lands at child byte 1
    after[30] = 6;  // outside
    b.Clear();
    ASSERT_TRUE(b.AddDelta(Diff(1, 0, before, after)).ok());
    b.AddRecompute({1});
    // A delta after the record (a commit stage's) is not an input to the recompute.
    std::vector<std::uint8_t> later = after;
    later[10] = 7;
    ASSERT_TRUE(b.AddDelta(Diff(1, 2, after, later)).ok());
    ASSERT_TRUE((*w)->Commit(b, 2).ok());
    b.Clear();
    std::vector<std::uint8_t> third = later;
    third[12] = 8;
    ASSERT_TRUE(b.AddDelta(Diff(1, 2, later, third)).ok());  // the page's last change was epoch 2
    b.AddRecompute({2});                                     // wrong: one page changes
    ASSERT_TRUE((*w)->Commit(b, 3).ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  ReplayOptions o;
  o.epoch = 2;
  ReplayReport rep;
  auto st = Replay(log, o, &rep);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  const ReplayedPage* child = st->FindPage(2);
  ASSERT_NE(child, nullptr);
  std::vector<std::uint8_t> want(16, 0);
  want[1] = 5;
  EXPECT_EQ(child->bytes, want) << "byte 10 of the parent changed after the recompute record";
  EXPECT_EQ(child->epoch, 2u);
  EXPECT_EQ(rep.deltas_recomputed, 1u);
  EXPECT_FALSE(rep.has_errors());
  o.epoch = 3;
  st = Replay(log, o, &rep);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  want[4] = 8;
  EXPECT_EQ(st->FindPage(2)->bytes, want) << "byte 10 of the parent is not an epoch-3 change";
  ASSERT_TRUE(rep.has_errors()) << "the record said 2 pages, recomputing changed 1";
  EXPECT_EQ(rep.problems.back().kind, LogProblem::Kind::kInconsistent);
}

TEST(ReplayPolicyFormatTest, ARecomputeEdgeThatDoesNotFitItsPagesIsInconsistent) {
  TempDir dir;
  const std::string log = dir.Sub("run.tlog");
  {
    auto w = LogWriter::Open(log);
    ASSERT_TRUE(w.ok());
    LogBatch b = (*w)->NewBatch();
    b.AddPageCreate({1, 32, Location::kCpu, false, "", ""});
    b.AddPageCreate({2, 16, Location::kCpu, false, "", ""});
    b.AddEdgeChange({EdgeOp::kAdd,
                     {1, 2, EdgeKind::kProjection, {8, 16, 4}, DerivedPolicy::kRecomputeOnReplay}});
    ASSERT_TRUE((*w)->Commit(b, 1).ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  ReplayReport rep;
  auto st = Replay(log, {}, &rep);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), StatusCode::kCorruption);
  EXPECT_NE(st.status().message().find("does not fit"), std::string::npos)
      << st.status().ToString();
}

}  // namespace
}  // namespace mmsb
