// The `mmsb` CLI given wrong input: every wrong answer becomes a clear error (issue 15). Each test
// is one defect that was found: the command used to exit 0 with an answer to another question, or
// failed with a misleading message. tests/robust/cli_campaign.py runs the whole matrix.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mmsb/checkpoint.h"
#include "mmsb/log.h"
#include "mmsb/replay.h"

#include "cli_test_util.h"
#include "log_test_util.h"

namespace mmsb {
namespace {

using testing::CliRun;
using testing::Mmsb;

int Count(const std::string& s, const std::string& what) {
  int n = 0;
  for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
}

// Five epochs of a typed page (1) and a raw page (2), a checkpoint of epoch 3 in the directory.
class CliBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LogOptions o;
    o.retire_segments = false;
    auto w = LogWriter::Open(log_, o);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    TypeDescriptor t;
    t.name = "Pair";
    t.size = 8;
    t.align = 4;
    t.fields = {{"a", 0, 4, ScalarKind::kU32, 4, {}, ""}, {"b", 4, 4, ScalarKind::kF32, 4, {}, ""}};
    std::vector<std::uint8_t> pair(8, 0), raw(64, 0);
    for (Epoch e = 1; e <= 5; ++e) {
      LogBatch b = (*w)->NewBatch();
      if (e == 1) {
        b.AddTypeDescriptor(t);
        b.AddPageCreate({1, 8, Location::kCpu, true, "g_pair", "Pair"});
        b.AddPageCreate({2, 64, Location::kCpu, false, "", ""});
      }
      auto next = pair, next_raw = raw;
      next[0] = static_cast<std::uint8_t>(e);
      next_raw[e * 7] = static_cast<std::uint8_t>(e);
      ASSERT_TRUE(b.AddDelta(Diff(1, e - 1, pair, next)).ok());
      ASSERT_TRUE(b.AddDelta(Diff(2, e - 1, raw, next_raw)).ok());
      pair = next;
      raw = next_raw;
      ASSERT_TRUE((*w)->Commit(b).ok());
      if (e == 3) {
        ReplayOptions ro;
        ro.epoch = 3;
        auto st = Replay(log_, ro);
        ASSERT_TRUE(st.ok());
        auto ck = WriteLogCheckpoint(**w, ContentsOf(*st, (*w)->log_id()));
        ASSERT_TRUE(ck.ok());
        ckpt_ = *ck;
      }
    }
    ASSERT_TRUE((*w)->Close().ok());
  }
  CliRun Run(const std::string& args) { return Mmsb(args, dir_.path()); }

  testing::TempDir dir_;
  std::string log_ = dir_.Sub("run.tlog");
  std::string ckpt_;
};

TEST_F(CliBadInputTest, AllOnesEpochIsOutOfRangeNotLatestForEveryCommand) {
  const std::string top = "18446744073709551615";
  for (const std::string& args :
       {"replay " + log_ + " --epoch " + top, "diff " + log_ + " --from " + top + " --to 2",
        "diff " + log_ + " --from 1 --to " + top, "log show " + log_ + " --from-epoch " + top}) {
    CliRun r = Run(args);
    EXPECT_NE(r.code, 0) << args << "\n" << r.out;
    EXPECT_NE(r.err.find("'" + top + "' is out of range"), std::string::npos) << args << r.err;
  }
  CliRun r = Run("replay " + log_ + " --epoch latest --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["epoch"], 5);
}

TEST_F(CliBadInputTest, CheckpointFileNeverAnswersAnotherEpoch) {
  for (const char* epoch : {"1", "2", "4", "0"}) {
    CliRun r = Run(fmt::format("replay {} --epoch {}", ckpt_, epoch));
    EXPECT_EQ(r.code, 1) << epoch << ": " << r.out;
    EXPECT_NE(r.err.find("not_found"), std::string::npos) << r.err;
  }
  CliRun r = Run(fmt::format("diff {} --from 1 --to 3", ckpt_));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.err.find("not_found"), std::string::npos) << r.err;
  r = Run(fmt::format("replay {} --epoch 3 --json", ckpt_));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["epoch"], 3);
}

TEST_F(CliBadInputTest, DirectoryWithoutSegmentsIsNotALog) {
  const std::string plain = dir_.Sub("plain");
  std::filesystem::create_directories(plain);
  WriteFile(plain + "/notes.txt", "hello\n");
  for (const char* cmd : {"log verify", "log show", "log stats", "replay --epoch 1 ", "diff"}) {
    std::string args = std::string(cmd) + " " + plain;
    if (std::string(cmd) == "diff") args += " --from 1 --to 2";
    CliRun r = Run(args);
    EXPECT_EQ(r.code, 1) << args << ": " << r.out;
    EXPECT_NE(r.err.find("is a directory but not an MMSB log"), std::string::npos) << r.err;
  }
  EXPECT_EQ(CheckLogPath(plain).code(), StatusCode::kInvalidArgument);
  ReplayOptions ro;
  EXPECT_EQ(Replay(plain, ro).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CliBadInputTest, EmptyFileGetsOneVerdictFromEverySubcommand) {
  const std::string empty = dir_.Sub("empty.tlog");
  WriteFile(empty, "");
  for (const std::string& args :
       {"log show " + empty, "log stats " + empty, "log verify " + empty,
        "replay " + empty + " --epoch 1", "diff " + empty + " --from 1 --to 2"}) {
    CliRun r = Run(args);
    EXPECT_EQ(r.code, 1) << args;
    EXPECT_NE(r.err.find("is an empty file, not an MMSB log"), std::string::npos) << r.err;
    EXPECT_EQ(Count(r.err, "mmsb: error:"), 1) << r.err;
  }
}

TEST_F(CliBadInputTest, UnknownFilterValuesAreErrorsAndEmptyMatchesSaySo) {
  CliRun r = Run("log show " + log_ + " --type nosuch");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no record type 'nosuch'"), std::string::npos) << r.err;
  r = Run("log show " + log_ + " --limit -1");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--limit"), std::string::npos) << r.err;
  r = Run("diff " + log_ + " --from 1 --to 5 --page 999");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("page 999 exists neither"), std::string::npos) << r.err;
  r = Run("diff " + log_ + " --from 1 --to 5 --type Nosuch");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no page type 'Nosuch'"), std::string::npos) << r.err;
  r = Run("diff " + log_ + " --from 1 --to 5 --max-fields -1");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--max-fields"), std::string::npos) << r.err;
  // Valid filters that match nothing succeed and say so.
  r = Run("log show " + log_ + " --type page-free");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("no records match"), std::string::npos) << r.out;
  r = Run("diff " + log_ + " --from 4 --to 4 --page 2");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("no change"), std::string::npos) << r.out;
}

TEST_F(CliBadInputTest, ForeignFilesSayWhatTheyAreNotWithoutASalvageHint) {
  const std::string elf = dir_.Sub("program");
  std::filesystem::copy_file("/bin/true", elf);
  const std::string db = dir_.Sub("x.db");
  WriteFile(db, std::string("SQLite format 3\0", 16) + std::string(200, '\0'));
  for (const auto& [path, what] : {std::pair{elf, "an ELF binary"}, {db, "an SQLite database"}}) {
    for (const char* salvage : {"", " --salvage"}) {
      CliRun r = Run("replay " + path + " --epoch 1" + salvage);
      EXPECT_EQ(r.code, 1);
      EXPECT_NE(r.err.find("is not an MMSB log: it looks like " + std::string(what)),
                std::string::npos)
          << r.err;
      EXPECT_EQ(r.err.find("--salvage"), std::string::npos) << "salvage fails the same way";
    }
  }
}

TEST_F(CliBadInputTest, LogShowPrintsItsErrorOnce) {
  const std::string seg = log_ + "/00000001.seg";
  std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(90);
  f.put('\x5a');
  f.close();
  CliRun r = Run("log show " + log_);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(Count(r.err, "00000001.seg:"), 1) << r.err;
}

TEST_F(CliBadInputTest, VerifyJsonPrintsJsonForEveryFailure) {
  const std::string empty = dir_.Sub("empty.tlog");
  WriteFile(empty, "");
  for (const std::string& path : {dir_.Sub("missing.tlog"), empty}) {
    CliRun r = Run("log verify --json " + path);
    EXPECT_EQ(r.code, 1);
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.out;
    EXPECT_EQ(j["ok"], false);
    EXPECT_NE(j["error"].get<std::string>().find(path), std::string::npos);
  }
}

TEST_F(CliBadInputTest, ReplayOutLeavesNoStaleFiles) {
  const std::string out = dir_.Sub("state");
  CliRun r = Run("replay " + log_ + " --epoch 5 --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(out + "/pages/2.bin"));
  // Again into the same directory: refused, the earlier replay untouched.
  r = Run("replay " + log_ + " --epoch 2 --out " + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("is not empty"), std::string::npos) << r.err;
  std::ifstream m(out + "/manifest.json");
  EXPECT_EQ(nlohmann::json::parse(m)["epoch"], 5);
  // An empty directory is fine, and holds exactly the replay afterwards.
  const std::string empty = dir_.Sub("empty_out");
  std::filesystem::create_directories(empty);
  r = Run("replay " + log_ + " --epoch 2 --out " + empty);
  ASSERT_EQ(r.code, 0) << r.err;
  int files = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(empty)) files += e.is_regular_file();
  EXPECT_EQ(files, 3) << "two pages and the manifest";
  for (auto& e : std::filesystem::directory_iterator(dir_.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
}

TEST_F(CliBadInputTest, CompactKeepsTheNewestCheckpointAndTheLogStillReplays) {
  CliRun r = Run("log compact " + log_ + " --keep 0");
  EXPECT_EQ(r.code, 2);
  r = Run("log compact " + log_ + " --keep 1 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["oldest_epoch"], 3);
  r = Run("replay " + log_ + " --epoch 5 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["epoch"], 5);
}

TEST_F(CliBadInputTest, CompactMaxAgeTakesADurationAndAloneKeepsEveryYoungerCheckpoint) {
  for (const char* bad : {"0", "-1", "abc", "5x", "1.5h", "''", "99999999999999d"}) {
    CliRun r = Run(std::string("log compact ") + log_ + " --max-age " + bad);
    EXPECT_EQ(r.code, 2) << bad;
    EXPECT_NE(r.err.find("--max-age"), std::string::npos) << bad << ": " << r.err;
  }
  // Two more checkpoints (epochs 5 and 6), all three written a moment ago: a day's budget alone
  // keeps them all (the default --keep 2 does not apply), and the log still replays.
  {
    LogOptions o;
    o.retire_segments = false;
    auto w = LogWriter::Open(log_, o);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (Epoch e : {Epoch{5}, Epoch{6}}) {
      if (e == 6) {
        LogBatch b = (*w)->NewBatch();
        std::vector<std::uint8_t> before(8, 0), after(8, 0);
        before[0] = 5;
        after[0] = 6;
        ASSERT_TRUE(b.AddDelta(Diff(1, 5, before, after)).ok());
        ASSERT_TRUE((*w)->Commit(b).ok());
      }
      ReplayOptions ro;
      ro.epoch = e;
      auto st = Replay(log_, ro);
      ASSERT_TRUE(st.ok()) << st.status().ToString();
      ASSERT_TRUE(WriteLogCheckpoint(**w, ContentsOf(*st, (*w)->log_id())).ok());
    }
    ASSERT_TRUE((*w)->Close().ok());
  }
  CliRun r = Run("log compact " + log_ + " --max-age 1d --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["checkpoints_removed"], 0);
  EXPECT_EQ(j["oldest_epoch"], 3);
  // With --keep, the age budget only lowers the count.
  r = Run("log compact " + log_ + " --max-age 1d --keep 2 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["checkpoints_removed"], 1);
  r = Run("replay " + log_ + " --epoch 6 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["epoch"], 6);
}

}  // namespace
}  // namespace mmsb
