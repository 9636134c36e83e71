// kill -9 of a child process mid-workload, many times over one log directory.
//
// Each round forks a child that starts the bus, registers three static pages, restores them from
// the log, attaches the log (continuing it), creates a heap page, then commits deterministic
// writes as fast as it can, checkpointing now and then, and reports each epoch commit() returned
// through a pipe. The parent kills it with SIGKILL at a random moment, then replays the log: every
// reported epoch must be there, and the state must be exactly what the deterministic workload
// produces at the recovered epoch (static pages carried across rounds by restore, heap pages per
// round). Shared by kill_test.cc (a few rounds, label unit) and kill_slow_test.cc (many, slow).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "mmsb/mmsb.h"

#include "log_test_util.h"

namespace mmsb::testing {

inline constexpr std::size_t kStaticSize = 512;
inline constexpr std::size_t kHeapSize = 1000;
alignas(64) inline std::uint8_t g_kill_static[3][kStaticSize];
inline const char* const kStaticNames[3] = {"_ZN4kill1aE", "_ZN4kill1bE", "_ZN4kill1cE"};

// The writes of run-relative epoch j (1-based) of round r: (page index 0..3, offset, value).
struct Write {
  int page;
  std::size_t offset;
  std::uint8_t value;
};
inline std::vector<Write> WritesOf(int round, Epoch j) {
  std::mt19937_64 rng(static_cast<std::uint64_t>(round) * 1000003 + j);
  std::vector<Write> out;
  const int n = 1 + static_cast<int>(rng() % 6);
  for (int k = 0; k < n; ++k) {
    const int page = static_cast<int>(rng() % 4);
    const std::size_t size = page < 3 ? kStaticSize : kHeapSize;
    out.push_back({page, rng() % size, static_cast<std::uint8_t>(rng())});
  }
  return out;
}

// The child: never returns.
[[noreturn]] inline void KillChild(const std::string& dir, int round, Durability durability,
                                   int fd) {
  auto fail = [](const char* what, const Status& s) {
    std::fprintf(stderr, "kill child: %s: %s\n", what, s.ToString().c_str());
    _exit(3);
  };
  Options o;
  o.arena_bytes = std::size_t{1} << 28;
  if (Status s = start(o); !s.ok()) fail("start", s);
  Page* pages[4];
  for (int i = 0; i < 3; ++i) {
    std::memset(g_kill_static[i], 0, kStaticSize);
    PageOptions po;
    po.name = kStaticNames[i];
    auto p = RegisterStaticPage(g_kill_static[i], kStaticSize, po);
    if (!p.ok()) fail("register", p.status());
    pages[i] = *p;
  }
  if (Env::Default()->IsDirectory(dir)) {
    auto r = RestoreStaticPages(dir);
    if (!r.ok() && r.status().code() != StatusCode::kNotFound) fail("restore", r.status());
  }
  LogOptions lo;
  lo.durability = durability;
  lo.segment_bytes = 16 << 10;
  auto sink = AttachLog(dir, lo);
  if (!sink.ok()) fail("attach", sink.status());
  auto heap = CreatePage(kHeapSize);
  if (!heap.ok()) fail("create", heap.status());
  pages[3] = *heap;
  for (Epoch j = 1;; ++j) {
    for (const Write& w : WritesOf(round, j)) *rt::w(&pages[w.page]->data()[w.offset]) = w.value;
    Expected<Epoch> e = j % 40 == 0 ? (*sink)->Checkpoint() : commit();
    if (!e.ok()) fail("commit", e.status());
    const Epoch log_epoch = (*sink)->LogEpoch(j);
    if (write(fd, &log_epoch, sizeof log_epoch) != sizeof log_epoch) _exit(4);
  }
}

struct KillStats {
  int kills = 0;
  Epoch epochs = 0;
};

// Runs `rounds` kill rounds in `dir`; checks after each.
inline void RunKillRounds(const std::string& dir, int rounds, std::uint64_t seed,
                          KillStats* stats) {
  std::mt19937_64 rng(seed);
  // The model: the static pages' bytes (restored across rounds) at the last recovered epoch.
  std::vector<std::vector<std::uint8_t>> statics(3, std::vector<std::uint8_t>(kStaticSize, 0));
  Epoch base = 0;
  PageId id_base = 0;
  for (int round = 0; round < rounds; ++round) {
    const Durability durability = round % 2 == 0 ? Durability::kSync : Durability::kGroup;
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    std::fflush(nullptr);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(fds[0]);
      KillChild(dir, round, durability, fds[1]);
    }
    close(fds[1]);
    // Wait for a random number of acknowledged commits (sometimes none), then kill.
    const int want = static_cast<int>(rng() % 120);
    Epoch acked = 0;
    for (int i = 0; i < want; ++i) {
      Epoch e;
      if (read(fds[0], &e, sizeof e) != sizeof e) break;
      acked = e;
    }
    if (rng() % 2) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    // Epochs acknowledged before the kill landed.
    Epoch e;
    while (read(fds[0], &e, sizeof e) == sizeof e) acked = e;
    close(fds[0]);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "round " << round << ": the child died on its own (exit " << WEXITSTATUS(status) << ")";
    ++stats->kills;

    ReplayReport rep;
    ReplayOptions ro;
    auto st = Replay(dir, ro, &rep);
    if (!st.ok() && st.status().code() == StatusCode::kNotFound && acked == 0)
      continue;  // killed before the log existed
    ASSERT_TRUE(st.ok()) << "round " << round << ": " << st.status().ToString();
    EXPECT_FALSE(rep.has_errors()) << "round " << round;
    ASSERT_GE(st->epoch, acked) << "round " << round << ": a commit reported durable is missing";
    if (st->epoch == base) continue;  // the child died before its first commit reached the disk
    // Rebuild the expected state of this round at the recovered epoch.
    const Epoch j_end = st->epoch - base;
    std::vector<std::vector<std::uint8_t>> want_pages = statics;
    want_pages.emplace_back(kHeapSize, 0);
    for (Epoch j = 1; j <= j_end; ++j) {
      for (const Write& w : WritesOf(round, j)) want_pages[w.page][w.offset] = w.value;
    }
    for (int i = 0; i < 3; ++i) {
      const ReplayedPage* p = st->FindPageByName(kStaticNames[i]);
      ASSERT_NE(p, nullptr) << "round " << round;
      EXPECT_TRUE(p->is_static);
      EXPECT_EQ(p->bytes, want_pages[i])
          << "round " << round << " static page " << i << " at epoch " << st->epoch;
    }
    const ReplayedPage* heap = st->FindPage(id_base + 4);
    ASSERT_NE(heap, nullptr) << "round " << round << ": heap page " << id_base + 4;
    EXPECT_EQ(heap->bytes, want_pages[3]) << "round " << round;
    EXPECT_EQ(st->pages.size(), 4u) << "pages of earlier rounds are gone after a run start";
    for (int i = 0; i < 3; ++i) statics[i] = want_pages[i];
    stats->epochs += st->epoch - base;
    base = st->epoch;
    id_base = st->page_id_high;
  }
}

}  // namespace mmsb::testing
