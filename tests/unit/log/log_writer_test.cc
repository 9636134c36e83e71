// LogWriter and LogReader: round trips, epochs, segments, durability policies, recovery, the lock.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "fault_env.h"
#include "log/log_format.h"
#include "log/segments.h"
#include "log_test_util.h"

namespace mmsb {
namespace {

using testing::FaultEnv;
using testing::PageModel;
using testing::TempDir;

std::vector<LogEntry> ReadAll(const std::string& path, Env* env = nullptr,
                              std::vector<LogProblem>* problems = nullptr) {
  LogReaderOptions o;
  o.env = env;
  auto r = LogReader::Open(path, o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  std::vector<LogEntry> out;
  if (!r.ok()) return out;
  for (;;) {
    LogEntry e;
    auto more = (*r)->Next(&e);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    e.event = {};
    e.payload = {};
    out.push_back(std::move(e));
  }
  if (problems) *problems = (*r)->problems();
  return out;
}

TEST(LogWriter, CommittedBatchesReadBackInOrderWithTheirEpochs) {
  TempDir dir;
  {
    auto w = LogWriter::Open(dir.Sub("run.tlog"));
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    LogBatch b = (*w)->NewBatch();
    b.AddPageCreate({1, 64, Location::kCpu, false, "a", ""});
    std::vector<std::uint8_t> zero(64, 0), now(64, 0);
    now[3] = 9;
    ASSERT_TRUE(b.AddDelta(Diff(1, 0, zero, now)).ok());
    auto e = (*w)->Commit(b);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    EXPECT_EQ(*e, 1u);
    b.Clear();
    b.AddPageFree(1);
    e = (*w)->Commit(b, 5);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(*e, 5u);
    EXPECT_EQ((*w)->Commit(b, 5).status().code(), StatusCode::kInvalidArgument)
        << "epochs must increase";
    ASSERT_TRUE((*w)->Close().ok());
  }
  auto entries = ReadAll(dir.Sub("run.tlog"));
  ASSERT_EQ(entries.size(), 5u);
  EXPECT_EQ(entries[0].type, LogRecordType::kPageCreate);
  EXPECT_EQ(entries[0].epoch, 1u);
  EXPECT_EQ(entries[0].page_create.name, "a");
  EXPECT_EQ(entries[1].type, LogRecordType::kDelta);
  EXPECT_EQ(entries[1].delta.changed_bytes(), 1u);
  EXPECT_EQ(entries[2].type, LogRecordType::kCommit);
  EXPECT_EQ(entries[2].commit.epoch, 1u);
  EXPECT_EQ(entries[2].commit.record_count, 2u);
  EXPECT_EQ(entries[2].commit.page_id_high, 1u);
  EXPECT_EQ(entries[3].type, LogRecordType::kPageFree);
  EXPECT_EQ(entries[3].epoch, 2u) << "records belong to the epoch after the last commit";
  EXPECT_EQ(entries[4].commit.epoch, 5u);
  EXPECT_EQ(entries[4].offset + entries[4].framed_size,
            *Env::Default()->GetFileSize(dir.Sub("run.tlog/00000001.seg")));
}

TEST(LogWriter, ReopenContinuesInANewSegmentWithLaterEpochs) {
  TempDir dir;
  const std::string log = dir.Sub("run.tlog");
  for (int run = 0; run < 3; ++run) {
    auto w = LogWriter::Open(log);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_EQ((*w)->last_epoch(), static_cast<Epoch>(run * 2));
    LogBatch b = (*w)->NewBatch();
    b.AddPageCreate({static_cast<PageId>(run + 1), 8, Location::kCpu, false, "", ""});
    ASSERT_TRUE((*w)->Commit(b).ok());
    b.Clear();
    ASSERT_TRUE((*w)->Commit(b).ok());
    EXPECT_EQ((*w)->page_id_high(), static_cast<PageId>(run + 1));
  }
  auto listing = log::ListLogDir(Env::Default(), log);
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing->segments.size(), 3u);
  auto st = testing::ReplayAll(log);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->epoch, 6u);
  EXPECT_EQ(st->pages.size(), 3u);
}

TEST(LogWriter, SegmentsRotateAtEpochBoundaries) {
  TempDir dir;
  LogOptions o;
  o.segment_bytes = 4096;
  o.durability = Durability::kNone;
  const std::string log = dir.Sub("run.tlog");
  PageModel model;
  std::mt19937_64 rng(3);
  {
    auto w = LogWriter::Open(log, o);
    ASSERT_TRUE(w.ok());
    LogBatch b = (*w)->NewBatch();
    for (Epoch e = 1; e <= 200; ++e) {
      model.Begin(e, &b);
      if (e == 1) model.Create(1, 1024);
      model.Scribble(1, 30, rng);
      ASSERT_TRUE((*w)->Commit(b).ok());
    }
    EXPECT_GT((*w)->counters().segments, 5u);
  }
  auto listing = log::ListLogDir(Env::Default(), log);
  ASSERT_TRUE(listing.ok());
  ASSERT_GT(listing->segments.size(), 5u);
  // Every segment starts with a commit boundary: its base epoch is the previous segment's last.
  std::vector<LogProblem> problems;
  auto entries = ReadAll(log, nullptr, &problems);
  EXPECT_TRUE(problems.empty());
  auto st = testing::ReplayAll(log);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->epoch, 200u);
  EXPECT_TRUE(model.Matches(*st));
}

TEST(LogWriter, SecondWriterGetsAClearErrorFromTheLockFile) {
  TempDir dir;
  const std::string log = dir.Sub("run.tlog");
  auto w = LogWriter::Open(log);
  ASSERT_TRUE(w.ok());
  auto again = LogWriter::Open(log);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("LOCK"), std::string::npos) << again.status().message();
  EXPECT_NE(again.status().message().find("locked"), std::string::npos) << again.status().message();

  // Another process is refused too, and is told the holder's pid.
  const pid_t child = fork();
  if (child == 0) {
    auto other = LogWriter::Open(log);
    const bool refused =
        !other.ok() && other.status().code() == StatusCode::kFailedPrecondition &&
        other.status().message().find(std::to_string(getppid())) != std::string::npos;
    _exit(refused ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the other process was not refused by pid";

  ASSERT_TRUE((*w)->Close().ok());
  auto after = LogWriter::Open(log);
  EXPECT_TRUE(after.ok()) << "the lock is released on close: " << after.status().ToString();
}

TEST(LogWriter, ConcurrentGroupCommitsShareFsyncs) {
  FaultEnv env;
  LogOptions o;
  o.env = &env;
  o.durability = Durability::kGroup;
  ASSERT_TRUE(env.CreateDir("/tmp").ok());
  auto w = LogWriter::Open("/tmp/log", o);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  constexpr int kThreads = 4, kPerThread = 200;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      LogBatch b = (*w)->NewBatch();
      for (int i = 0; i < kPerThread; ++i) {
        b.Clear();
        const std::uint8_t ev[] = {static_cast<std::uint8_t>(t), static_cast<std::uint8_t>(i)};
        b.AddRaw(200, ev);  // an unknown type: skipped by readers, counted in the group
        if (!(*w)->Commit(b).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  const auto c = (*w)->counters();
  EXPECT_EQ(c.commits, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_LE(c.syncs, c.commits);
  EXPECT_GE(c.syncs, 1u);
  // Every acknowledged commit survives a crash that drops what was not synced.
  const Epoch last = (*w)->last_epoch();
  w->reset();
  env.Crash(FaultEnv::Tear::kDropUnsynced);
  ReplayReport rep;
  auto st = testing::ReplayAll("/tmp/log", &env, RecoveryMode::kStrict, &rep);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->epoch, last);
  EXPECT_EQ(rep.unknown_records, static_cast<std::uint64_t>(kThreads * kPerThread));
}

// A committer is released as soon as a round's fdatasync covers its commit, without taking the
// writer's lock again: the acknowledgement must still never run ahead of the sync. A power cut
// falls at a different operation in each pass, while four threads commit; every commit any of
// them saw acknowledged replays (strict: the cut only loses a suffix), and every thread waiting
// when the writer failed got the error instead of hanging.
TEST(LogWriter, ConcurrentGroupCommitsAreAcknowledgedOnlyOnceSyncedWhereverACrashFalls) {
  for (const std::uint64_t cut : {6u, 13u, 29u, 61u, 127u}) {
    SCOPED_TRACE(cut);
    FaultEnv env(cut);
    LogOptions o;
    o.env = &env;
    o.durability = Durability::kGroup;
    ASSERT_TRUE(env.CreateDir("/d").ok());
    auto w = LogWriter::Open("/d/log", o);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    env.SetSyncDelay(std::chrono::microseconds(200));  // committers append during each sync
    env.SetCrashAfter(cut);
    constexpr int kThreads = 4, kPerThread = 400;
    std::atomic<Epoch> acknowledged{0};
    std::atomic<int> failed_threads{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        LogBatch b = (*w)->NewBatch();
        for (int i = 0; i < kPerThread; ++i) {
          b.Clear();
          const std::uint8_t ev[] = {static_cast<std::uint8_t>(t), static_cast<std::uint8_t>(i)};
          b.AddRaw(200, ev);
          auto e = (*w)->Commit(b);
          if (!e.ok()) {
            ++failed_threads;
            return;
          }
          Epoch seen = acknowledged.load();
          while (seen < *e && !acknowledged.compare_exchange_weak(seen, *e)) {
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failed_threads.load(), kThreads) << "the cut fell inside the run";
    EXPECT_GT(acknowledged.load(), Epoch{0}) << "some commits were acknowledged before the cut";
    w->reset();
    // Unsynced bytes vanish (a kept prefix could hide an acknowledgement that ran ahead).
    env.Crash(FaultEnv::Tear::kDropUnsynced);
    auto st = testing::ReplayAll("/d/log", &env, RecoveryMode::kStrict);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    EXPECT_GE(st->epoch, acknowledged.load());
  }
}

TEST(LogWriter, SyncPolicyFsyncsEveryCommitAndNoneNever) {
  for (Durability d : {Durability::kSync, Durability::kNone}) {
    FaultEnv env;
    ASSERT_TRUE(env.CreateDir("/d").ok());
    LogOptions o;
    o.env = &env;
    o.durability = d;
    auto w = LogWriter::Open("/d/log", o);
    ASSERT_TRUE(w.ok());
    LogBatch b = (*w)->NewBatch();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE((*w)->Commit(b).ok());
    EXPECT_EQ((*w)->counters().syncs, d == Durability::kSync ? 10u : 0u) << DurabilityName(d);
    // Without a sync, a crash loses the buffered commits, and recovery finds a clean earlier state.
    w->reset();
    env.Crash(FaultEnv::Tear::kDropUnsynced);
    auto st = testing::ReplayAll("/d/log", &env);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    EXPECT_EQ(st->epoch, d == Durability::kSync ? 10u : 0u);
  }
}

TEST(LogWriter, TruncatedTailIsCutOnRecovery) {
  TempDir dir;
  const std::string log = dir.Sub("run.tlog");
  const std::string seg = log + "/00000001.seg";
  std::uint64_t end_of_epoch2 = 0;
  {
    auto w = LogWriter::Open(log);
    ASSERT_TRUE(w.ok());
    LogBatch b = (*w)->NewBatch();
    b.AddPageCreate({1, 16, Location::kCpu, false, "", ""});
    ASSERT_TRUE((*w)->Commit(b).ok());
    b.Clear();
    ASSERT_TRUE((*w)->Commit(b).ok());
    end_of_epoch2 = log::kFileHeaderSize + (*w)->counters().bytes;  // the file has zeros ahead
    b.AddPageFree(1);
    ASSERT_TRUE((*w)->Commit(b).ok());
  }
  // A crash mid-write: the third epoch's group is cut 5 bytes before its end.
  const std::uint64_t full = *Env::Default()->GetFileSize(seg);
  ASSERT_EQ(truncate(seg.c_str(), static_cast<off_t>(full - 5)), 0);
  std::vector<LogProblem> problems;
  ReadAll(log, nullptr, &problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].kind, LogProblem::Kind::kTornTail);
  EXPECT_FALSE(problems[0].is_error());
  auto w = LogWriter::Open(log);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ((*w)->last_epoch(), 2u);
  ASSERT_FALSE((*w)->recovery_problems().empty());
  EXPECT_EQ(*Env::Default()->GetFileSize(seg), end_of_epoch2)
      << "recovery cuts the partial epoch too, not only the torn record";
  LogBatch b = (*w)->NewBatch();
  ASSERT_TRUE((*w)->Commit(b).ok());
  ASSERT_TRUE((*w)->Close().ok());
  problems.clear();
  ReadAll(log, nullptr, &problems);
  EXPECT_TRUE(problems.empty()) << problems[0].ToString();
  auto st = testing::ReplayAll(log);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->epoch, 3u);
  EXPECT_EQ(st->pages.size(), 1u) << "the free in the cut epoch never happened";
}

// A durable writer appends into zeros it wrote ahead (so fdatasync journals no size change); a
// reader of the live segment takes them as its end, and Close cuts them.
TEST(LogWriter, DurableSegmentIsWrittenIntoZerosAheadAndCutAtClose) {
  TempDir dir;
  const std::string log = dir.Sub("run.tlog");
  const std::string seg = log + "/00000001.seg";
  auto w = LogWriter::Open(log);  // Durability::kGroup
  ASSERT_TRUE(w.ok());
  LogBatch b = (*w)->NewBatch();
  for (int i = 0; i < 3; ++i) {
    b.Clear();
    b.AddPageCreate({static_cast<PageId>(i + 1), 16, Location::kCpu, false, "", ""});
    ASSERT_TRUE((*w)->Commit(b).ok());
  }
  const std::uint64_t data = log::kFileHeaderSize + (*w)->counters().bytes;
  EXPECT_GE(*Env::Default()->GetFileSize(seg), data + (std::uint64_t{1} << 20))
      << "zeros written ahead of the appends";
  std::vector<LogProblem> problems;
  const auto live = ReadAll(log, nullptr, &problems);
  EXPECT_EQ(live.size(), 6u);
  EXPECT_TRUE(problems.empty()) << problems[0].ToString();
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_EQ(*Env::Default()->GetFileSize(seg), data);
}

// A crash leaves the zeros behind: recovery takes them as the end of the log, reports nothing,
// and loses no committed epoch.
TEST(LogWriter, ZeroTailLeftByACrashIsTheEndOfTheLogNotDamage) {
  TempDir dir;
  const std::string log = dir.Sub("run.tlog");
  const std::string copy = dir.Sub("copy.tlog");
  std::uint64_t data = 0;
  {
    auto w = LogWriter::Open(log);
    ASSERT_TRUE(w.ok());
    LogBatch b = (*w)->NewBatch();
    for (int i = 0; i < 4; ++i) {
      b.Clear();
      b.AddPageCreate({static_cast<PageId>(i + 1), 16, Location::kCpu, false, "", ""});
      ASSERT_TRUE((*w)->Commit(b).ok());
    }
    data = log::kFileHeaderSize + (*w)->counters().bytes;
    // The process dies here: what is on disk is the segment with its zeros.
    std::filesystem::create_directories(copy);
    std::filesystem::copy_file(log + "/00000001.seg", copy + "/00000001.seg");
  }
  ASSERT_GT(*Env::Default()->GetFileSize(copy + "/00000001.seg"), data);
  auto w = LogWriter::Open(copy);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ((*w)->last_epoch(), 4u);
  EXPECT_TRUE((*w)->recovery_problems().empty()) << (*w)->recovery_problems()[0].ToString();
  EXPECT_EQ(*Env::Default()->GetFileSize(copy + "/00000001.seg"), data);
  ASSERT_TRUE((*w)->Close().ok());
  auto st = testing::ReplayAll(copy);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->epoch, 4u);
  EXPECT_EQ(st->pages.size(), 4u);
}

// Zeros are the end only when nothing valid follows them: a zeroed stretch with records after it
// is damage (strict open refuses, naming the offset), never a silent end of the log.
TEST(LogWriter, ZerosFollowedByAValidRecordAreCorruption) {
  TempDir dir;
  const std::string log = dir.Sub("run.tlog");
  const std::string seg = log + "/00000001.seg";
  std::uint64_t end_of_epoch1 = 0, end_of_epoch2 = 0;
  {
    auto w = LogWriter::Open(log);
    ASSERT_TRUE(w.ok());
    LogBatch b = (*w)->NewBatch();
    for (int i = 0; i < 3; ++i) {
      b.Clear();
      b.AddPageCreate({static_cast<PageId>(i + 1), 16, Location::kCpu, false, "", ""});
      ASSERT_TRUE((*w)->Commit(b).ok());
      if (i == 0) end_of_epoch1 = log::kFileHeaderSize + (*w)->counters().bytes;
      if (i == 1) end_of_epoch2 = log::kFileHeaderSize + (*w)->counters().bytes;
    }
  }
  // Epoch 2's records become zeros; epoch 3 follows them.
  std::FILE* f = std::fopen(seg.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  std::fseek(f, static_cast<long>(end_of_epoch1), SEEK_SET);
  for (std::uint64_t i = end_of_epoch1; i < end_of_epoch2; ++i) std::fputc(0, f);
  std::fclose(f);

  std::vector<LogProblem> problems;
  LogReaderOptions ro;
  ro.mode = RecoveryMode::kSalvage;
  auto r = LogReader::Open(log, ro);
  ASSERT_TRUE(r.ok());
  std::vector<Epoch> commits;
  for (;;) {
    LogEntry e;
    auto more = (*r)->Next(&e);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    if (e.type == LogRecordType::kCommit) commits.push_back(e.commit.epoch);
  }
  EXPECT_EQ(commits, (std::vector<Epoch>{1, 3}));
  ASSERT_EQ((*r)->problems().size(), 1u);
  EXPECT_EQ((*r)->problems()[0].kind, LogProblem::Kind::kCorruption);
  EXPECT_EQ((*r)->problems()[0].offset, end_of_epoch1);
  EXPECT_EQ((*r)->problems()[0].length, end_of_epoch2 - end_of_epoch1);

  auto strict = LogWriter::Open(log);
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.status().code(), StatusCode::kCorruption);
}

TEST(LogWriter, CorruptionBeforeTheEndRefusesStrictOpenAndSalvageContinues) {
  TempDir dir;
  const std::string log = dir.Sub("run.tlog");
  const std::string seg = log + "/00000001.seg";
  {
    auto w = LogWriter::Open(log);
    ASSERT_TRUE(w.ok());
    LogBatch b = (*w)->NewBatch();
    for (int i = 0; i < 5; ++i) {
      b.Clear();
      b.AddPageCreate({static_cast<PageId>(i + 1), 16, Location::kCpu, false, "", ""});
      ASSERT_TRUE((*w)->Commit(b).ok());
    }
  }
  // Flip a byte inside the second record (first epoch's commit record).
  std::FILE* f = std::fopen(seg.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  const long at = static_cast<long>(log::kFileHeaderSize + 70);
  std::fseek(f, at, SEEK_SET);
  const int c = std::fgetc(f);
  std::fseek(f, at, SEEK_SET);
  std::fputc(c ^ 0x40, f);
  std::fclose(f);

  auto strict = LogWriter::Open(log);
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.status().code(), StatusCode::kCorruption);
  EXPECT_NE(strict.status().message().find("00000001.seg:"), std::string::npos)
      << strict.status().message();

  LogOptions o;
  o.recovery = RecoveryMode::kSalvage;
  auto salvage = LogWriter::Open(log, o);
  ASSERT_TRUE(salvage.ok()) << salvage.status().ToString();
  EXPECT_EQ((*salvage)->last_epoch(), 5u);
  ASSERT_TRUE((*salvage)->Close().ok());

  ReplayReport rep;
  auto st = testing::ReplayAll(log, nullptr, RecoveryMode::kSalvage, &rep);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->epoch, 5u);
  EXPECT_EQ(rep.epochs_dropped, 1u);
  EXPECT_EQ(st->pages.size(), 4u) << "epoch 1 (page 1) was damaged and dropped whole";
  EXPECT_EQ(st->FindPage(1), nullptr);
}

TEST(LogWriter, EventsReadBackInOrderWithTheirEpochs) {
  TempDir dir;
  const std::string log = dir.Sub("run.tlog");
  {
    auto w = LogWriter::Open(log);
    ASSERT_TRUE(w.ok());
    LogBatch b = (*w)->NewBatch();
    const std::uint8_t in_batch[] = {1, 1};
    b.AddEvent(1, in_batch);
    ASSERT_TRUE((*w)->Commit(b).ok());
    const std::uint8_t after[] = {1, 2};
    ASSERT_TRUE((*w)->AppendEvent(1, after).ok());
    const std::uint8_t next[] = {2, 1};
    ASSERT_TRUE((*w)->AppendEvent(2, next).ok());  // epoch 2 is never committed
    ASSERT_TRUE((*w)->Close().ok());
  }
  ReplayOptions o;
  o.collect_events = true;
  ReplayReport rep;
  auto st = Replay(log, o, &rep);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  ASSERT_EQ(rep.events.size(), 2u);
  EXPECT_EQ(rep.events[0].epoch, 1u);
  EXPECT_EQ(rep.events[0].bytes, (std::vector<std::uint8_t>{1, 1}));
  EXPECT_EQ(rep.events[1].bytes, (std::vector<std::uint8_t>{1, 2}));
  // Reopening keeps the standalone event of the committed epoch and cuts the uncommitted one.
  auto w = LogWriter::Open(log);
  ASSERT_TRUE(w.ok());
  LogBatch b = (*w)->NewBatch();
  ASSERT_TRUE((*w)->Commit(b).ok());
  ASSERT_TRUE((*w)->Close().ok());
  rep = {};
  st = Replay(log, o, &rep);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(rep.events.size(), 2u)
      << "the event of epoch 2 was written before epoch 2 was committed";
}

TEST(LogReader, UnknownRecordTypesAreSkippedAndCounted) {
  TempDir dir;
  const std::string log = dir.Sub("run.tlog");
  {
    auto w = LogWriter::Open(log);
    ASSERT_TRUE(w.ok());
    LogBatch b = (*w)->NewBatch();
    b.AddPageCreate({1, 8, Location::kCpu, false, "", ""});
    const std::uint8_t future[] = {1, 2, 3};
    b.AddRaw(42, future);
    ASSERT_TRUE((*w)->Commit(b).ok());
  }
  ReplayReport rep;
  auto st = testing::ReplayAll(log, nullptr, RecoveryMode::kStrict, &rep);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->epoch, 1u);
  EXPECT_EQ(st->pages.size(), 1u);
  EXPECT_EQ(rep.unknown_records, 1u);
  EXPECT_FALSE(rep.has_errors());
}

TEST(LogReader, MissingSegmentIsReportedByName) {
  TempDir dir;
  LogOptions o;
  o.segment_bytes = 4096;
  const std::string log = dir.Sub("run.tlog");
  {
    auto w = LogWriter::Open(log, o);
    ASSERT_TRUE(w.ok());
    LogBatch b = (*w)->NewBatch();
    std::vector<std::uint8_t> big(3000, 7);
    for (int i = 0; i < 6; ++i) {
      b.Clear();
      b.AddRaw(200, big);
      ASSERT_TRUE((*w)->Commit(b).ok());
    }
  }
  ASSERT_EQ(std::remove((log + "/00000002.seg").c_str()), 0);
  auto st = testing::ReplayAll(log);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), StatusCode::kCorruption);
  EXPECT_NE(st.status().message().find("00000003.seg"), std::string::npos) << st.status().message();
  EXPECT_NE(st.status().message().find("missing"), std::string::npos) << st.status().message();
}

}  // namespace
}  // namespace mmsb
