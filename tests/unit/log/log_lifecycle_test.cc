// State that outlives a crash, a fork, a change of code or the disk's patience (issue 15):
// retention and compaction, a forked child, restore into a changed layout, and sizing the arena
// from the environment. (The leftovers of an interrupted checkpoint: checkpoint_test.)
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "mmsb/checkpoint.h"
#include "mmsb/mmsb.h"

#include "log_test_util.h"

namespace mmsb {
namespace {

namespace fs = std::filesystem;

int CountFiles(const std::string& dir, const std::string& suffix) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    n += e.path().filename().string().ends_with(suffix);
  return n;
}

// The POSIX file system with a clock the test sets: checkpoints taken "hours apart" in a test
// that runs for milliseconds.
class ClockEnv final : public Env {
 public:
  std::uint64_t now = std::uint64_t{1'800'000'000} * 1'000'000'000;  // 2027
  std::uint64_t NowUnixNanos() override { return now; }
  void Advance(std::chrono::seconds s) {
    now += static_cast<std::uint64_t>(s.count()) * 1'000'000'000;
  }

  Expected<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& p) override {
    return base_->NewWritableFile(p);
  }
  Expected<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& p) override {
    return base_->NewRandomAccessFile(p);
  }
  Expected<std::unique_ptr<RandomAccessFile>> NewMappedFile(const std::string& p) override {
    return base_->NewMappedFile(p);
  }
  bool FileExists(const std::string& p) override { return base_->FileExists(p); }
  bool IsDirectory(const std::string& p) override { return base_->IsDirectory(p); }
  Expected<std::vector<std::string>> GetChildren(const std::string& d) override {
    return base_->GetChildren(d);
  }
  Expected<std::uint64_t> GetFileSize(const std::string& p) override {
    return base_->GetFileSize(p);
  }
  Status CreateDir(const std::string& d) override { return base_->CreateDir(d); }
  Status RemoveFile(const std::string& p) override { return base_->RemoveFile(p); }
  Status RenameFile(const std::string& f, const std::string& t) override {
    return base_->RenameFile(f, t);
  }
  Status TruncateFile(const std::string& p, std::uint64_t n) override {
    return base_->TruncateFile(p, n);
  }
  Status SyncDir(const std::string& d) override { return base_->SyncDir(d); }
  Expected<std::unique_ptr<FileLock>> LockFile(const std::string& p) override {
    return base_->LockFile(p);
  }

 private:
  Env* base_ = Env::Default();
};

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override { StartBus(); }
  void TearDown() override {
    sink_.reset();
    stop();
    ::unsetenv("MMSB_ARENA_BYTES");
  }
  void StartBus() {
    Options o;
    o.arena_bytes = std::size_t{1} << 28;
    o.propagation_threads = 1;
    ASSERT_TRUE(start(o).ok());
  }
  void Attach(LogOptions o = {}) {
    auto s = AttachLog(log_, o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    sink_ = *s;
  }

  testing::TempDir dir_;
  std::string log_ = dir_.Sub("run.tlog");
  std::shared_ptr<LogSink> sink_;
};

TEST_F(LifecycleTest, RetentionKeepsTheNewestCheckpointsAndDropsTheSegmentsBehindThem) {
  LogOptions o;
  o.segment_bytes = 4096;  // a new segment every few commits
  o.retention.keep_checkpoints = 3;
  Attach(o);
  Page* p = *CreatePage(2048);
  std::vector<Epoch> checkpoints;
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < 4; ++i) {
      for (int b = 0; b < 2048; b += 64)
        *rt::w(&p->data()[b]) = static_cast<std::uint8_t>(round + i + b);
      ASSERT_TRUE(commit().ok());
    }
    auto c = sink_->Checkpoint();
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    checkpoints.push_back(*c);
  }
  const Epoch last = sink_->LogEpoch(*commit());
  ASSERT_TRUE(sink_->Close().ok());
  EXPECT_EQ(CountFiles(log_, ".ckpt"), 3);
  // The oldest kept checkpoint is where replay starts; every epoch from there replays.
  ReplayOptions ro;
  ro.epoch = checkpoints[3];
  auto st = Replay(log_, ro);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  ro.epoch = last;
  ASSERT_TRUE(Replay(log_, ro).ok());
  ro.epoch = checkpoints[1];
  EXPECT_FALSE(Replay(log_, ro).ok()) << "behind the oldest kept checkpoint: retired";

  // The CLI's compaction with a byte budget: down to one checkpoint, fewer segments, and the
  // newest epochs still replay.
  const int segments_before = CountFiles(log_, ".seg");
  RetentionPolicy tight;
  tight.keep_checkpoints = 3;
  tight.max_bytes = 1;
  auto c = CompactLog(log_, tight);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->checkpoints_removed, 2u);
  EXPECT_EQ(c->oldest_checkpoint, checkpoints.back());
  EXPECT_LT(c->bytes_after, c->bytes_before);
  EXPECT_EQ(CountFiles(log_, ".ckpt"), 1);
  EXPECT_EQ(CountFiles(log_, ".seg"), segments_before - static_cast<int>(c->segments_removed));
  EXPECT_GT(c->segments_removed, 0u);
  ro.epoch = last;
  auto again = Replay(log_, ro);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->epoch, last);
}

// Writes a log with `rounds` checkpoints taken an hour apart by `clock` (4 epochs each, small
// segments), the newest at clock.now; returns the checkpoints' epochs and the last epoch.
std::vector<Epoch> WriteHourlyCheckpoints(const std::string& dir, ClockEnv& clock, int rounds,
                                          const RetentionPolicy& retention, Epoch* last) {
  LogOptions o;
  o.env = &clock;
  o.segment_bytes = 1024;  // a new segment every epoch or two
  o.retention = retention;
  auto w = LogWriter::Open(dir, o);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  if (!w.ok()) return {};
  std::mt19937_64 rng(5);
  testing::PageModel model;
  LogBatch b = (*w)->NewBatch();
  std::vector<Epoch> checkpoints;
  Epoch e = 0;
  for (int round = 0; round < rounds; ++round) {
    if (round > 0) clock.Advance(std::chrono::hours(1));
    for (int i = 0; i < 4; ++i) {
      model.Begin(++e, &b);
      if (e == 1) model.Create(1, 4096);
      model.Scribble(1, 100, rng);
      EXPECT_TRUE((*w)->Commit(b).ok());
    }
    LogState st;
    st.epoch = e;
    st.unix_nanos = clock.now;
    for (const auto& [id, pg] : model.pages()) {
      ReplayedPage& rp = st.pages[id];
      rp.id = id;
      rp.epoch = pg.epoch;
      rp.changed = pg.changed;
      rp.bytes = pg.bytes;
    }
    CheckpointOptions co;
    co.env = &clock;
    auto c = WriteLogCheckpoint(**w, ContentsOf(st, 0), co);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    checkpoints.push_back(e);
  }
  model.Begin(++e, &b);
  model.Scribble(1, 100, rng);
  EXPECT_TRUE((*w)->Commit(b).ok());
  *last = e;
  EXPECT_TRUE((*w)->Close().ok());
  return checkpoints;
}

TEST_F(LifecycleTest, RetentionByAgeKeepsTheCheckpointsYoungerThanTheBudget) {
  ClockEnv clock;
  RetentionPolicy keep_all;
  keep_all.keep_checkpoints = 100;
  Epoch last = 0;
  const std::vector<Epoch> checkpoints = WriteHourlyCheckpoints(log_, clock, 5, keep_all, &last);
  ASSERT_EQ(checkpoints.size(), 5u);
  ASSERT_EQ(CountFiles(log_, ".ckpt"), 5);

  // 2.5 hours keeps the checkpoints taken 0, 1 and 2 hours ago.
  RetentionPolicy by_age = keep_all;
  by_age.max_age = std::chrono::minutes(150);
  auto c = CompactLog(log_, by_age, &clock);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->checkpoints_removed, 2u);
  EXPECT_GT(c->segments_removed, 0u);
  EXPECT_EQ(c->oldest_checkpoint, checkpoints[2]);
  EXPECT_EQ(CountFiles(log_, ".ckpt"), 3);
  ReplayOptions ro;
  ro.epoch = checkpoints[2];
  ASSERT_TRUE(Replay(log_, ro).ok());
  ro.epoch = last;
  auto st = Replay(log_, ro);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->epoch, last);
  ro.epoch = checkpoints[1];
  EXPECT_FALSE(Replay(log_, ro).ok()) << "older than the age budget: retired";

  // A day later every checkpoint is too old, and the newest one is kept all the same.
  clock.Advance(std::chrono::hours(24));
  c = CompactLog(log_, by_age, &clock);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->checkpoints_removed, 2u);
  EXPECT_EQ(c->oldest_checkpoint, checkpoints.back());
  EXPECT_EQ(CountFiles(log_, ".ckpt"), 1);
  ro.epoch = last;
  ASSERT_TRUE(Replay(log_, ro).ok());
}

TEST_F(LifecycleTest, WriterAppliesTheAgeBudgetAtEachCheckpoint) {
  ClockEnv clock;
  RetentionPolicy retention;
  retention.keep_checkpoints = 100;
  retention.max_age = std::chrono::minutes(90);
  Epoch last = 0;
  const std::vector<Epoch> checkpoints = WriteHourlyCheckpoints(log_, clock, 4, retention, &last);
  ASSERT_EQ(checkpoints.size(), 4u);
  EXPECT_EQ(CountFiles(log_, ".ckpt"), 2) << "taken 0 and 1 hour ago";
  ReplayOptions ro;
  ro.epoch = checkpoints[2];
  EXPECT_TRUE(Replay(log_, ro).ok());
  ro.epoch = last;
  EXPECT_TRUE(Replay(log_, ro).ok());
}

TEST_F(LifecycleTest, CompactionWaitsForNoWriter) {
  Attach();
  Page* p = *CreatePage(64);
  *rt::w(&p->data()[0]) = 1;
  ASSERT_TRUE(sink_->Checkpoint().ok());
  auto c = CompactLog(log_);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(c.status().message().find("LOCK"), std::string::npos) << c.status().ToString();
}

TEST_F(LifecycleTest, ForkedChildNeverAppendsToItsParentsLog) {
  Attach();
  Page* p = *CreatePage(256);
  *rt::w(&p->data()[0]) = 1;
  ASSERT_TRUE(commit().ok());
  *rt::w(&p->data()[1]) = 2;  // written, not yet committed: in the child's memory too
  const auto size_before = fs::file_size(log_ + "/00000001.seg");
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child's commit is refused, and closing the inherited sink only detaches it.
    auto e = commit();
    const bool refused = !e.ok() && e.status().code() == StatusCode::kFailedPrecondition &&
                         e.status().message().find("fork") != std::string::npos;
    const bool closed = sink_->Close().ok();
    _exit(refused && closed ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child's commit was not refused";
  EXPECT_EQ(fs::file_size(log_ + "/00000001.seg"), size_before) << "the child appended";
  // The parent goes on as if nothing happened.
  ASSERT_TRUE(commit().ok());
  ASSERT_TRUE(sink_->Close().ok());
  auto st = Replay(log_);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->epoch, 2u);
  EXPECT_EQ(st->pages.begin()->second.bytes[1], 2);
}

// A program restarted with a changed page type restores by field name.
struct PairV1 {
  std::uint32_t a;
  float b;
};

TypeDescriptor Pair(std::vector<FieldDescriptor> fields, std::uint32_t size) {
  TypeDescriptor t;
  t.name = "Pair";
  t.size = size;
  t.align = 4;
  t.fields = std::move(fields);
  return t;
}

const FieldDescriptor kA{"a", 0, 4, ScalarKind::kU32, 4, {}, ""};
const FieldDescriptor kB{"b", 4, 4, ScalarKind::kF32, 4, {}, ""};

TEST_F(LifecycleTest, RestoreComparesFullLayoutsAndMigratesByFieldName) {
  alignas(64) static std::uint8_t storage[64];
  std::memset(storage, 0, sizeof storage);
  auto v1 = RegisterType(Pair({kA, kB}, 8));
  ASSERT_TRUE(v1.ok());
  PageOptions po;
  po.name = "g_pair";
  po.type = *v1;
  ASSERT_TRUE(RegisterStaticPage(storage, 8, po).ok());
  Attach();
  const std::uint32_t a = 41;
  const float b = 2.5f;
  std::memcpy(rt::w(reinterpret_cast<std::uint32_t*>(storage)), &a, 4);
  std::memcpy(rt::w(reinterpret_cast<float*>(storage + 4)), &b, 4);
  ASSERT_TRUE(commit().ok());
  ASSERT_TRUE(sink_->Close().ok());
  sink_.reset();
  stop();

  struct Case {
    const char* what;
    TypeDescriptor type;
    bool restores;
    std::string report;  // in `migrated` or `mismatched`
  };
  FieldDescriptor b0 = kB, a4 = kA, c8{"c", 8, 4, ScalarKind::kU32, 4, {}, ""};
  b0.offset = 0;
  a4.offset = 4;
  FieldDescriptor a_float = kA;
  a_float.kind = ScalarKind::kF32;
  const std::vector<Case> cases = {
      {"same layout", Pair({kA, kB}, 8), true, ""},
      {"reordered, same size", Pair({b0, a4}, 8), true, "moved b, a"},
      {"a field added", Pair({kA, kB, c8}, 12), true, "added c"},
      {"a field removed", Pair({kA}, 4), true, "removed b"},
      {"a field's type changed", Pair({a_float, kB}, 8), false, "field 'a' (log: u32"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    StartBus();
    std::memset(storage, 0, sizeof storage);
    auto t = RegisterType(c.type);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    po.type = *t;
    ASSERT_TRUE(RegisterStaticPage(storage, c.type.size, po).ok());
    auto r = RestoreStaticPages(log_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (c.restores) {
      ASSERT_EQ(r->restored.size(), 1u);
      EXPECT_TRUE(r->mismatched.empty());
      for (const FieldDescriptor& f : c.type.fields) {
        if (f.name == "a") EXPECT_EQ(std::memcmp(storage + f.offset, &a, 4), 0);
        if (f.name == "b") EXPECT_EQ(std::memcmp(storage + f.offset, &b, 4), 0);
        if (f.name == "c") EXPECT_EQ(storage[f.offset], 0) << "a new field keeps its value";
      }
      if (c.report.empty()) {
        EXPECT_TRUE(r->migrated.empty());
      } else {
        ASSERT_EQ(r->migrated.size(), 1u);
        EXPECT_NE(r->migrated[0].find(c.report), std::string::npos) << r->migrated[0];
      }
    } else {
      EXPECT_TRUE(r->restored.empty());
      ASSERT_EQ(r->mismatched.size(), 1u);
      EXPECT_NE(r->mismatched[0].find(c.report), std::string::npos) << r->mismatched[0];
      EXPECT_EQ(storage[0], 0) << "left alone";
    }
    stop();
  }
  StartBus();
}

TEST_F(LifecycleTest, ArenaIsSizedFromTheEnvironment) {
  stop();
  ::setenv("MMSB_ARENA_BYTES", "1M", 1);
  ASSERT_TRUE(start().ok());
  EXPECT_TRUE(CreatePage(512 << 10).ok());
  auto big = CreatePage(std::size_t{2} << 20);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("MMSB_ARENA_BYTES"), std::string::npos)
      << big.status().ToString();
  stop();
  for (const char* bad : {"lots", "-1", "0", "12Q", "99999999999999999T"}) {
    ::setenv("MMSB_ARENA_BYTES", bad, 1);
    auto s = start();
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find(bad), std::string::npos) << s.ToString();
  }
  ::unsetenv("MMSB_ARENA_BYTES");
  StartBus();
}

}  // namespace
}  // namespace mmsb
