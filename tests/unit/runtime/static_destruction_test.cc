// MMSB in static destructors and atexit handlers (issue 13, defect class 7): a program that
// stores and commits from both sides of the runtime's exit handler exits cleanly, and its log
// (durability none: only flushes reach the file) replays to every byte it committed.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/mmsb.h"

extern char** environ;

namespace mmsb {
namespace {

class StaticDestructionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("mmsb_static_exit_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs the helper and returns its wait status.
  int RunHelper(const char* mode) {
    std::vector<std::string> args = {MMSB_STATIC_EXIT_MAIN, dir_, mode};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid;
    if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return -1;
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return -1;
    return status;
  }

  std::vector<std::uint8_t> ReplayedHead() {
    auto state = Replay(dir_);
    EXPECT_TRUE(state.ok()) << state.status().ToString();
    if (!state.ok()) return {};
    const ReplayedPage* p = state->FindPageByName("g_state");
    EXPECT_NE(p, nullptr);
    if (p == nullptr) return {};
    return {p->bytes.begin(), p->bytes.begin() + 5};
  }

  std::string dir_;
};

TEST_F(StaticDestructionTest, CommitsFromDestructorsAndAtexitHandlersReachTheLog) {
  const int status = RunHelper("flush");
  ASSERT_TRUE(WIFEXITED(status)) << "helper died (signal " << WTERMSIG(status) << ")";
  ASSERT_EQ(WEXITSTATUS(status), 0);
  // main, an atexit handler and a function-local static before the runtime's exit handler; a
  // global destructor and an atexit handler registered before start() after it.
  EXPECT_EQ(ReplayedHead(), (std::vector<std::uint8_t>{1, 2, 3, 4, 5}));
}

TEST_F(StaticDestructionTest, LogClosedByAGlobalDestructorLeavesLaterCommitsWorking) {
  const int status = RunHelper("close");
  ASSERT_TRUE(WIFEXITED(status)) << "helper died (signal " << WTERMSIG(status) << ")";
  ASSERT_EQ(WEXITSTATUS(status), 0);
  // The global destructor that runs after the close commits without a log: byte 3 stays 0.
  EXPECT_EQ(ReplayedHead(), (std::vector<std::uint8_t>{1, 2, 3, 0, 5}));
}

}  // namespace
}  // namespace mmsb
