// Fault injection through the Env seam: a workload of commits, segment rotations and checkpoints
// is stopped at every storage operation in turn (the crash point); the unsynced data is then
// dropped, kept in part, or garbled as a power cut would; the log is recovered and replayed.
// Every commit acknowledged as durable must be there, and the state must be exactly the state of
// some epoch: nothing partial is ever applied.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "mmsb/checkpoint.h"

#include "fault_env.h"
#include "log_test_util.h"

namespace mmsb {
namespace {

using testing::FaultEnv;

constexpr const char* kDir = "/disk/run.tlog";
constexpr Epoch kEpochs = 24;

using Snapshot = std::map<PageId, std::vector<std::uint8_t>>;

struct RunResult {
  Epoch acked = 0;     // last epoch whose Commit returned OK
  Epoch appended = 0;  // last epoch handed to Commit
  bool stopped = false;
};

// The deterministic workload. truth[e] is the state after epoch e.
RunResult RunWorkload(FaultEnv& env, Durability durability, std::vector<Snapshot>* truth) {
  RunResult out;
  LogOptions o;
  o.env = &env;
  o.durability = durability;
  o.segment_bytes = 2048;
  auto w = LogWriter::Open(kDir, o);
  if (!w.ok()) {
    out.stopped = true;
    return out;
  }
  std::mt19937_64 rng(11);
  testing::PageModel model;
  LogBatch b = (*w)->NewBatch();
  if (truth) truth->assign(1, Snapshot{});
  for (Epoch e = 1; e <= kEpochs; ++e) {
    model.Begin(e, &b);
    if (e == 1) model.Create(1, 300);
    if (e == 3) model.Create(2, 700);
    if (e == 9) model.Create(3, 64);
    if (e == 15) model.Free(3);
    for (const auto& [id, p] : std::map(model.pages())) model.Scribble(id, 12, rng);
    out.appended = e;
    if (truth) {
      Snapshot s;
      for (const auto& [id, p] : model.pages()) s[id] = p.bytes;
      truth->push_back(std::move(s));
    }
    if (!(*w)->Commit(b).ok()) {
      out.stopped = true;
      return out;
    }
    out.acked = e;
    if (e % 8 == 0) {
      // A checkpoint of the model's state; it retires covered segments.
      LogState st;
      st.epoch = e;
      for (const auto& [id, p] : model.pages()) {
        ReplayedPage& rp = st.pages[id];
        rp.id = id;
        rp.epoch = p.epoch;
        rp.changed = p.changed;
        rp.bytes = p.bytes;
      }
      CheckpointOptions co;
      co.env = &env;
      if (!WriteLogCheckpoint(**w, ContentsOf(st, 0), co).ok()) {
        out.stopped = true;
        return out;
      }
    }
  }
  if (!(*w)->Close().ok()) out.stopped = true;
  return out;
}

bool Same(const LogState& st, const Snapshot& want) {
  if (st.pages.size() != want.size()) return false;
  for (const auto& [id, bytes] : want) {
    const ReplayedPage* p = st.FindPage(id);
    if (p == nullptr || p->bytes != bytes) return false;
  }
  return true;
}

class FaultInjection : public ::testing::TestWithParam<Durability> {};

TEST_P(FaultInjection, EveryCrashPointRecoversEveryDurableCommitAndNothingPartial) {
  const Durability durability = GetParam();
  std::vector<Snapshot> truth;
  std::uint64_t total_ops = 0;
  {
    FaultEnv env;
    ASSERT_TRUE(env.CreateDir("/disk").ok());
    const std::uint64_t before = env.ops();
    RunResult r = RunWorkload(env, durability, &truth);
    ASSERT_FALSE(r.stopped);
    total_ops = env.ops() - before;
    auto st = testing::ReplayAll(kDir, &env);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    ASSERT_EQ(st->epoch, kEpochs);
    ASSERT_TRUE(Same(*st, truth[kEpochs]));
  }
  int crash_points = 0;
  for (std::uint64_t k = 1; k <= total_ops + 1; ++k) {
    for (FaultEnv::Tear tear : {FaultEnv::Tear::kDropUnsynced, FaultEnv::Tear::kKeepPrefix,
                                FaultEnv::Tear::kGarbleTail}) {
      FaultEnv env(k * 3 + static_cast<int>(tear));
      ASSERT_TRUE(env.CreateDir("/disk").ok());
      env.SetCrashAfter(k);
      const RunResult r = RunWorkload(env, durability, nullptr);
      env.Crash(tear);
      ++crash_points;
      SCOPED_TRACE(::testing::Message() << "crash at op " << k << " of " << total_ops << ", tear "
                                        << static_cast<int>(tear) << ", acked epoch " << r.acked);
      // Recovery never needs salvage: a crash only ever leaves a torn tail.
      LogOptions o;
      o.env = &env;
      o.durability = durability;
      auto w = LogWriter::Open(kDir, o);
      ASSERT_TRUE(w.ok()) << w.status().ToString();
      const Epoch recovered = (*w)->last_epoch();
      if (durability != Durability::kNone) {
        EXPECT_GE(recovered, r.acked) << "a commit acknowledged as durable was lost";
      }
      EXPECT_LE(recovered, r.appended);
      // The log goes on after recovery.
      LogBatch b = (*w)->NewBatch();
      ASSERT_TRUE((*w)->Commit(b).ok());
      ASSERT_TRUE((*w)->Close().ok());
      ReplayReport rep;
      ReplayOptions ro;
      ro.env = &env;
      ro.epoch = recovered;
      auto st = Replay(kDir, ro, &rep);
      ASSERT_TRUE(st.ok()) << st.status().ToString();
      EXPECT_FALSE(rep.has_errors());
      EXPECT_EQ(st->epoch, recovered);
      EXPECT_TRUE(Same(*st, truth[recovered]))
          << "replayed state is not the state of epoch " << recovered;
      ro.epoch = kLatestEpoch;
      auto last = Replay(kDir, ro);
      ASSERT_TRUE(last.ok()) << last.status().ToString();
      EXPECT_EQ(last->epoch, recovered + 1);
    }
  }
  std::printf("%s: %d crash points (%llu storage operations x 3 tear modes)\n",
              DurabilityName(durability), crash_points,
              static_cast<unsigned long long>(total_ops + 1));
}

INSTANTIATE_TEST_SUITE_P(Durabilities, FaultInjection,
                         ::testing::Values(Durability::kSync, Durability::kGroup,
                                           Durability::kNone),
                         [](const auto& info) { return std::string(DurabilityName(info.param)); });

// Group commit from several threads, crashed at random points: every epoch any thread saw
// acknowledged is recovered.
TEST(FaultInjectionGroup, ConcurrentCommittersLoseNothingAcknowledged) {
  int crash_points = 0;
  for (std::uint64_t k = 5; k < 400; k += 13) {
    FaultEnv env(k);
    ASSERT_TRUE(env.CreateDir("/disk").ok());
    LogOptions o;
    o.env = &env;
    o.durability = Durability::kGroup;
    o.segment_bytes = 4096;
    auto w = LogWriter::Open(kDir, o);
    ASSERT_TRUE(w.ok());
    env.SetCrashAfter(k);
    std::atomic<Epoch> acked{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        LogBatch b = (*w)->NewBatch();
        std::vector<std::uint8_t> payload(40 + t * 10, static_cast<std::uint8_t>(t));
        for (int i = 0; i < 100; ++i) {
          b.Clear();
          b.AddRaw(201, payload);
          auto e = (*w)->Commit(b);
          if (!e.ok()) return;
          Epoch prev = acked.load();
          while (*e > prev && !acked.compare_exchange_weak(prev, *e)) {
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    w->reset();
    env.Crash(FaultEnv::Tear::kKeepPrefix);
    ++crash_points;
    ReplayReport rep;
    auto st = testing::ReplayAll(kDir, &env, RecoveryMode::kStrict, &rep);
    ASSERT_TRUE(st.ok()) << "crash at op " << k << ": " << st.status().ToString();
    EXPECT_GE(st->epoch, acked.load()) << "crash at op " << k;
    EXPECT_FALSE(rep.has_errors());
  }
  std::printf("group commit, 4 threads: %d crash points\n", crash_points);
}

}  // namespace
}  // namespace mmsb
