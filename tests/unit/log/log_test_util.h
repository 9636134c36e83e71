// Helpers shared by the log tests: temporary directories, deltas, and a byte-level model of pages
// that a replay must reproduce.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/log.h"
#include "mmsb/replay.h"

#include "temp_dir.h"

namespace mmsb::testing {

// Pages as plain byte vectors: the truth a replay is compared with. Each epoch's changes become
// a LogBatch with properly chained deltas.
class PageModel {
 public:
  struct Page {
    std::vector<std::uint8_t> bytes;
    Epoch epoch = 0;  // last change, or creation epoch - 1
    bool changed = false;
  };

  // Starts the batch for `epoch` (the next to be committed).
  void Begin(Epoch epoch, LogBatch* batch) {
    epoch_ = epoch;
    batch_ = batch;
    batch_->Clear();
  }
  void Create(PageId id, std::size_t size) {
    pages_[id] = {std::vector<std::uint8_t>(size, 0), epoch_ - 1, false};
    batch_->AddPageCreate({id, size, Location::kCpu, false, "", ""});
  }
  void Free(PageId id) {
    pages_.erase(id);
    batch_->AddPageFree(id);
  }
  // Writes `n` random bytes at random offsets of page `id` and logs the exact delta.
  void Scribble(PageId id, int n, std::mt19937_64& rng) {
    Page& p = pages_.at(id);
    std::vector<std::uint8_t> before = p.bytes;
    for (int i = 0; i < n; ++i) p.bytes[rng() % p.bytes.size()] = static_cast<std::uint8_t>(rng());
    Delta d = Diff(id, p.epoch, before, p.bytes);
    if (d.empty()) return;
    EXPECT_TRUE(batch_->AddDelta(d).ok());
    p.epoch = epoch_;
    p.changed = true;
  }
  const std::map<PageId, Page>& pages() const { return pages_; }

  // True when `st` holds exactly these pages and bytes.
  ::testing::AssertionResult Matches(const LogState& st) const {
    if (st.pages.size() != pages_.size()) {
      return ::testing::AssertionFailure()
             << "replayed " << st.pages.size() << " pages, model has " << pages_.size();
    }
    for (const auto& [id, p] : pages_) {
      const ReplayedPage* r = st.FindPage(id);
      if (r == nullptr) return ::testing::AssertionFailure() << "page " << id << " missing";
      if (r->bytes != p.bytes)
        return ::testing::AssertionFailure() << "page " << id << " bytes differ";
    }
    return ::testing::AssertionSuccess();
  }

 private:
  std::map<PageId, Page> pages_;
  Epoch epoch_ = 0;
  LogBatch* batch_ = nullptr;
};

// Replays everything the log holds (strict unless told otherwise).
inline Expected<LogState> ReplayAll(const std::string& dir, Env* env = nullptr,
                                    RecoveryMode mode = RecoveryMode::kStrict,
                                    ReplayReport* report = nullptr) {
  ReplayOptions o;
  o.env = env;
  o.mode = mode;
  o.max_total_bytes = std::uint64_t{1} << 30;
  return Replay(dir, o, report);
}

}  // namespace mmsb::testing
