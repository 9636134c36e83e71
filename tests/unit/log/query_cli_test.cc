// The query commands of the `mmsb` CLI (tools/cmd_query.cc) on a log the bus wrote: each
// --json document, the text forms' key lines, and clear errors with exit code 1 for bad input.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mmsb/mmsb.h"

#include "cli_test_util.h"
#include "log_test_util.h"

namespace mmsb {
namespace {

using testing::CliRun;
using testing::Mmsb;

struct Counters {
  std::int32_t hits[4];
  std::uint64_t total;
};

// Ten epochs through the bus: hits[1] grows in even epochs, total in every epoch.
class QueryCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(start().ok());
    TypeDescriptor t;
    t.name = "Counters";
    t.size = sizeof(Counters);
    t.align = 8;
    t.fields = {{"hits", 0, 16, ScalarKind::kI32, 4, {4}, ""},
                {"total", 16, 8, ScalarKind::kU64, 8, {}, ""}};
    ASSERT_TRUE(RegisterType(t).ok());
    log_ = dir_.Sub("run.tlog");
    LogOptions lo;
    lo.durability = Durability::kNone;
    auto sink = AttachLog(log_, lo);
    ASSERT_TRUE(sink.ok());
    PageOptions po;
    po.type = FindType("Counters");
    po.name = "g_counters";
    Page* p = *CreatePage(sizeof(Counters), po);
    auto* c = reinterpret_cast<Counters*>(p->data());
    for (int e = 1; e <= 10; ++e) {
      if (e % 2 == 0) *rt::w(&c->hits[1]) = c->hits[1] + 1;
      *rt::w(&c->total) = c->total + 10;
      commit_line_ = __LINE__ + 1;
      ASSERT_TRUE(commit().ok());
    }
    ASSERT_TRUE((*sink)->Close().ok());
    stop();
  }

  testing::TempDir dir_;
  std::string log_;
  int commit_line_ = 0;
};

// `mmsb log show` describes the provenance records (format 1.1) instead of calling them unknown.
TEST_F(QueryCliTest, LogShowDescribesSiteCommitInfoAndBuildRecords) {
  CliRun r = Mmsb("log show " + log_, dir_.path());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find("does not know"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("commit() call"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("query_cli_test.cc:" + std::to_string(commit_line_)), std::string::npos)
      << r.out;
  r = Mmsb("log show " + log_ + " --json --type commit-info", dir_.path());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["records"].size(), 10u) << r.out;  // one per commit
  for (const auto& rec : j["records"]) {
    EXPECT_EQ(rec["type"], "commit-info");
    ASSERT_EQ(rec["transactions"].size(), 1u) << rec.dump();
    EXPECT_GE(rec["transactions"][0]["site"].get<int>(), 1) << rec.dump();
  }
}

TEST_F(QueryCliTest, HistoryJsonListsEveryChangeWithItsSite) {
  CliRun r = Mmsb("history " + log_ + " 'Counters.hits[*]' --json", dir_.path());
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["format"], "mmsb.history/1");
  EXPECT_EQ(j["fields"], 4);
  ASSERT_EQ(j["changes"].size(), 5u);
  EXPECT_EQ(j["changes"][0]["path"], "Counters.hits[1]");
  EXPECT_EQ(j["changes"][0]["epoch"], 2);
  EXPECT_EQ(j["changes"][0]["old"], "0");
  EXPECT_EQ(j["changes"][0]["new"], "1");
  const auto& tx = j["changes"][0]["commit"]["transactions"][0];
  EXPECT_EQ(tx["kind"], "commit");
  EXPECT_EQ(tx["line"], commit_line_);
  CliRun text = Mmsb("history " + log_ + " g_counters.total --from 8", dir_.path());
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("Counters.total: 80 -> 90"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("query_cli_test.cc"), std::string::npos) << text.out;
}

TEST_F(QueryCliTest, BisectBlameTouchedSlice) {
  CliRun b =
      Mmsb("bisect " + log_ + " --where 'Counters.hits[1] * 30 >= Counters.total + 20' --json",
           dir_.path());
  ASSERT_EQ(b.code, 0) << b.err;
  auto bj = nlohmann::json::parse(b.out);
  EXPECT_EQ(bj["format"], "mmsb.bisect/1");
  ASSERT_TRUE(bj["found"].get<bool>());
  EXPECT_EQ(bj["epoch"], 4);  // hits[1] = 2, total = 40: 60 >= 60
  CliRun never = Mmsb("bisect " + log_ + " --where 'Counters.total > 1000'", dir_.path());
  ASSERT_EQ(never.code, 0);
  EXPECT_NE(never.out.find("never holds"), std::string::npos);

  CliRun bl = Mmsb("blame " + log_ + " 'Counters.hits[1]' --at 9 --json", dir_.path());
  ASSERT_EQ(bl.code, 0) << bl.err;
  auto blj = nlohmann::json::parse(bl.out);
  EXPECT_EQ(blj["change"]["epoch"], 8);
  ASSERT_EQ(blj["together"].size(), 1u);
  EXPECT_EQ(blj["together"][0]["path"], "Counters.total");

  CliRun t = Mmsb("touched " + log_ + " Counters.total --from 3 --json", dir_.path());
  ASSERT_EQ(t.code, 0) << t.err;
  auto tj = nlohmann::json::parse(t.out);
  EXPECT_EQ(tj["epochs"], 7);
  ASSERT_EQ(tj["sites"].size(), 1u);

  const std::string out = dir_.Sub("window.tlog");
  CliRun s = Mmsb("slice " + log_ + " --from 3 --to 7 -o " + out + " --json", dir_.path());
  ASSERT_EQ(s.code, 0) << s.err;
  CliRun a = Mmsb("replay " + log_ + " --epoch 7 --json", dir_.path());
  CliRun c = Mmsb("replay " + out + " --epoch 7 --json", dir_.path());
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(nlohmann::json::parse(a.out)["state_xxh3"], nlohmann::json::parse(c.out)["state_xxh3"]);
}

TEST_F(QueryCliTest, BadInputGetsAClearErrorAndANonZeroExit) {
  CliRun f = Mmsb("history " + log_ + " Counters.nope", dir_.path());
  EXPECT_EQ(f.code, 1);
  EXPECT_NE(f.err.find("has no field 'nope'"), std::string::npos) << f.err;
  // A flag value that is not an epoch is a usage error (exit 2), worded by the one epoch parser
  // every command shares.
  CliRun e = Mmsb("history " + log_ + " Counters.total --from soon", dir_.path());
  EXPECT_EQ(e.code, 2);
  EXPECT_NE(e.err.find("--from: 'soon' is not an epoch"), std::string::npos) << e.err;
  CliRun p = Mmsb("bisect " + log_ + " --where 'Counters.total >'", dir_.path());
  EXPECT_EQ(p.code, 1);
  EXPECT_NE(p.err.find("--where"), std::string::npos) << p.err;
  CliRun m = Mmsb("blame " + dir_.Sub("missing.tlog") + " Counters.total", dir_.path());
  EXPECT_EQ(m.code, 1);
  // The check every log command shares (CheckLogPath), naming the path.
  EXPECT_NE(m.err.find("no log at"), std::string::npos) << m.err;
  EXPECT_NE(m.err.find("missing.tlog"), std::string::npos) << m.err;
  CliRun n = Mmsb("blame " + log_ + " Counters.total --at 0", dir_.path());
  EXPECT_EQ(n.code, 1);
  EXPECT_NE(n.err.find("never changed"), std::string::npos) << n.err;
  CliRun u = Mmsb("bisect " + log_, dir_.path());
  EXPECT_EQ(u.code, 2);  // usage: --where is required
}

TEST_F(QueryCliTest, EpochsPastTheEndAndReversedWindowsAreErrorsNotEmptyAnswers) {
  // The log ends at epoch 10: --at 99 used to answer epoch 10's blame with exit 0.
  for (const std::string& cmd :
       {"blame " + log_ + " Counters.total --at 99", "why " + log_ + " Counters.total --at 11",
        "history " + log_ + " Counters.total --from 11",
        "history " + log_ + " Counters.total --to 99",
        "touched " + log_ + " Counters.total --from 50",
        "bisect " + log_ + " --where 'Counters.total > 0' --from 11"}) {
    CliRun r = Mmsb(cmd, dir_.path());
    EXPECT_EQ(r.code, 1) << cmd;
    EXPECT_NE(r.err.find("is beyond the end of log"), std::string::npos) << cmd << ": " << r.err;
    EXPECT_NE(r.err.find("last committed epoch 10"), std::string::npos) << r.err;
  }
  for (const std::string& cmd :
       {"history " + log_ + " Counters.total --from 6 --to 3",
        "touched " + log_ + " Counters.total --from 6 --to 3",
        "bisect " + log_ + " --where 'Counters.total > 0' --from 6 --to 3"}) {
    CliRun r = Mmsb(cmd, dir_.path());
    EXPECT_EQ(r.code, 1) << cmd;
    EXPECT_NE(r.err.find("--from 6 is after --to 3"), std::string::npos) << cmd << ": " << r.err;
  }
  // An empty epoch flag is not "the default", and a negative count is not a count.
  EXPECT_EQ(Mmsb("blame " + log_ + " Counters.total --at ''", dir_.path()).code, 2);
  EXPECT_EQ(Mmsb("history " + log_ + " Counters.total --max -1", dir_.path()).code, 2);
  // The last epoch itself, and a window with no change, are valid questions.
  CliRun last = Mmsb("blame " + log_ + " Counters.total --at 10", dir_.path());
  EXPECT_EQ(last.code, 0) << last.err;
  CliRun none = Mmsb("history " + log_ + " Counters.hits[3] --from 2 --to 9", dir_.path());
  EXPECT_EQ(none.code, 0) << none.err;
  EXPECT_NE(none.out.find("0 change(s)"), std::string::npos) << none.out;
  // A directory that is not a log is refused, and no index is built in it.
  const std::string plain = dir_.Sub("plain");
  std::filesystem::create_directories(plain);
  CliRun d = Mmsb("bisect " + plain + " --where '1 == 1'", dir_.path());
  EXPECT_EQ(d.code, 1);
  EXPECT_NE(d.err.find("plain"), std::string::npos) << d.err;
  EXPECT_TRUE(std::filesystem::is_empty(plain));
  // A predicate true from the start names no epoch -1.
  CliRun start = Mmsb("bisect " + log_ + " --where '1 == 1'", dir_.path());
  EXPECT_EQ(start.code, 0) << start.err;
  EXPECT_EQ(start.out.find("18446744073709551615"), std::string::npos) << start.out;
  EXPECT_NE(start.out.find("initial state"), std::string::npos) << start.out;
}

}  // namespace
}  // namespace mmsb
