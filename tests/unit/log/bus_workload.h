// A random workload on the running bus, for tests that compare a live state with a replayed or
// replicated one: writes (sparse and dense), page creates and frees, and a recompute-on-replay
// passthrough edge, deterministic for a seed.
#pragma once

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "mmsb/mmsb.h"

namespace mmsb::testing {

class BusWorkload {
 public:
  explicit BusWorkload(std::uint32_t seed, std::size_t page_bytes = 4096)
      : rng_(seed), page_bytes_(page_bytes) {}

  // Creates the first pages and the edge; call after start() and AttachLog().
  void Setup() {
    for (int i = 0; i < 4; ++i) NewPage();
    auto parent = CreatePage(page_bytes_, {Location::kCpu, nullptr, "parent", true});
    auto child = CreatePage(page_bytes_, {Location::kCpu, nullptr, "child", true});
    ASSERT_TRUE(parent.ok() && child.ok());
    parent_ = *parent;
    EdgeOptions eo;
    eo.policy = DerivedPolicy::kRecomputeOnReplay;
    ASSERT_TRUE(AddPassthroughEdge((*parent)->id(), (*child)->id(), eo).ok());
  }

  // One epoch's changes (not committed). `bytes` is about how many bytes change.
  void Mutate(std::size_t bytes = 64) {
    std::uniform_int_distribution<int> what(0, 99);
    const int w = what(rng_);
    if (w < 3 && pages_.size() < 16) {
      NewPage();
    } else if (w < 5 && pages_.size() > 2) {
      const std::size_t k = Pick(pages_.size());
      ASSERT_TRUE(FreePage(pages_[k]).ok());
      pages_.erase(pages_.begin() + static_cast<std::ptrdiff_t>(k));
    }
    Write(parent_, bytes / 4);
    std::size_t left = bytes;
    while (left > 0 && !pages_.empty()) {
      const std::size_t n = std::min<std::size_t>(left, 1 + Pick(32));
      Write(pages_[Pick(pages_.size())], n);
      left -= n;
    }
  }

  Expected<Epoch> Step(std::size_t bytes = 64) {
    Mutate(bytes);
    return commit();
  }

 private:
  std::size_t Pick(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
  }
  void NewPage() {
    auto p = CreatePage(page_bytes_, {Location::kCpu, nullptr, fmt::format("p{}", next_++), true});
    ASSERT_TRUE(p.ok());
    pages_.push_back(*p);
  }
  void Write(Page* p, std::size_t n) {
    n = std::min(n, p->size());
    const std::size_t off = Pick(p->size() - n + 1);
    std::uint8_t* at = rt::w(p->data() + off, n);
    for (std::size_t i = 0; i < n; ++i) at[i] = static_cast<std::uint8_t>(rng_());
  }

  std::mt19937 rng_;
  std::size_t page_bytes_;
  std::vector<Page*> pages_;
  Page* parent_ = nullptr;
  int next_ = 0;
};

}  // namespace mmsb::testing
