// The IR store under a running build and a busy lock (issue 15): gc never touches the open
// generation, a waiting write says for whom it waits and gives up at its timeout, and generation
// specs are parsed strictly.
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "ir_test_util.h"

namespace mmsb::ir {
namespace {

using testing::Fn;
using testing::TempDir;
using testing::Tu;

std::unique_ptr<Store> OpenOrDie(const std::string& path, StoreOptions o = {}) {
  auto s = Store::Open(path, Store::Mode::kReadWrite, std::move(o));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

TEST(IrStoreGc, GcDuringABuildNeverSplitsItAcrossTwoGenerations) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("ir.db"));
  ASSERT_EQ(*store->AddCapture(Tu("/p/a.cc", {Fn("a", "1")}), {}), 1);
  ASSERT_EQ(*store->AddCapture(Tu("/p/b.cc", {Fn("b", "1")}), {}), 1);
  // A build starts: a.cc recompiles into generation 2, which is open and inherits b.cc.
  ASSERT_EQ(*store->AddCapture(Tu("/p/a.cc", {Fn("a", "2")}), {}), 2);
  // gc in the middle of the build keeps the generation the open one inherits from.
  auto r = store->Gc(1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->generations_removed, 0);
  // The build goes on: b.cc joins the open generation 2, not a new one.
  EXPECT_EQ(*store->AddCapture(Tu("/p/b.cc", {Fn("b", "2")}), {}), 2);
  auto gens = store->Generations(false);
  ASSERT_TRUE(gens.ok());
  EXPECT_EQ(gens->size(), 2u);
  // Once the build is over (the generation closed), gc removes what it may.
  ASSERT_TRUE(store->BeginGeneration("").ok());
  r = store->Gc(1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->generations_removed, 1);
  EXPECT_EQ(*store->ResolveGeneration("latest"), 2);
}

TEST(IrStoreGc, LatestTildeNeedsANumber) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("ir.db"));
  ASSERT_TRUE(store->AddCapture(Tu("/p/a.cc", {Fn("a", "1")}), {}).ok());
  for (const char* spec : {"latest~", "latest~x", "latest~-1"}) {
    auto g = store->ResolveGeneration(spec);
    ASSERT_FALSE(g.ok()) << spec;
    EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument) << spec;
  }
  EXPECT_EQ(*store->ResolveGeneration("latest~0"), 1);
}

TEST(IrStoreGc, WaitingWriteSaysForWhomAndGivesUpAtItsTimeout) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  ASSERT_TRUE(OpenOrDie(path)->AddCapture(Tu("/p/a.cc", {Fn("a", "1")}), {}).ok());
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Another process holds the write lock, as a long compile would.
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) _exit(1);
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) _exit(1);
    (void)!write(ready[1], "x", 1);
    sleep(5);
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  StoreOptions o;
  o.busy_timeout_ms = 20;
  o.max_wait_ms = 300;
  std::string holder;
  int waits = 0;
  o.on_wait = [&](const std::string& h) {
    holder = h;
    ++waits;
  };
  auto store = OpenOrDie(path, o);
  Status s = store->BeginGeneration("");
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("gave up after"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(kWaitEnv), std::string::npos) << s.ToString();
  EXPECT_EQ(waits, 1);
  EXPECT_EQ(
      holder, "pid " + std::to_string(child) + " (" + [] {
        std::string comm;
        std::ifstream in("/proc/self/comm");
        std::getline(in, comm);
        return comm;
      }() + ")");
  EXPECT_EQ(WriteLockHolder(path), "") << "nobody holds it any more";
  EXPECT_TRUE(store->BeginGeneration("").ok());
}

// Whether this process holds a POSIX lock on byte `byte` of `file` (from /proc/locks).
bool ThisProcessLocks(const std::string& file, unsigned long long byte) {
  struct stat st{};
  if (::stat(file.c_str(), &st) != 0) return false;
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    if (line.find("->") != std::string::npos) continue;
    std::istringstream in(line);
    std::string id, cls, advisory, type, dev, start, end;
    long pid = 0;
    if (!(in >> id >> cls >> advisory >> type >> pid >> dev >> start >> end)) continue;
    unsigned maj = 0, min = 0;
    unsigned long long ino = 0;
    if (cls != "POSIX" || pid != static_cast<long>(::getpid()) ||
        std::sscanf(dev.c_str(), "%x:%x:%llu", &maj, &min, &ino) != 3 || maj != major(st.st_dev) ||
        min != minor(st.st_dev) || ino != st.st_ino)
      continue;
    if (std::stoull(start) <= byte && (end == "EOF" || std::stoull(end) >= byte)) return true;
  }
  return false;
}

// Regression (IrStore.SixteenConcurrentWritersLoseNothing died of SIGBUS under load): naming the
// write lock's holder opened and closed the -shm file, and closing any descriptor of a file drops
// every POSIX lock the process holds on it. SQLite's shared DMS lock (-shm byte 128) went with
// it, so the next process to open the store took itself for the first user and truncated the
// -shm file under this one's mapping.
TEST(IrStoreGc, WaitingForTheWriteLockKeepsThisProcessesSqliteLocks) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  ASSERT_TRUE(OpenOrDie(path)->AddCapture(Tu("/p/a.cc", {Fn("a", "1")}), {}).ok());
  constexpr unsigned long long kDmsByte = 128;  // SQLite's UNIX_SHM_DMS
  sqlite3* blocker = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &blocker), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(blocker, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  ASSERT_TRUE(ThisProcessLocks(path + "-shm", kDmsByte)) << "SQLite's DMS lock is not where "
                                                            "this test looks for it";
  StoreOptions o;
  o.busy_timeout_ms = 5;
  o.max_wait_ms = 100;
  int waits = 0;
  bool dms_kept = false;
  o.on_wait = [&](const std::string&) {
    ++waits;
    dms_kept = ThisProcessLocks(path + "-shm", kDmsByte);
  };
  auto store = OpenOrDie(path, o);
  Status s = store->BeginGeneration("");
  EXPECT_FALSE(s.ok()) << "the blocker holds the write lock throughout";
  EXPECT_EQ(waits, 1);
  EXPECT_TRUE(dms_kept);
  EXPECT_TRUE(ThisProcessLocks(path + "-shm", kDmsByte));
  sqlite3_exec(blocker, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(blocker);
  EXPECT_TRUE(store->BeginGeneration("").ok());
}

// Regression: opening a reader checked the store for truncation by opening ir.db with an
// ifstream and closing it, which dropped every POSIX lock this process held on ir.db: another
// connection's SHARED lock (a reader's, in the middle of its transaction) went with it, so a
// writer elsewhere could take the file for a checkpoint or a journal-mode change under it.
TEST(IrStoreGc, OpeningAReaderKeepsThisProcessesSqliteLocksOnTheStore) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  ASSERT_TRUE(OpenOrDie(path)->AddCapture(Tu("/p/a.cc", {Fn("a", "1")}), {}).ok());
  constexpr unsigned long long kSharedByte = 0x40000002;  // SQLite's SHARED_FIRST
  sqlite3* reader = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &reader), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM sqlite_schema", nullptr, nullptr, nullptr),
      SQLITE_OK);
  ASSERT_TRUE(ThisProcessLocks(path, kSharedByte)) << "SQLite's SHARED lock is not where this "
                                                      "test looks for it";
  std::error_code ec;
  ASSERT_EQ(std::filesystem::file_size(path + "-wal", ec), 0u) << "the truncation check runs";
  auto store = Store::Open(path, Store::Mode::kExisting);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE(ThisProcessLocks(path, kSharedByte));
  sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(reader);
}

// The check above still refuses a store cut short (SQLite would read the missing pages as
// empty and answer from what is left).
TEST(IrStoreGc, TruncatedStoreIsRefusedAsCorruption) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  {
    auto store = OpenOrDie(path);
    for (int i = 0; i < 20; ++i)
      ASSERT_TRUE(store
                      ->AddCapture(Tu("/p/t" + std::to_string(i) + ".cc",
                                      {Fn("f" + std::to_string(i), std::string(3000, 'a' + i))}),
                                   {})
                      .ok());
  }
  const auto size = std::filesystem::file_size(path);
  ASSERT_GT(size, 3u * 4096u);
  std::filesystem::resize_file(path, size / 2);
  auto store = Store::Open(path, Store::Mode::kExisting);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kCorruption) << store.status().ToString();
  EXPECT_NE(store.status().message().find("is truncated"), std::string::npos)
      << store.status().ToString();
}

TEST(IrStoreGc, WaitIsConfigurableFromTheEnvironment) {
  ::setenv(kWaitEnv, "7", 1);
  auto o = StoreOptionsFromEnv();
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->max_wait_ms, 7000);
  ::setenv(kWaitEnv, "soon", 1);
  o = StoreOptionsFromEnv();
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("soon"), std::string::npos);
  ::unsetenv(kWaitEnv);
  EXPECT_EQ(StoreOptionsFromEnv()->max_wait_ms, StoreOptions{}.max_wait_ms);
}

}  // namespace
}  // namespace mmsb::ir
