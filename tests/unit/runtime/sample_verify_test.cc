// Sampled verification (issue 13's safety net in normal runs) and the verify oracle under threads
// (issue 14): a store without a mark is reported within the sampling window with its page, bytes
// and field; a store whose mark arrives late (its thread descheduled between store and mark) is
// never reported.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "bus_fixture.h"
#include "log/log_records.h"

namespace mmsb {
namespace {

using testing::BusTest;

TypeDescriptor BodyType() {
  return {"Body",
          4096,
          8,
          {{"pos", 0, 2048, ScalarKind::kF64, 8, {256}, ""},
           {"hits", 2048, 2048, ScalarKind::kU64, 8, {256}, ""}}};
}

// A thread that exists until the test ends, so the process is never single-threaded: a check
// cannot know that no barrier is between its store and its mark, and defers to the next commit.
class SecondThread {
 public:
  SecondThread()
      : t_([this] {
          while (!stop_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }) {}
  ~SecondThread() {
    stop_ = true;
    t_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread t_;
};

class SampleVerifyTest : public BusTest {
 protected:
  static constexpr int kEvery = 8;
  void SetUp() override { StartBus({.sample_verify = kEvery}); }
};

TEST_F(SampleVerifyTest, UnmarkedStoreIsReportedWithinTheWindowWithPageBytesAndField) {
  auto type = RegisterType(BodyType());
  ASSERT_TRUE(type.ok());
  // Pages of mixed sizes, so the slices differ in page count.
  std::vector<Page*> pages;
  for (int i = 0; i < 24; ++i) pages.push_back(NewPage(i % 3 == 0 ? 16384 : 512));
  Page* body = NewPage(4096, {.type = *type});
  pages.push_back(body);
  Commit();
  // Whatever the rotation's phase, each page's miss is reported within kEvery commits.
  for (Page* target : pages) {
    misses.clear();
    const std::uint32_t off = target == body ? 2048 + 5 * 8 : 100;
    target->data()[off] ^= 0x5a;  // no barrier: the runtime's raw page memory
    int commits = 0;
    while (misses.empty() && commits < 4 * kEvery) {
      Commit();
      ++commits;
    }
    ASSERT_EQ(misses.size(), 1u) << "page " << target->id();
    EXPECT_LE(commits, kEvery) << "page " << target->id();
    EXPECT_EQ(misses[0].page, target->id());
    EXPECT_EQ(misses[0].offset, off);
    EXPECT_EQ(misses[0].length, 1u);
    EXPECT_TRUE(misses[0].sampled);
    if (target == body) EXPECT_EQ(misses[0].field, "Body.hits[5]");
    // The check repaired the delta: the commit that found it logged the byte.
    const auto& deltas = sink->batches.back().deltas;
    ASSERT_EQ(deltas.size(), 1u);
    EXPECT_EQ(deltas[0].page(), target->id());
    EXPECT_EQ(sink->batches.back().misses.size(), 1u);
  }
  const Stats s = GetStats();
  EXPECT_EQ(s.sampled_misses, pages.size());
  EXPECT_EQ(s.verify_misses, pages.size());
  EXPECT_GT(s.sampled_pages, 0u);
  EXPECT_EQ(s.verify_commits, 0u);  // not verify mode
}

TEST_F(SampleVerifyTest, LargePageIsCheckedASliceAtATimeAndEveryByteWithinTheWindow) {
  // Large pages are checked a granule range per commit (docs/Runtime.md, "Sampled
  // verification"): a miss anywhere in them is still reported within the window, with its exact
  // offset, and bytes changed with marks outside the slice are never reported.
  Page* big = NewPage(std::size_t{4} << 20);
  Commit();
  const std::uint64_t full_after_first = GetStats().full_diffs;  // its first commit: in full
  const std::uint32_t offsets[] = {0, 64 * 1000 + 7, (std::uint32_t{4} << 20) - 1, 3u << 20};
  for (std::uint32_t off : offsets) {
    misses.clear();
    big->data()[off] ^= 0x33;  // no barrier
    int commits = 0;
    while (misses.empty() && commits < 4 * kEvery) {
      // Marked stores everywhere in the page, in every commit: never misses.
      for (std::size_t at = 128; at < big->size(); at += 256 << 10) {
        *rt::w(&big->data()[at]) ^= 1;
      }
      Commit();
      ++commits;
    }
    ASSERT_EQ(misses.size(), 1u) << "offset " << off;
    EXPECT_LE(commits, kEvery + 1) << "offset " << off;
    EXPECT_EQ(misses[0].page, big->id());
    EXPECT_EQ(misses[0].offset, off);
    EXPECT_EQ(misses[0].length, 1u);
    EXPECT_TRUE(misses[0].sampled);
  }
  // No later commit diffed the page in full: each checked a slice of it.
  EXPECT_EQ(GetStats().full_diffs, full_after_first);
}

TEST_F(SampleVerifyTest, MarkedStoresAreNeverReported) {
  std::vector<Page*> pages;
  for (int i = 0; i < 16; ++i) pages.push_back(NewPage(1024));
  Commit();
  for (int c = 0; c < 4 * kEvery; ++c) {
    for (std::size_t i = 0; i < pages.size(); ++i)
      *rt::w(&pages[i]->data()[(c * 37 + i) % 1024]) = static_cast<std::uint8_t>(c + 1);
    Commit();
  }
  EXPECT_TRUE(misses.empty());
  EXPECT_EQ(GetStats().verify_misses, 0u);
  EXPECT_GE(GetStats().sampled_pages, pages.size() * 4);
}

TEST_F(SampleVerifyTest, ConcurrentMarkedWritersAreNeverReported) {
  StartBus({.sample_verify = 1});  // every page at every commit
  constexpr int kThreads = 4;
  std::vector<Page*> pages;
  for (int i = 0; i < kThreads; ++i) pages.push_back(NewPage(8192));
  Commit();
  std::atomic<bool> done{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      std::uint32_t x = 12345 + t;
      for (int i = 0; i < 20000; ++i) {
        x = x * 1664525u + 1013904223u;
        auto* q = reinterpret_cast<std::uint32_t*>(pages[t]->data());
        rt::ws(&q[x % 2048]) = x;  // store, then mark
      }
      (void)t;
    });
  }
  std::thread committer([&] {
    while (!done.load()) (void)commit();
  });
  for (auto& w : writers) w.join();
  done = true;
  committer.join();
  Commit();
  Commit();  // settles whatever the last concurrent commit suspected
  EXPECT_TRUE(misses.empty()) << misses.size() << " false report(s), first at page "
                              << misses[0].page << " offset " << misses[0].offset;
}

TEST_F(SampleVerifyTest, PersistentMissUnderThreadsIsConfirmedByTheNextCommit) {
  StartBus({.sample_verify = 1});
  SecondThread other;
  Page* p = NewPage(256);
  const Epoch e0 = Commit();
  p->data()[7] = 9;  // unmarked
  const Epoch e1 = Commit();
  EXPECT_TRUE(misses.empty());  // another thread might still be about to mark it
  Commit();
  ASSERT_EQ(misses.size(), 1u);
  EXPECT_EQ(misses[0].offset, 7u);
  // The window is the one the bytes changed in, not the commit that confirmed it.
  EXPECT_EQ(misses[0].after_epoch, e0);
  EXPECT_EQ(misses[0].epoch, e1);
}

TEST_F(SampleVerifyTest, PendingMissIsReportedAtStop) {
  StartBus({.sample_verify = 1});
  Page* p;
  {
    SecondThread other;
    p = NewPage(256);
    Commit();
    p->data()[1] = 1;
    Commit();
  }
  EXPECT_TRUE(misses.empty());
  stop();  // nothing will settle it later
  ASSERT_EQ(misses.size(), 1u);
  EXPECT_EQ(misses[0].offset, 1u);
}

// The store-then-mark window, forced: the writer stores, then waits (a test hook standing for a
// thread descheduled between its store and its mark) until a whole commit has run, then marks.
// The commit sees changed bytes without a mark; the old oracle reported a miss after a few
// yields. The store is not a miss: its mark arrives, and the next commit settles it as such.
TEST(VerifyUnderThreads, StoreDescheduledBeforeItsMarkIsNotAMiss) {
  for (const bool verify : {true, false}) {
    stop();
    std::vector<VerifyMiss> seen;
    Options o;
    o.arena_bytes = std::size_t{1} << 28;
    o.verify = verify;
    o.sample_verify = 1;
    o.on_verify_miss = [&](const VerifyMiss& m) { seen.push_back(m); };
    ASSERT_TRUE(start(o).ok());
    auto page = CreatePage(4096);
    ASSERT_TRUE(page.ok());
    std::uint8_t* data = (*page)->data();
    ASSERT_TRUE(commit().ok());
    std::atomic<int> phase{0};
    std::thread writer([&] {
      data[300] = 42;  // the store
      phase = 1;
      while (phase.load() != 2) std::this_thread::yield();  // descheduled
      rt::MarkRange(&data[300], 1);                         // the mark, after the commit
    });
    while (phase.load() != 1) std::this_thread::yield();
    auto e1 = commit();  // takes no mark for byte 300, but reads its new value
    ASSERT_TRUE(e1.ok());
    phase = 2;
    writer.join();
    ASSERT_TRUE(commit().ok());
    ASSERT_TRUE(commit().ok());
    EXPECT_TRUE(seen.empty()) << (verify ? "verify" : "sampled") << ": false miss at offset "
                              << seen[0].offset;
    EXPECT_EQ(GetStats().verify_misses, 0u);
    EXPECT_EQ(CommittedImage(*page)[300], 42);
    stop();
  }
}

TEST(SampleVerifyEnv, EnvironmentTunesAndDisablesSampling) {
  stop();
  std::vector<VerifyMiss> seen;
  Options o;
  o.arena_bytes = std::size_t{1} << 28;
  o.on_verify_miss = [&](const VerifyMiss& m) { seen.push_back(m); };
  setenv("MMSB_SAMPLE_VERIFY", "0", 1);
  ASSERT_TRUE(start(o).ok());
  auto p = CreatePage(64);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(commit().ok());
  (*p)->data()[3] = 1;
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(commit().ok());
  EXPECT_TRUE(seen.empty());
  EXPECT_EQ(GetStats().sampled_pages, 0u);
  stop();

  setenv("MMSB_SAMPLE_VERIFY", "every", 1);
  Status s = start(o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("MMSB_SAMPLE_VERIFY"), std::string::npos) << s.ToString();
  unsetenv("MMSB_SAMPLE_VERIFY");

  // Without the variable the default samples: one page, checked at every commit.
  ASSERT_TRUE(start(o).ok());
  p = CreatePage(64);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(commit().ok());
  (*p)->data()[3] = 1;
  ASSERT_TRUE(commit().ok());
  EXPECT_EQ(seen.size(), 1u);
  stop();
}

TEST(SampleVerifyLog, MissIsLoggedAsAVerifyMissRecord) {
  stop();
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("mmsb_sample_log_" + std::to_string(::getpid())))
          .string();
  std::filesystem::remove_all(dir);
  Options o;
  o.arena_bytes = std::size_t{1} << 28;
  o.sample_verify = 1;
  o.on_verify_miss = [](const VerifyMiss&) {};
  ASSERT_TRUE(start(o).ok());
  auto type = RegisterType(BodyType());
  ASSERT_TRUE(type.ok());
  auto page = CreatePage(4096, {.type = *type});
  ASSERT_TRUE(page.ok());
  {
    auto sink = LogSink::Open(dir);
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    ASSERT_TRUE(AddSink(*sink).ok());
    ASSERT_TRUE(commit().ok());
    (*page)->data()[16] = 3;  // pos[2], unmarked
    ASSERT_TRUE(commit().ok());
    ASSERT_TRUE((*sink)->Close().ok());
  }
  stop();
  auto reader = LogReader::Open(dir);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  LogEntry e;
  int found = 0;
  for (;;) {
    auto more = (*reader)->Next(&e);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    if (e.type != LogRecordType::kVerifyMiss) continue;
    ++found;
    EXPECT_EQ(e.verify_miss.offset, 16u);
    EXPECT_EQ(e.verify_miss.length, 1u);
    EXPECT_EQ(e.verify_miss.field, "Body.pos[2]");
    EXPECT_TRUE(e.verify_miss.sampled);
    EXPECT_EQ(e.verify_miss.epoch, e.epoch);
    EXPECT_EQ(e.verify_miss.after_epoch + 1, e.epoch);
  }
  EXPECT_EQ(found, 1);
  // Replay still reaches the program's bytes: the check logged them.
  auto state = Replay(dir);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  std::filesystem::remove_all(dir);
}

TEST(VerifyMissRecord, RoundTripsAndRejectsMalformedPayloads) {
  const LogVerifyMiss m{42, 100, 3, 6, 7, true, "Body.pos[12]"};
  std::vector<std::uint8_t> bytes;
  log::EncodeVerifyMiss(m, bytes);
  LogVerifyMiss back;
  ASSERT_TRUE(log::DecodeVerifyMiss(bytes, &back).ok());
  EXPECT_EQ(back.page, 42u);
  EXPECT_EQ(back.offset, 100u);
  EXPECT_EQ(back.length, 3u);
  EXPECT_EQ(back.after_epoch, 6u);
  EXPECT_EQ(back.epoch, 7u);
  EXPECT_TRUE(back.sampled);
  EXPECT_EQ(back.field, "Body.pos[12]");
  auto corrupt = [](const LogVerifyMiss& r) {
    std::vector<std::uint8_t> b;
    log::EncodeVerifyMiss(r, b);
    LogVerifyMiss out;
    Status s = log::DecodeVerifyMiss(b, &out);
    return s.code() == StatusCode::kCorruption;
  };
  EXPECT_TRUE(corrupt({0, 100, 3, 6, 7, false, ""}));   // page 0
  EXPECT_TRUE(corrupt({42, 100, 0, 6, 7, false, ""}));  // empty run
  EXPECT_TRUE(corrupt({42, 100, 3, 7, 7, false, ""}));  // empty window
  std::vector<std::uint8_t> flags = bytes;
  flags[32] = 0x82;  // an unknown flag bit
  EXPECT_EQ(log::DecodeVerifyMiss(flags, &back).code(), StatusCode::kCorruption);
  std::vector<std::uint8_t> truncated(bytes.begin(), bytes.end() - 2);
  EXPECT_EQ(log::DecodeVerifyMiss(truncated, &back).code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace mmsb
