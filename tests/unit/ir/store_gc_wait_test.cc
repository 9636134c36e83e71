// The IR store under a running build and a busy lock (issue 15): gc never touches the open
// generation, a waiting write says for whom it waits and gives up at its timeout, and generation
// specs are parsed strictly.
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
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
