// LevelDB-style corruption tests: flip, zero or truncate every byte region of a small log and
// check the damage is detected, reported with file and offset, and that nothing
// wrong is ever applied: at every epoch replay reaches, its state equals the state an oracle
// builds from exactly the epochs replay applied.
#include <functional>

#include <gtest/gtest.h>

#include "fault_env.h"
#include "log/log_format.h"
#include "log_test_util.h"

namespace mmsb {
namespace {

using testing::FaultEnv;

constexpr const char* kDir = "/db/run.tlog";
constexpr const char* kSeg = "/db/run.tlog/00000001.seg";

// The operations of one epoch, kept so an oracle can apply any subset of epochs.
struct EpochOps {
  std::vector<std::pair<PageId, std::size_t>> creates;
  std::vector<Delta> deltas;
  std::vector<PageId> frees;
};

class CorruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.CreateDir("/db").ok());
    LogOptions o;
    o.env = &env_;
    o.durability = Durability::kNone;
    auto w = LogWriter::Open(kDir, o);
    ASSERT_TRUE(w.ok());
    std::mt19937_64 rng(7);
    std::map<PageId, std::pair<std::vector<std::uint8_t>, Epoch>> pages;
    LogBatch b = (*w)->NewBatch();
    for (Epoch e = 1; e <= kEpochs; ++e) {
      EpochOps ops;
      b.Clear();
      if (e == 1 || e == 4) {
        const PageId id = e == 1 ? 1 : 2;
        ops.creates.push_back({id, 96});
        pages[id] = {std::vector<std::uint8_t>(96, 0), e - 1};
        b.AddPageCreate({id, 96, Location::kCpu, false, "", ""});
      }
      for (auto& [id, pe] : pages) {
        auto before = pe.first;
        for (int k = 0; k < 3; ++k) pe.first[rng() % 96] = static_cast<std::uint8_t>(rng() | 1);
        Delta d = Diff(id, pe.second, before, pe.first);
        if (d.empty()) continue;
        pe.second = e;
        ASSERT_TRUE(b.AddDelta(d).ok());
        ops.deltas.push_back(std::move(d));
      }
      if (e == 5) {
        ops.frees.push_back(1);
        pages.erase(1);
        b.AddPageFree(1);
      }
      ASSERT_TRUE((*w)->Commit(b).ok());
      epochs_.push_back(std::move(ops));
    }
    ASSERT_TRUE((*w)->Close().ok());
    clean_ = env_.Contents(kSeg);
  }

  // The state after applying exactly `applied` (in order) to an empty start.
  std::map<PageId, std::vector<std::uint8_t>> Oracle(const std::vector<Epoch>& applied) const {
    std::map<PageId, std::vector<std::uint8_t>> st;
    for (Epoch e : applied) {
      const EpochOps& ops = epochs_[e - 1];
      for (auto [id, size] : ops.creates) st[id].assign(size, 0);
      for (const Delta& d : ops.deltas) EXPECT_TRUE(d.ApplyTo(st.at(d.page())).ok());
      for (PageId id : ops.frees) st.erase(id);
    }
    return st;
  }

  static bool Same(const LogState& st, const std::map<PageId, std::vector<std::uint8_t>>& want) {
    if (st.pages.size() != want.size()) return false;
    for (const auto& [id, bytes] : want) {
      const ReplayedPage* p = st.FindPage(id);
      if (p == nullptr || p->bytes != bytes) return false;
    }
    return true;
  }

  struct Outcome {
    bool detected = false;  // an error, a problem, or fewer epochs than written
    bool ok = true;         // every state reached matched the oracle
    Epoch reached = 0;
    std::string error;
  };

  // Steps through the (damaged) log, checking every reached state against the oracle.
  Outcome Check(RecoveryMode mode) {
    Outcome out;
    ReplayOptions o;
    o.env = &env_;
    o.mode = mode;
    o.max_total_bytes = 1 << 20;
    auto r = Replayer::Open(kDir, o);
    if (!r.ok()) {
      out.detected = true;
      out.error = r.status().ToString();
      return out;
    }
    std::vector<Epoch> applied;
    for (;;) {
      auto more = (*r)->Step();
      if (!more.ok()) {
        out.detected = true;
        out.error = more.status().ToString();
        EXPECT_EQ(more.status().code(), StatusCode::kCorruption) << out.error;
        break;
      }
      if (!*more) break;
      applied.push_back((*r)->state().epoch);
      if (!Same((*r)->state(), Oracle(applied))) {
        out.ok = false;
        break;
      }
    }
    out.reached = (*r)->state().epoch;
    if (!(*r)->report().problems.empty() || out.reached < kEpochs || applied.size() < kEpochs)
      out.detected = true;
    return out;
  }

  // Applies `mutate` to a copy of the clean segment, then checks both modes.
  void Run(const char* what, std::size_t at,
           const std::function<void(std::vector<std::uint8_t>&)>& mutate) {
    std::vector<std::uint8_t> bytes = clean_;
    mutate(bytes);
    if (bytes == clean_) return;
    env_.SetContents(kSeg, bytes);
    for (RecoveryMode mode : {RecoveryMode::kStrict, RecoveryMode::kSalvage}) {
      ++cases_;
      const Outcome o = Check(mode);
      EXPECT_TRUE(o.ok) << what << " at " << at << ": a state that never existed was produced ("
                        << (mode == RecoveryMode::kStrict ? "strict" : "salvage") << ")";
      EXPECT_TRUE(o.detected) << what << " at " << at << " went unnoticed";
      if (!o.error.empty()) {
        EXPECT_NE(o.error.find("00000001.seg:"), std::string::npos)
            << "error does not name file:offset: " << o.error;
      }
    }
    env_.SetContents(kSeg, clean_);
  }

  static constexpr Epoch kEpochs = 6;
  FaultEnv env_;
  std::vector<EpochOps> epochs_;
  std::vector<std::uint8_t> clean_;
  int cases_ = 0;
};

TEST_F(CorruptionTest, CleanLogReplaysEveryEpoch) {
  const Outcome o = Check(RecoveryMode::kStrict);
  EXPECT_TRUE(o.ok);
  EXPECT_FALSE(o.detected) << o.error;
  EXPECT_EQ(o.reached, kEpochs);
}

TEST_F(CorruptionTest, EveryFlippedByteIsDetectedAndNothingWrongIsApplied) {
  for (std::size_t i = 0; i < clean_.size(); ++i) {
    Run("flip 0x01", i, [i](auto& b) { b[i] ^= 0x01; });
    Run("flip 0x80", i, [i](auto& b) { b[i] ^= 0x80; });
  }
  std::printf("corruption cases (flips): %d over %zu bytes\n", cases_, clean_.size());
}

TEST_F(CorruptionTest, EveryZeroedRegionIsDetectedAndNothingWrongIsApplied) {
  for (std::size_t i = 0; i < clean_.size(); ++i) {
    Run("zero 1 byte", i, [i](auto& b) { b[i] = 0; });
    Run("zero 16 bytes", i,
        [i](auto& b) { std::fill(b.begin() + i, b.begin() + std::min(i + 16, b.size()), 0); });
  }
  std::printf("corruption cases (zeroed regions): %d\n", cases_);
}

TEST_F(CorruptionTest, EveryTruncationReplaysExactlyTheCompleteEpochs) {
  // The end offsets of the commit records tell how many epochs survive a cut.
  std::vector<std::uint64_t> commit_ends;
  {
    LogReaderOptions ro;
    ro.env = &env_;
    auto r = LogReader::Open(kDir, ro);
    ASSERT_TRUE(r.ok());
    LogEntry e;
    while (*(*r)->Next(&e)) {
      if (e.type == LogRecordType::kCommit) commit_ends.push_back(e.offset + e.framed_size);
    }
  }
  ASSERT_EQ(commit_ends.size(), kEpochs);
  for (std::size_t n = 0; n < clean_.size(); ++n) {
    std::vector<std::uint8_t> cut(clean_.begin(), clean_.begin() + static_cast<std::ptrdiff_t>(n));
    env_.SetContents(kSeg, cut);
    ++cases_;
    const Epoch want = static_cast<Epoch>(
        std::upper_bound(commit_ends.begin(), commit_ends.end(), n) - commit_ends.begin());
    ReplayReport rep;
    auto st = testing::ReplayAll(kDir, &env_, RecoveryMode::kStrict, &rep);
    ASSERT_TRUE(st.ok()) << "cut at " << n
                         << ": a torn tail is not an error: " << st.status().ToString();
    EXPECT_EQ(st->epoch, want) << "cut at " << n;
    std::vector<Epoch> applied;
    for (Epoch e = 1; e <= want; ++e) applied.push_back(e);
    EXPECT_TRUE(Same(*st, Oracle(applied))) << "cut at " << n;
    EXPECT_FALSE(rep.has_errors()) << "cut at " << n;
    // Recovery by a writer cuts the same tail and continues cleanly.
    LogOptions o;
    o.env = &env_;
    auto w = LogWriter::Open(kDir, o);
    ASSERT_TRUE(w.ok()) << "cut at " << n << ": " << w.status().ToString();
    EXPECT_EQ((*w)->last_epoch(), want);
    ASSERT_TRUE((*w)->Close().ok());
    const auto children = env_.GetChildren(kDir);
    for (const std::string& name : *children) {
      if (name.ends_with(".seg")) ASSERT_TRUE(env_.RemoveFile(std::string(kDir) + "/" + name).ok());
    }
  }
  std::printf("corruption cases (truncations): %d\n", cases_);
}

}  // namespace
}  // namespace mmsb
