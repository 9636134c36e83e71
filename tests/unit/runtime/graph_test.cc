#include "graph/graph.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <numeric>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "bus_fixture.h"

namespace mmsb {
namespace {

using testing::BusTest;

std::uint32_t ReadU32(const Page* p, std::size_t i = 0) {
  std::uint32_t v;
  std::memcpy(&v, p->data() + i * 4, 4);
  return v;
}
void WriteU32(Page* p, std::uint32_t v, std::size_t i = 0) {
  std::memcpy(rt::w(reinterpret_cast<std::uint32_t*>(p->data()) + i), &v, 4);
}

// child[0] = sum of parents[0] (+1), counting calls.
RecomputeFn SumFn(std::atomic<int>* calls, std::uint32_t add = 0) {
  return [calls, add](std::span<const Page* const> parents, Page& child) {
    if (calls) ++*calls;
    std::uint32_t sum = add;
    for (const Page* p : parents) sum += ReadU32(p);
    WriteU32(&child, sum);
    return Status::Ok();
  };
}

class GraphTest : public BusTest {};

TEST_F(GraphTest, DiamondChildIsRecomputedOnce) {
  Page* a = NewPage(64);
  Page* b = NewPage(64);
  Page* c = NewPage(64);
  Page* d = NewPage(64);
  std::atomic<int> calls_b{0}, calls_c{0}, calls_d{0};
  const PageId pa[] = {a->id()}, pb[] = {a->id()}, pd[] = {b->id(), c->id()};
  ASSERT_TRUE(AddUserEdges(pa, b->id(), SumFn(&calls_b, 1)).ok());
  ASSERT_TRUE(AddUserEdges(pb, c->id(), SumFn(&calls_c, 2)).ok());
  ASSERT_TRUE(AddUserEdges(pd, d->id(), SumFn(&calls_d)).ok());
  EXPECT_EQ(NodeHeight(a->id()), 0);
  EXPECT_EQ(NodeHeight(d->id()), 2);
  WriteU32(a, 10);
  const Epoch e = Commit();
  EXPECT_EQ(calls_d.load(), 1);
  EXPECT_EQ(ReadU32(d), 11u + 12u);
  EXPECT_EQ(d->epoch(), e);
  // All four pages' deltas are in the same epoch's batch, parents before children.
  const auto& deltas = sink->batches.back().deltas;
  ASSERT_EQ(deltas.size(), 4u);
  EXPECT_EQ(deltas.front().page(), a->id());
  EXPECT_EQ(deltas.back().page(), d->id());
  EXPECT_EQ(GetStats().graph_depth, 2u);
}

TEST_F(GraphTest, CutoffStopsPropagationWhenRecomputeChangesNothing) {
  Page* a = NewPage(64);
  Page* flag = NewPage(64);
  Page* leaf = NewPage(64);
  std::atomic<int> leaf_calls{0};
  const PageId pa[] = {a->id()}, pf[] = {flag->id()};
  // flag = (a > 100): changes to `a` below 100 leave it unchanged.
  ASSERT_TRUE(AddUserEdges(pa, flag->id(), [](std::span<const Page* const> ps, Page& child) {
                WriteU32(&child, ReadU32(ps[0]) > 100 ? 1 : 0);
                return Status::Ok();
              }).ok());
  ASSERT_TRUE(AddUserEdges(pf, leaf->id(), SumFn(&leaf_calls, 7)).ok());
  WriteU32(a, 5);
  Commit();
  EXPECT_EQ(leaf_calls.load(), 0);
  EXPECT_EQ(GetStats().cutoffs, 1u);
  WriteU32(a, 500);
  Commit();
  EXPECT_EQ(leaf_calls.load(), 1);
  EXPECT_EQ(ReadU32(leaf), 8u);
}

TEST_F(GraphTest, CycleIsRejectedAndGraphUnchanged) {
  Page* a = NewPage(64);
  Page* b = NewPage(64);
  Page* c = NewPage(64);
  ASSERT_TRUE(AddPassthroughEdge(a->id(), b->id()).ok());
  ASSERT_TRUE(AddPassthroughEdge(b->id(), c->id()).ok());
  const auto before = ListEdges();
  EXPECT_EQ(AddPassthroughEdge(c->id(), a->id()).code(), StatusCode::kGraphCycle);
  EXPECT_EQ(AddPassthroughEdge(a->id(), a->id()).code(), StatusCode::kGraphCycle);
  const PageId pc[] = {c->id()};
  EXPECT_EQ(AddUserEdges(pc, a->id(), SumFn(nullptr)).code(), StatusCode::kGraphCycle);
  const auto after = ListEdges();
  ASSERT_EQ(after.size(), before.size());
  EXPECT_EQ(NodeHeight(a->id()), 0);
  EXPECT_EQ(NodeHeight(c->id()), 2);
  EXPECT_EQ(AddPassthroughEdge(a->id(), b->id()).code(), StatusCode::kAlreadyExists);
}

TEST_F(GraphTest, UserEdgesThatAskToBeRecomputedOnReplayAreRejected) {
  Page* a = NewPage(64);
  Page* b = NewPage(64);
  Page* c = NewPage(64);
  ASSERT_TRUE(AddPassthroughEdge(c->id(), b->id(), {DerivedPolicy::kRecomputeOnReplay}).ok());
  const auto before = ListEdges();
  const PageId pa[] = {a->id()};
  std::atomic<int> calls{0};
  const Status s = AddUserEdges(pa, b->id(), SumFn(&calls), {DerivedPolicy::kRecomputeOnReplay});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("replay"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("user function"), std::string::npos) << s.message();
  const auto after = ListEdges();
  ASSERT_EQ(after.size(), before.size()) << "graph unchanged";
  EXPECT_EQ(after[0].parent, c->id());
  EXPECT_EQ(NodeHeight(a->id()), -1);
  WriteU32(a, 5);
  Commit();
  EXPECT_EQ(calls.load(), 0);
  // The same edges with the default policy are fine (the child is then logged).
  ASSERT_TRUE(AddUserEdges(pa, b->id(), SumFn(&calls)).ok());
  EXPECT_EQ(ListEdges().size(), 2u);
  // A policy value that names nothing is rejected too.
  EXPECT_EQ(AddPassthroughEdge(a->id(), c->id(), {static_cast<DerivedPolicy>(7)}).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(GraphTest, MissingPageGivesPageNotFound) {
  Page* a = NewPage(64);
  EXPECT_EQ(AddPassthroughEdge(a->id(), 999999).code(), StatusCode::kNotFound);
  EXPECT_EQ(AddPassthroughEdge(999999, a->id()).code(), StatusCode::kNotFound);
  EXPECT_EQ(RemoveEdge(a->id(), 999999).code(), StatusCode::kNotFound);
}

TEST(EdgeKinds, HaveTheNamesTheCliPrints) {
  EXPECT_STREQ(EdgeKindName(EdgeKind::kPassthrough), "passthrough");
  EXPECT_STREQ(EdgeKindName(EdgeKind::kProjection), "projection");
  EXPECT_STREQ(EdgeKindName(EdgeKind::kUser), "user");
  EXPECT_STREQ(EdgeKindName(static_cast<EdgeKind>(9)), "unknown");
}

TEST_F(GraphTest, PassthroughAndProjectionCopyOnlyChangedBytes) {
  Page* src = NewPage(256);
  Page* mirror = NewPage(256);
  Page* field = NewPage(16);
  ASSERT_TRUE(AddPassthroughEdge(src->id(), mirror->id()).ok());
  ASSERT_TRUE(
      AddProjectionEdge(src->id(), field->id(), {.src_offset = 64, .length = 16, .dst_offset = 0})
          .ok());
  EXPECT_EQ(AddProjectionEdge(src->id(), field->id(), {.src_offset = 250, .length = 16}).code(),
            StatusCode::kInvalidArgument);
  std::memset(rt::w(src->data() + 60, 10), 0xAA,
              10);  // bytes 60..69: 64..69 fall in the projection
  Commit();
  EXPECT_EQ(std::memcmp(src->data(), mirror->data(), 256), 0);
  EXPECT_EQ(field->data()[0], 0xAA);
  EXPECT_EQ(field->data()[5], 0xAA);
  EXPECT_EQ(field->data()[6], 0);
  const auto& deltas = sink->batches.back().deltas;
  ASSERT_EQ(deltas.size(), 3u);
  EXPECT_EQ(deltas[1].changed_bytes() + deltas[2].changed_bytes(), 10u + 6u);
}

TEST_F(GraphTest, FailedFirstCommitKeepsCreationsPendingForTheNext) {
  Page* a = NewPage(64);
  Page* c = NewPage(64);
  bool fail = true;
  const PageId pa[] = {a->id()};
  ASSERT_TRUE(AddUserEdges(pa, c->id(), [&](std::span<const Page* const> ps, Page& child) {
                if (fail) return Internal("not ready");
                WriteU32(&child, ReadU32(ps[0]) + 1);
                return Status::Ok();
              }).ok());
  WriteU32(a, 41);
  ASSERT_FALSE(commit().ok());
  EXPECT_TRUE(sink->batches.empty());
  EXPECT_EQ(ReadU32(a), 41u) << "a failed commit never writes over the program's memory";
  fail = false;
  Commit();  // the write stayed pending: this commit logs it
  ASSERT_EQ(sink->batches.size(), 1u);
  EXPECT_EQ(sink->batches[0].created.size(), 2u);
  EXPECT_EQ(ReadU32(c), 42u);
}

TEST_F(GraphTest, FailedRecomputeLeavesPreviousEpochIntact) {
  Page* a = NewPage(64);
  Page* b = NewPage(64);
  Page* c = NewPage(64);
  ASSERT_TRUE(AddPassthroughEdge(a->id(), b->id()).ok());
  bool fail = false;
  const PageId pb[] = {b->id()};
  ASSERT_TRUE(AddUserEdges(pb, c->id(), [&](std::span<const Page* const> ps, Page& child) {
                WriteU32(&child, 12345);  // partial write before failing
                if (fail) return Internal("sensor offline");
                WriteU32(&child, ReadU32(ps[0]) * 2);
                return Status::Ok();
              }).ok());
  WriteU32(a, 1);
  const Epoch good = Commit();
  EXPECT_EQ(ReadU32(c), 2u);

  const Epoch b_epoch = b->epoch(), c_epoch = c->epoch();
  fail = true;
  WriteU32(a, 7);
  auto e = commit();
  ASSERT_FALSE(e.ok());
  // b was recomputed (its epoch moved) before c failed: the rollback restores it.
  EXPECT_EQ(b->epoch(), b_epoch);
  EXPECT_EQ(c->epoch(), c_epoch);
  EXPECT_NE(e.status().message().find("page " + std::to_string(c->id())), std::string::npos)
      << e.status().ToString();
  EXPECT_NE(e.status().message().find("sensor offline"), std::string::npos);
  // Nothing of the failed epoch is committed: the derived pages hold their epoch-`good` bytes;
  // the program's own write to `a` stays in its memory, pending for the next commit.
  EXPECT_EQ(current_epoch(), good);
  EXPECT_EQ(ReadU32(a), 7u);
  EXPECT_EQ(ReadU32(b), 1u);
  EXPECT_EQ(ReadU32(c), 2u);
  EXPECT_EQ(sink->batches.size(), 1u);
  EXPECT_EQ(GetStats().failed_commits, 1u);

  fail = false;
  WriteU32(a, 7);
  EXPECT_EQ(Commit(), good + 1);
  EXPECT_EQ(ReadU32(c), 14u);
  // The log-visible history replays to the live state.
  std::vector<std::uint8_t> img(64, 0);
  for (const auto& batch : sink->batches) {
    for (const auto& d : batch.deltas) {
      if (d.page() == c->id()) ASSERT_TRUE(d.ApplyTo(img).ok());
    }
  }
  EXPECT_EQ(std::memcmp(img.data(), c->data(), 64), 0);
  // Stats count exactly the committed deltas, derived ones included, and nothing of the failure.
  std::uint64_t deltas = 0, bytes = 0;
  for (const auto& batch : sink->batches) {
    for (const auto& d : batch.deltas) {
      ++deltas;
      bytes += d.changed_bytes();
    }
  }
  EXPECT_EQ(GetStats().deltas, deltas);
  EXPECT_EQ(GetStats().delta_bytes, bytes);
}

// graph/graph.h, "Who writes a derived page": a user function writes its own child only. One that
// also writes another derived page breaks the rule the runtime's plain writes to derived pages
// rely on; debug builds abort when the written page's recompute starts, naming it.
TEST_F(GraphTest, ADerivedPageWrittenByAnotherNodesFunctionAbortsInDebugBuilds) {
#ifdef NDEBUG
  GTEST_SKIP() << "the check is compiled in debug builds only (NDEBUG unset, the asan preset)";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Page* p = NewPage(64);
  Page* a = NewPage(64);
  Page* b = NewPage(64);
  const PageId pp[] = {p->id()};
  ASSERT_TRUE(AddUserEdges(pp, a->id(), [b](std::span<const Page* const> ps, Page& child) {
                WriteU32(&child, ReadU32(ps[0]) + 1);
                WriteU32(b, 99, 8);  // not its child: b is derived from a
                return Status::Ok();
              }).ok());
  ASSERT_TRUE(AddPassthroughEdge(a->id(), b->id()).ok());
  WriteU32(p, 1);
  EXPECT_DEATH((void)commit(), "derived page " + std::to_string(b->id()) +
                                   " was written during the commit's propagation by something "
                                   "other than its recompute");
#endif
}

// A child with a user function and a copying edge: a change of the copying parent alone copies
// and does not call the function (the function runs only when one of its own parents changed).
TEST_F(GraphTest, UserFunctionRunsOnlyWhenOneOfItsParentsChanged) {
  Page* u = NewPage(64);
  Page* p = NewPage(64);
  Page* child = NewPage(64);
  std::atomic<int> calls{0};
  const PageId pu[] = {u->id()};
  ASSERT_TRUE(AddUserEdges(pu, child->id(), SumFn(&calls, 100)).ok());
  ASSERT_TRUE(AddProjectionEdge(p->id(), child->id(), {4, 4, 4}).ok());
  WriteU32(p, 7, 1);
  Commit();
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(ReadU32(child, 1), 7u);
  WriteU32(u, 5);
  Commit();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(ReadU32(child), 105u);
  // The copying edge gone, the child is user-only: it runs on its user parent's change.
  ASSERT_TRUE(RemoveEdge(p->id(), child->id()).ok());
  WriteU32(u, 6);
  Commit();
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(ReadU32(child), 106u);
}

// Removing one user parent of several leaves the function called with the others, in the order
// they were given.
TEST_F(GraphTest, RemovedUserParentLeavesTheOthersInOrder) {
  Page* a = NewPage(64);
  Page* b = NewPage(64);
  Page* c = NewPage(64);
  Page* child = NewPage(64);
  std::vector<PageId> seen;
  const PageId ps[] = {c->id(), a->id(), b->id()};
  ASSERT_TRUE(AddUserEdges(ps, child->id(), [&](std::span<const Page* const> parents, Page& ch) {
                seen.clear();
                for (const Page* q : parents) seen.push_back(q->id());
                WriteU32(&ch, static_cast<std::uint32_t>(seen.size()));
                return Status::Ok();
              }).ok());
  WriteU32(a, 1);
  Commit();
  EXPECT_EQ(seen, (std::vector<PageId>{c->id(), a->id(), b->id()}));
  ASSERT_TRUE(RemoveEdge(a->id(), child->id()).ok());
  WriteU32(b, 2);
  Commit();
  EXPECT_EQ(seen, (std::vector<PageId>{c->id(), b->id()}));
  EXPECT_EQ(ReadU32(child), 2u);
}

TEST_F(GraphTest, FreeingAPageRemovesItsEdges) {
  Page* a = NewPage(64);
  Page* b = NewPage(64);
  Page* c = NewPage(64);
  ASSERT_TRUE(AddPassthroughEdge(a->id(), b->id()).ok());
  ASSERT_TRUE(AddPassthroughEdge(b->id(), c->id()).ok());
  ASSERT_TRUE(FreePage(b).ok());
  EXPECT_TRUE(ListEdges().empty());
  EXPECT_EQ(NodeHeight(c->id()), -1);
  WriteU32(a, 3);
  Commit();
  EXPECT_EQ(ReadU32(c), 0u);
}

TEST_F(GraphTest, RemovingAnEdgeLowersHeights) {
  Page* a = NewPage(64);
  Page* b = NewPage(64);
  Page* c = NewPage(64);
  ASSERT_TRUE(AddPassthroughEdge(a->id(), b->id()).ok());
  ASSERT_TRUE(AddPassthroughEdge(b->id(), c->id()).ok());
  ASSERT_TRUE(AddPassthroughEdge(a->id(), c->id()).ok());
  EXPECT_EQ(NodeHeight(c->id()), 2);
  ASSERT_TRUE(RemoveEdge(b->id(), c->id()).ok());
  EXPECT_EQ(NodeHeight(c->id()), 1);
}

// The height buckets are made when heights are set (graph.h, Schedule), not while propagating:
// a graph that grows deeper between commits, and a subtree lifted under a deeper chain, must
// still reach its deepest node. (In debug builds Schedule checks that its bucket exists.)
TEST_F(GraphTest, GraphsThatGrowDeeperBetweenCommitsPropagateToTheirDeepestNode) {
  std::vector<Page*> chain{NewPage(64)};
  for (int depth = 1; depth <= 40; ++depth) {
    chain.push_back(NewPage(64));
    const PageId parent[] = {chain[depth - 1]->id()};
    ASSERT_TRUE(AddUserEdges(parent, chain[depth]->id(), SumFn(nullptr, 1)).ok());
    WriteU32(chain[0], 1000 + depth);
    ASSERT_TRUE(commit().ok());
    for (int k = 0; k <= depth; ++k) ASSERT_EQ(ReadU32(chain[k]), 1000u + depth + k) << k;
  }
  // A separate two-level tree, then its root hung under the chain's end: every node of it moves
  // 41 levels down at once.
  Page* root = NewPage(64);
  Page* mid = NewPage(64);
  Page* leaf = NewPage(64);
  const PageId root_id[] = {root->id()};
  const PageId mid_id[] = {mid->id()};
  ASSERT_TRUE(AddUserEdges(root_id, mid->id(), SumFn(nullptr, 1)).ok());
  ASSERT_TRUE(AddUserEdges(mid_id, leaf->id(), SumFn(nullptr, 1)).ok());
  ASSERT_TRUE(commit().ok());
  const PageId end_id[] = {chain.back()->id()};
  ASSERT_TRUE(AddUserEdges(end_id, root->id(), SumFn(nullptr, 1)).ok());
  EXPECT_EQ(NodeHeight(leaf->id()), 43);
  WriteU32(chain[0], 7);
  ASSERT_TRUE(commit().ok());
  EXPECT_EQ(ReadU32(chain.back()), 47u);
  EXPECT_EQ(ReadU32(root), 48u);
  EXPECT_EQ(ReadU32(mid), 49u);
  EXPECT_EQ(ReadU32(leaf), 50u);
}

// Random DAGs: after every commit, every node equals a naive full recompute in topological order.
TEST_F(GraphTest, RandomDagMatchesNaiveFullRecompute) {
  std::mt19937 rng(2024);
  auto combine = [](std::uint32_t salt, const std::vector<std::uint32_t>& in) {
    std::uint32_t v = salt;
    for (std::uint32_t x : in) v = v * 31 + x % 7;
    return v % 11;  // a small range makes cutoffs common
  };
  for (int round = 0; round < 4; ++round) {
    StartBus({});
    constexpr int kNodes = 200, kRoots = 12;
    std::vector<Page*> pages;
    std::vector<std::vector<int>> parents(kNodes);
    std::vector<std::uint32_t> salt(kNodes, 0);
    for (int i = 0; i < kNodes; ++i) pages.push_back(NewPage(64));
    // Node i depends only on nodes < i: a DAG by construction, and index order is topological.
    for (int i = kRoots; i < kNodes; ++i) {
      const int n = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < n; ++k) {
        const int p = static_cast<int>(rng() % i);
        if (std::find(parents[i].begin(), parents[i].end(), p) == parents[i].end())
          parents[i].push_back(p);
      }
      salt[i] = rng() % 5;
      std::vector<PageId> ids;
      for (int p : parents[i]) ids.push_back(pages[p]->id());
      ASSERT_TRUE(
          AddUserEdges(ids, pages[i]->id(),
                       [&combine, s = salt[i]](std::span<const Page* const> ps, Page& child) {
                         std::vector<std::uint32_t> in;
                         for (const Page* p : ps) in.push_back(ReadU32(p));
                         WriteU32(&child, combine(s, in));
                         return Status::Ok();
                       })
              .ok());
    }
    // Pages start at zero, so a node has ever produced a delta iff it was ever non-zero at a
    // commit; a derived node is first recomputed when one of its parents first does.
    std::vector<bool> ever_changed(kNodes, false), ever_recomputed(kNodes, false);
    for (int step = 0; step < 25; ++step) {
      for (int k = 0; k < 3; ++k) WriteU32(pages[rng() % kRoots], rng() % 50);
      Commit();
      // Naive model: evaluate every derived node from scratch in index (topological) order.
      std::vector<std::uint32_t> model(kNodes, 0);
      for (int i = 0; i < kRoots; ++i) {
        model[i] = ReadU32(pages[i]);
        ever_changed[i] = ever_changed[i] || model[i] != 0;
      }
      for (int i = kRoots; i < kNodes; ++i) {
        std::vector<std::uint32_t> in;
        for (int p : parents[i]) {
          in.push_back(model[p]);
          ever_recomputed[i] = ever_recomputed[i] || ever_changed[p];
        }
        model[i] = ever_recomputed[i] ? combine(salt[i], in) : 0;
        ever_changed[i] = ever_changed[i] || model[i] != 0;
        ASSERT_EQ(ReadU32(pages[i]), model[i]) << "node " << i << " at step " << step;
      }
    }
    const Stats st = GetStats();
    EXPECT_GT(st.nodes_recomputed, 0u);
    EXPECT_GT(st.cutoffs, 0u);
  }
}

// The propagation's node layout mirrors each node's first children and single user parent in a
// one-line hot record (docs/Performance.md, "Propagation's node layout"). This checks the engine
// against a reference propagation on random DAGs whose nodes have every shape the mirror
// distinguishes (0, 1, 2 and many children; one and several user parents; copy edges, user edges
// and both), while edges come and go between commits and some commits fail in a recompute:
//  - after every successful commit each page equals the reference;
//  - the epoch's deltas applied to the previous images give the live bytes, and each delta holds
//    exactly the bytes that changed;
//  - a failed commit leaves every derived page as it was, and the next commit propagates the
//    writes the failed one did not.
TEST_F(GraphTest, RandomDagWithCopyEdgesAndEdgeChurnMatchesReferencePropagation) {
  constexpr int kNodes = 90, kRoots = 8, kSize = 64;
  using Image = std::array<std::uint8_t, kSize>;
  struct In {
    int parent;
    EdgeKind kind;
    Projection proj;
  };
  for (std::uint32_t seed : {7u, 8u, 9u}) {
    StartBus({});
    std::mt19937 rng(seed);
    std::vector<Page*> pages;
    for (int i = 0; i < kNodes; ++i) pages.push_back(NewPage(kSize));
    std::vector<std::vector<In>> ins(kNodes);    // in-edges by parent index (= page id order)
    std::vector<std::vector<int>> user(kNodes);  // the user function's parents, in call order
    int fail_node = -1;                          // this node's user function fails
    auto user_fn = [&fail_node](int node) {
      return [node, &fail_node](std::span<const Page* const> ps, Page& child) {
        if (node == fail_node) return Internal("injected recompute failure");
        std::uint32_t v = static_cast<std::uint32_t>(node);
        for (const Page* p : ps) v = v * 31 + ReadU32(p) % 13;
        WriteU32(&child, v % 5);  // few values: cutoffs are common
        WriteU32(&child, static_cast<std::uint32_t>(ps.size()), 3);
        return Status::Ok();
      };
    };
    auto pick_parent = [&](int i) {
      // A few hubs get many children (the hot record mirrors two).
      return rng() % 3 == 0 ? static_cast<int>(rng() % 4) : static_cast<int>(rng() % i);
    };
    auto random_proj = [&] {
      Projection p;
      p.length = 1 + rng() % 24;
      p.src_offset = rng() % (kSize - p.length + 1);
      p.dst_offset = rng() % (kSize - p.length + 1);
      return p;
    };
    auto add_copy = [&](int parent, int child) {
      for (const In& e : ins[child])
        if (e.parent == parent) return;
      In e{parent, rng() % 2 == 0 ? EdgeKind::kPassthrough : EdgeKind::kProjection, {}};
      Status s;
      if (e.kind == EdgeKind::kPassthrough) {
        s = AddPassthroughEdge(pages[parent]->id(), pages[child]->id());
      } else {
        e.proj = random_proj();
        s = AddProjectionEdge(pages[parent]->id(), pages[child]->id(), e.proj);
      }
      ASSERT_TRUE(s.ok()) << s.ToString();
      ins[child].push_back(e);
      std::sort(ins[child].begin(), ins[child].end(),
                [](const In& a, const In& b) { return a.parent < b.parent; });
    };
    for (int i = kRoots; i < kNodes; ++i) {
      const int shape = static_cast<int>(rng() % 3);  // copy only, user only, both
      if (shape != 1) {
        const int n = 1 + static_cast<int>(rng() % 2);
        for (int k = 0; k < n; ++k) add_copy(pick_parent(i), i);
      }
      if (shape != 0) {
        const int n = rng() % 2 == 0 ? 1 : 2 + static_cast<int>(rng() % 2);
        std::vector<PageId> ids;
        for (int k = 0; k < n; ++k) {
          const int p = pick_parent(i);
          if (std::find(user[i].begin(), user[i].end(), p) != user[i].end()) continue;
          bool copy_from_p = false;
          for (const In& e : ins[i]) copy_from_p |= e.parent == p;
          if (copy_from_p) continue;  // one edge per parent in this test
          user[i].push_back(p);
          ids.push_back(pages[p]->id());
        }
        if (!ids.empty()) ASSERT_TRUE(AddUserEdges(ids, pages[i]->id(), user_fn(i)).ok());
      }
    }
    // The committed images (what the deltas are applied to) and the reference's state.
    std::vector<Image> committed(kNodes);
    for (Image& img : committed) img.fill(0);
    auto live = [&](int i) {
      Image img;
      std::memcpy(img.data(), pages[i]->data(), kSize);
      return img;
    };
    int failed_commits = 0;
    for (int step = 0; step < 30; ++step) {
      // Edge churn: drop a random in-edge of a random node, or add a copy edge.
      for (int k = 0; k < 2; ++k) {
        const int c = kRoots + static_cast<int>(rng() % (kNodes - kRoots));
        if (rng() % 2 == 0 && !ins[c].empty()) {
          const std::size_t at = rng() % ins[c].size();
          ASSERT_TRUE(RemoveEdge(pages[ins[c][at].parent]->id(), pages[c]->id()).ok());
          ins[c].erase(ins[c].begin() + static_cast<std::ptrdiff_t>(at));
        } else if (rng() % 4 == 0 && !user[c].empty()) {
          const std::size_t at = rng() % user[c].size();
          ASSERT_TRUE(RemoveEdge(pages[user[c][at]]->id(), pages[c]->id()).ok());
          user[c].erase(user[c].begin() + static_cast<std::ptrdiff_t>(at));
        } else {
          const int p = pick_parent(c);
          if (std::find(user[c].begin(), user[c].end(), p) == user[c].end()) add_copy(p, c);
        }
      }
      for (int k = 0; k < 3; ++k) {
        Page* root = pages[rng() % kRoots];
        std::memset(rt::w(root->data() + rng() % kSize, 1), static_cast<int>(rng() % 4), 1);
      }
      // The reference: in index (topological) order, copy each changed copy-parent's changed
      // bytes in parent order, then call the user function when a user parent changed (or the
      // node has user edges only, and so was scheduled by one).
      const std::vector<Image> before = committed;
      std::vector<Image> now(kNodes);
      std::vector<int> called;  // the nodes whose user function runs
      auto reference = [&] {
        std::vector<bool> changed(kNodes, false);
        called.clear();
        for (int i = 0; i < kNodes; ++i) {
          if (i < kRoots) {
            now[i] = live(i);
            changed[i] = now[i] != before[i];
            continue;
          }
          now[i] = before[i];
          bool scheduled = false, user_changed = false;
          for (const In& e : ins[i]) scheduled |= changed[e.parent];
          for (int p : user[i]) user_changed |= changed[p];
          scheduled |= user_changed;
          if (!scheduled) continue;
          for (const In& e : ins[i]) {
            if (!changed[e.parent]) continue;
            for (std::uint32_t b = 0; b < kSize; ++b) {
              if (now[e.parent][b] == before[e.parent][b]) continue;
              if (e.kind == EdgeKind::kPassthrough) {
                now[i][b] = now[e.parent][b];
              } else if (b >= e.proj.src_offset && b < e.proj.src_offset + e.proj.length) {
                now[i][e.proj.dst_offset + (b - e.proj.src_offset)] = now[e.parent][b];
              }
            }
          }
          if (!user[i].empty() && (ins[i].empty() || user_changed)) {
            called.push_back(i);
            if (i == fail_node) return true;
            std::uint32_t v = static_cast<std::uint32_t>(i);
            for (int p : user[i]) {
              std::uint32_t x;
              std::memcpy(&x, now[p].data(), 4);
              v = v * 31 + x % 13;
            }
            const std::uint32_t w[2] = {v % 5, static_cast<std::uint32_t>(user[i].size())};
            std::memcpy(now[i].data(), &w[0], 4);
            std::memcpy(now[i].data() + 12, &w[1], 4);
          }
          changed[i] = now[i] != before[i];
        }
        return false;
      };
      // One commit in three fails in a user function the reference calls.
      fail_node = -1;
      bool fails = reference();
      if (rng() % 3 == 0 && !called.empty()) {
        fail_node = called[rng() % called.size()];
        fails = reference();
      }
      const std::size_t batches = sink->batches.size();
      auto e = commit();
      ASSERT_EQ(!e.ok(), fails) << "seed " << seed << " step " << step
                                << (e.ok() ? "" : ": " + e.status().ToString());
      if (fails) {
        EXPECT_EQ(sink->batches.size(), batches);
        for (int i = kRoots; i < kNodes; ++i)
          ASSERT_EQ(live(i), before[i]) << "derived node " << i << " after a failed commit";
        fail_node = -1;
        ++failed_commits;
        continue;  // the roots' writes are pending: the next step's commit propagates them
      }
      ASSERT_EQ(sink->batches.size(), batches + 1);
      std::vector<Image> replayed = before;
      for (const Delta& d : sink->batches.back().deltas) {
        const int i = static_cast<int>(d.page() - pages[0]->id());
        ASSERT_TRUE(i >= 0 && i < kNodes);
        std::uint32_t differing = 0;
        for (int b = 0; b < kSize; ++b) differing += now[i][b] != before[i][b];
        EXPECT_EQ(d.changed_bytes(), differing) << "node " << i << " step " << step;
        ASSERT_TRUE(d.ApplyTo(replayed[i]).ok());
      }
      for (int i = 0; i < kNodes; ++i) {
        ASSERT_EQ(live(i), now[i]) << "seed " << seed << " node " << i << " step " << step;
        ASSERT_EQ(replayed[i], now[i]) << "deltas of node " << i << " at step " << step;
      }
      committed = now;
    }
    EXPECT_GT(failed_commits, 0) << "seed " << seed << " never rolled a commit back";
  }
}

// Derived pages up to Bus::kSmallDerivedBytes take the small-page diff (one snapshot, word
// compare, the delta written in place); larger ones the general one. Either way every changed
// byte of every recompute is in the epoch's delta and nothing else is: each derived delta equals
// the exact diff of the page's previous image against its new one, and the deltas replay to the
// live bytes. The recomputes write few and many bytes (past the inline block), runs that cross
// granules, stores of the same value, and half their bytes without a barrier (a user function is
// diffed in full). The small-page diff reads and compares whole granules: each page's storage slot
// held other bytes before (a freed page of the slot's whole size), in the page and in its twin, so
// a byte past the page's size that leaked into a delta would show as a run past its end.
TEST_F(GraphTest, SmallDerivedPagesLogEveryChangedByte) {
  const std::uint32_t sizes[] = {1, 8, 40, 63, 64, 65, 100, 128, 200, 256, 257, 1000};
  {
    std::vector<Page*> junk;
    std::mt19937 rng(7);
    for (std::uint32_t size : sizes) {
      const std::uint32_t slot = std::max<std::uint32_t>(64, std::bit_ceil(size));
      junk.push_back(NewPage(slot));
      for (std::uint32_t i = 0; i < slot; ++i)
        *rt::w(junk.back()->data() + i) = std::uint8_t(rng());
    }
    Commit();
    for (Page* p : junk) ASSERT_TRUE(FreePage(p).ok());
    Commit();
  }
  Page* root = NewPage(64);
  std::vector<Page*> kids;
  for (std::uint32_t size : sizes) {
    kids.push_back(NewPage(size));
    const PageId pr[] = {root->id()};
    ASSERT_TRUE(
        AddUserEdges(pr, kids.back()->id(), [](std::span<const Page* const> ps, Page& child) {
          std::mt19937 rng(ReadU32(ps[0]));
          const std::uint32_t n = child.size();
          const int runs = 1 + static_cast<int>(rng() % 6);
          for (int r = 0; r < runs; ++r) {
            const std::uint32_t len = 1 + rng() % (r % 2 == 0 ? 70 : 8);
            const std::uint32_t off = rng() % n;
            for (std::uint32_t i = off; i < std::min(n, off + len); ++i) {
              // Every third byte keeps its value (a store of the same value).
              const std::uint8_t v = i % 3 == 0 ? child.data()[i] : std::uint8_t(rng());
              if (rng() % 2 == 0) {
                *rt::w(child.data() + i) = v;
              } else {
                child.data()[i] = v;  // no barrier
              }
            }
          }
          return Status::Ok();
        }).ok());
  }
  std::vector<std::vector<std::uint8_t>> images;
  for (std::uint32_t size : sizes) images.emplace_back(size, 0);
  for (std::uint32_t step = 1; step <= 60; ++step) {
    WriteU32(root, step * 7919);
    const std::size_t batches = sink->batches.size();
    Commit();
    ASSERT_EQ(sink->batches.size(), batches + 1);
    for (std::size_t k = 0; k < kids.size(); ++k) {
      const Page* kid = kids[k];
      const std::span<const std::uint8_t> now(kid->data(), kid->size());
      const Delta* d = nullptr;
      for (const Delta& x : sink->batches.back().deltas) {
        if (x.page() == kid->id()) d = &x;
      }
      const Delta want = DiffScalar(kid->id(), 0, images[k], now);
      if (want.empty()) {
        EXPECT_EQ(d, nullptr) << "size " << kid->size() << " step " << step;
        continue;
      }
      ASSERT_NE(d, nullptr) << "size " << kid->size() << " step " << step;
      EXPECT_EQ(d->Runs(), want.Runs()) << "size " << kid->size() << " step " << step;
      EXPECT_EQ(std::vector<std::uint8_t>(d->bytes().begin(), d->bytes().end()),
                std::vector<std::uint8_t>(want.bytes().begin(), want.bytes().end()));
      EXPECT_EQ(d->form(), want.form());
      ASSERT_TRUE(d->ApplyTo(images[k]).ok());
      ASSERT_EQ(std::memcmp(images[k].data(), kid->data(), kid->size()), 0)
          << "size " << kid->size() << " step " << step;
    }
  }
}

Status PlainPlusOne(std::span<const Page* const> parents, Page& child) {
  WriteU32(&child, ReadU32(parents[0]) + 1);
  return Status::Ok();
}

// A user function that is a plain function pointer is called through its own 8-byte slot, not the
// std::function: when the function is replaced (its edges removed, new ones added with a lambda,
// then a plain function again; and when the node's slot goes to another page), the function
// called is the one set now, never a stale pointer.
TEST_F(GraphTest, ReplacedUserFunctionIsTheOneCalledWhetherPlainOrNot) {
  Page* a = NewPage(64);
  Page* b = NewPage(64);
  Page* below = NewPage(64);
  // b keeps its node (it has a child) while its function changes.
  ASSERT_TRUE(AddPassthroughEdge(b->id(), below->id()).ok());
  const PageId pa[] = {a->id()};
  ASSERT_TRUE(AddUserEdges(pa, b->id(), PlainPlusOne).ok());
  WriteU32(a, 10);
  Commit();
  EXPECT_EQ(ReadU32(b), 11u);
  ASSERT_TRUE(RemoveEdge(a->id(), b->id()).ok());
  std::atomic<int> calls{0};
  ASSERT_TRUE(AddUserEdges(pa, b->id(), SumFn(&calls, 100)).ok());
  WriteU32(a, 20);
  Commit();
  EXPECT_EQ(ReadU32(b), 120u);
  EXPECT_EQ(calls.load(), 1);
  ASSERT_TRUE(RemoveEdge(a->id(), b->id()).ok());
  ASSERT_TRUE(AddUserEdges(pa, b->id(), PlainPlusOne).ok());
  WriteU32(a, 30);
  Commit();
  EXPECT_EQ(ReadU32(b), 31u);
  EXPECT_EQ(ReadU32(below), 31u);
  EXPECT_EQ(calls.load(), 1);
  // The nodes' slots are freed with the edges and taken by new pages, the child's with a lambda.
  ASSERT_TRUE(RemoveEdge(a->id(), b->id()).ok());
  ASSERT_TRUE(RemoveEdge(b->id(), below->id()).ok());
  Page* c = NewPage(64);
  Page* d = NewPage(64);
  const PageId pc[] = {c->id()};
  ASSERT_TRUE(AddUserEdges(pc, d->id(), SumFn(&calls, 1000)).ok());
  WriteU32(c, 5);
  Commit();
  EXPECT_EQ(ReadU32(d), 1005u);
  EXPECT_EQ(calls.load(), 2);
}

// A commit that fails after propagation (a stage) rolls the small derived pages' twins and bytes
// back: the next commit's deltas still chain from the last committed image.
TEST_F(GraphTest, SmallDerivedPageRollsBackWhenALaterStageFails) {
  struct FailingStage : CommitStage {
    const char* name() const override { return "failing"; }
    Status Process(const CommitBatch&) override {
      return fail ? Internal("stage down") : Status::Ok();
    }
    bool fail = false;
  };
  auto stage = std::make_shared<FailingStage>();
  ASSERT_TRUE(AddStage(stage).ok());
  Page* a = NewPage(64);
  Page* b = NewPage(200);
  const PageId pa[] = {a->id()};
  ASSERT_TRUE(AddUserEdges(pa, b->id(), [](std::span<const Page* const> ps, Page& child) {
                for (std::uint32_t i = 0; i < 50; ++i)
                  *rt::w(child.data() + i * 4) = std::uint8_t(ReadU32(ps[0]) + i);
                return Status::Ok();
              }).ok());
  WriteU32(a, 1);
  Commit();
  const std::vector<std::uint8_t> good(b->data(), b->data() + 200);
  const Epoch b_epoch = b->epoch();
  stage->fail = true;
  WriteU32(a, 2);
  ASSERT_FALSE(commit().ok());
  EXPECT_EQ(std::memcmp(b->data(), good.data(), 200), 0);
  EXPECT_EQ(b->epoch(), b_epoch);
  stage->fail = false;
  WriteU32(a, 3);
  Commit();
  std::vector<std::uint8_t> img = good;
  for (const Delta& d : sink->batches.back().deltas) {
    if (d.page() == b->id()) {
      EXPECT_EQ(d.base_epoch(), b_epoch);
      ASSERT_TRUE(d.ApplyTo(img).ok());
    }
  }
  EXPECT_EQ(std::memcmp(img.data(), b->data(), 200), 0);
  EXPECT_EQ(b->data()[4], std::uint8_t(3 + 1));
}

// One granule of a derived page changed three times in a commit that then fails: by the program
// (collected, saved in the undo log's entries), by its recompute (the serial loop's derived save:
// only the bytes, named by the delta's index) and by a stage (collected again, after the derived
// save). Rollback must undo them newest first: the twin back to the previous epoch's bytes, the
// recompute's bytes out of live memory, and the epoch back. Undone in another order, the twin
// keeps the program's bytes, and the next commit's deltas no longer lead from the previous
// epoch's image to the live bytes.
TEST_F(GraphTest, DerivedSaveRollsBackBetweenTheEntriesSavedBeforeAndAfterIt) {
  struct Stages : CommitStage {
    const char* name() const override { return "writes then fails"; }
    Status Process(const CommitBatch&) override {
      if (write_to != nullptr) WriteU32(write_to, 0x5757u);
      return fail ? Internal("stage down") : Status::Ok();
    }
    Page* write_to = nullptr;
    bool fail = false;
  };
  auto stage = std::make_shared<Stages>();
  ASSERT_TRUE(AddStage(stage).ok());
  Page* a = NewPage(64);
  Page* d = NewPage(64);
  const PageId pa[] = {a->id()};
  ASSERT_TRUE(AddUserEdges(pa, d->id(), [](std::span<const Page* const> ps, Page& child) {
                WriteU32(&child, ReadU32(ps[0]) + 1);
                return Status::Ok();
              }).ok());
  WriteU32(a, 10);
  Commit();
  ASSERT_EQ(ReadU32(d), 11u);
  const std::vector<std::uint8_t> good(d->data(), d->data() + 64);
  const Epoch d_epoch = d->epoch();

  stage->write_to = d;
  stage->fail = true;
  WriteU32(a, 20);
  // The program's own write to the derived page; its low byte is what the last commit's
  // recompute writes (31), so a twin left holding it hides that byte from the next delta.
  WriteU32(d, 0x1f1fu);
  ASSERT_FALSE(commit().ok());
  EXPECT_EQ(d->epoch(), d_epoch);
  // The recompute's bytes are gone from live memory; the program's are back (the stage's write
  // was over them, and the recompute's save restores what it overwrote).
  EXPECT_EQ(ReadU32(d), 0x1f1fu);

  stage->write_to = nullptr;
  stage->fail = false;
  WriteU32(a, 30);
  Commit();
  EXPECT_EQ(ReadU32(d), 31u);
  // The program's bytes (kept, and marked by the rollback) are collected from the previous epoch,
  // then the recompute's on top of them.
  std::vector<std::uint8_t> img = good;
  Epoch base = d_epoch;
  int seen = 0;
  for (const Delta& x : sink->batches.back().deltas) {
    if (x.page() != d->id()) continue;
    EXPECT_EQ(x.base_epoch(), base);
    base = sink->batches.back().epoch;
    ASSERT_TRUE(x.ApplyTo(img).ok());
    ++seen;
  }
  EXPECT_EQ(seen, 2);
  EXPECT_EQ(std::memcmp(img.data(), d->data(), 64), 0);
}

// A wide fan-out runs on the thread pool; results equal the serial semantics (and TSan checks it).
TEST_F(GraphTest, ConcurrentRecomputeOnPoolIsExact) {
  Page* root = NewPage(64);
  std::vector<Page*> kids;
  for (std::size_t i = 0; i < DependencyGraph::kParallelMinNodes + 16; ++i) {
    kids.push_back(NewPage(128));
    const PageId pr[] = {root->id()};
    ASSERT_TRUE(
        AddUserEdges(pr, kids.back()->id(), SumFn(nullptr, static_cast<std::uint32_t>(i))).ok());
  }
  for (std::uint32_t v = 1; v <= 3; ++v) {
    WriteU32(root, v * 100);
    Commit();
    for (std::size_t i = 0; i < kids.size(); ++i) ASSERT_EQ(ReadU32(kids[i]), v * 100 + i);
  }
  if (std::thread::hardware_concurrency() > 1) EXPECT_GT(GetStats().parallel_batches, 0u);
  EXPECT_EQ(sink->batches.back().deltas.size(), kids.size() + 1);
}

}  // namespace
}  // namespace mmsb
