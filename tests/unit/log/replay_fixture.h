// The bus-level replay fixture shared by replay_test and checkpoint_test: a bus with a log
// sink, a random workload (writes, creates, frees, graph edges with propagation) and the live
// state's fingerprint after every commit, for comparison with a replayed state.
#pragma once

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/mmsb.h"

#include "log_test_util.h"

namespace mmsb::testing {

// What the live bus looked like after one commit.
struct Fingerprint {
  std::map<PageId, std::uint64_t> pages;  // xxh3 of the bytes
  std::vector<std::pair<PageId, PageId>> edges;
};

inline Fingerprint Live() {
  Fingerprint f;
  for (const PageInfo& info : ListPages()) {
    Page* p = FindPage(info.id);
    f.pages[info.id] = XXH3_64bits(p->data(), p->size());
  }
  for (const EdgeInfo& e : ListEdges()) f.edges.push_back({e.parent, e.child});
  return f;
}

inline Fingerprint Of(const LogState& st) {
  Fingerprint f;
  for (const auto& [id, p] : st.pages) f.pages[id] = XXH3_64bits(p.bytes.data(), p.bytes.size());
  for (const EdgeInfo& e : st.edges) f.edges.push_back({e.parent, e.child});
  return f;
}

inline bool operator==(const Fingerprint& a, const Fingerprint& b) {
  return a.pages == b.pages && a.edges == b.edges;
}

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override { StartBus(); }
  void TearDown() override {
    sink_.reset();
    stop();
  }
  void StartBus() {
    Options o;
    o.arena_bytes = std::size_t{1} << 30;
    o.propagation_threads = 1;
    ASSERT_TRUE(start(o).ok());
  }
  void Attach(LogOptions o = {}) {
    auto s = AttachLog(log_, o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    sink_ = *s;
  }
  Epoch Commit() {
    auto e = commit();
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? *e : 0;
  }

  // Runs `epochs` more random commits; live_[e] is the live fingerprint after epoch e.
  void RandomWorkload(int epochs, std::uint64_t seed, std::uint64_t* deltas = nullptr) {
    std::mt19937_64 rng(seed);
    auto create = [&]() {
      static const std::size_t sizes[] = {64, 200, 1024, 4096, 4096, 8192};
      auto p = CreatePage(sizes[rng() % 6]);
      EXPECT_TRUE(p.ok());
      pages_.push_back(*p);
    };
    if (pages_.empty()) {
      for (int i = 0; i < 150; ++i) create();
    }
    if (live_.empty()) live_.resize(current_epoch() + 1);
    const std::uint64_t deltas_before = GetStats().deltas;
    for (int i = 0; i < epochs; ++i) {
      const int writes = 10 + static_cast<int>(rng() % 60);
      for (int k = 0; k < writes; ++k) {
        Page* p = pages_[rng() % pages_.size()];
        const std::size_t off = rng() % (p->size() - 7);
        const std::uint64_t v = rng();
        std::memcpy(rt::w(p->data() + off, 8), &v, rng() % 8 + 1);
      }
      if (rng() % 5 == 0) create();
      if (rng() % 7 == 0 && pages_.size() > 20) {
        const std::size_t k = rng() % pages_.size();
        EXPECT_TRUE(FreePage(pages_[k]).ok());
        pages_.erase(pages_.begin() + static_cast<std::ptrdiff_t>(k));
      }
      if (rng() % 6 == 0) {
        // A passthrough or projection edge between two pages, when it fits and closes no cycle.
        Page* a = pages_[rng() % pages_.size()];
        Page* b = pages_[rng() % pages_.size()];
        if (a != b) {
          if (a->size() == b->size() && rng() % 2) {
            (void)AddPassthroughEdge(a->id(), b->id());
          } else {
            const auto len = static_cast<std::uint32_t>(std::min(a->size(), b->size()) / 2);
            (void)AddProjectionEdge(a->id(), b->id(), {0, len, 0});
          }
        }
      }
      if (rng() % 9 == 0) {
        auto edges = ListEdges();
        if (!edges.empty()) {
          const EdgeInfo& x = edges[rng() % edges.size()];
          EXPECT_TRUE(RemoveEdge(x.parent, x.child).ok());
        }
      }
      const Epoch e = Commit();
      EXPECT_EQ(e, live_.size());
      live_.push_back(Live());
    }
    if (deltas) *deltas = GetStats().deltas - deltas_before;
  }

  std::vector<Page*> pages_;
  std::vector<Fingerprint> live_;
  TempDir dir_;
  std::string log_ = dir_.Sub("run.tlog");
  std::shared_ptr<LogSink> sink_;
};

}  // namespace mmsb::testing
