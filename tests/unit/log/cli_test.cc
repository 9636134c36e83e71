// The `mmsb` CLI's log, replay and diff subcommands, run as a user would: exit codes, the error
// message naming file and offset, no colour when stdout is not a terminal, and the JSON forms.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mmsb/mmsb.h"

#include "cli_test_util.h"
#include "log_test_util.h"

namespace mmsb {
namespace {

using testing::CliRun;
using testing::Mmsb;

struct Particles {
  float x[64];
  std::uint64_t step;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.arena_bytes = std::size_t{1} << 28;
    ASSERT_TRUE(start(o).ok());
    TypeDescriptor t;
    t.name = "Particles";
    t.size = sizeof(Particles);
    t.align = 8;
    t.fields = {{"x", 0, sizeof(float) * 64, ScalarKind::kF32, 4, {64}, ""},
                {"step", offsetof(Particles, step), 8, ScalarKind::kU64, 8, {}, ""}};
    auto type = RegisterType(t);
    ASSERT_TRUE(type.ok());
    auto sink = AttachLog(log_);
    ASSERT_TRUE(sink.ok());
    PageOptions po;
    po.type = *type;
    po.name = "g_particles";
    Page* p = *CreatePage(sizeof(Particles), po);
    auto* particles = reinterpret_cast<Particles*>(p->data());
    Page* raw = *CreatePage(4096);
    for (int e = 1; e <= 42; ++e) {
      *rt::w(&particles->x[12]) = e == 42 ? 1.5f : 1.0f;
      *rt::w(&particles->step) = static_cast<std::uint64_t>(e);
      *rt::w(&raw->data()[e * 10]) = static_cast<std::uint8_t>(e);
      ASSERT_TRUE(commit().ok());
    }
    ASSERT_TRUE((*sink)->Close().ok());
    stop();
  }
  testing::TempDir dir_;
  std::string log_ = dir_.Sub("run.tlog");
};

TEST_F(CliTest, DiffNamesFieldsWithOldAndNewValuesAndNoColourOffATerminal) {
  CliRun r = Mmsb("diff " + log_ + " --from 41 --to 42", dir_.path());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("Particles.x[12]: 1 -> 1.5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Particles.step: 41 -> 42"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\033'), std::string::npos) << "colour escapes in piped output";

  r = Mmsb("diff " + log_ + " --from 41 --to 42 --type Particles --json", dir_.path());
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["format"], "mmsb.diff/1");
  ASSERT_EQ(j["pages"].size(), 1u);
  EXPECT_EQ(j["pages"][0]["fields"][0]["path"], "x[12]");
  EXPECT_EQ(j["pages"][0]["fields"][0]["new"], "1.5");

  r = Mmsb("diff " + log_ + " --from 41 --to 99", dir_.path());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("epoch 99 is beyond the end"), std::string::npos) << r.err;
}

TEST_F(CliTest, LogShowStatsAndVerifyAgreeOnTheLog) {
  CliRun r = Mmsb("log show " + log_, dir_.path());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("00000001.seg:56"), std::string::npos)
      << "records are listed by file:offset";
  EXPECT_NE(r.out.find("commit"), std::string::npos);
  EXPECT_NE(r.out.find("name=g_particles type=Particles"), std::string::npos)
      << r.out.substr(0, 2000);

  r = Mmsb("log show " + log_ + " --json --type commit", dir_.path());
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["format"], "mmsb.log/1");
  ASSERT_EQ(j["records"].size(), 42u);
  EXPECT_EQ(j["records"][41]["epoch"], 42);

  r = Mmsb("log stats " + log_ + " --json", dir_.path());
  ASSERT_EQ(r.code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["commits"], 42);
  EXPECT_EQ(j["last_epoch"], 42);
  EXPECT_EQ(j["pages_created"], 2);
  EXPECT_EQ(j["records"]["delta"]["count"], 84);

  r = Mmsb("log verify " + log_, dir_.path());
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("OK"), std::string::npos) << r.out;
}

TEST_F(CliTest, CorruptionIsReportedWithFileAndOffsetAndAFailingExitCode) {
  const std::string seg = log_ + "/00000001.seg";
  std::FILE* f = std::fopen(seg.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  std::fseek(f, 6000, SEEK_SET);
  const int c = std::fgetc(f);
  std::fseek(f, 6000, SEEK_SET);
  std::fputc(c ^ 0xff, f);
  std::fclose(f);
  CliRun r = Mmsb("log verify " + log_, dir_.path());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("00000001.seg:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("corruption"), std::string::npos) << r.out;
  r = Mmsb("log verify --salvage --json " + log_, dir_.path());
  EXPECT_EQ(r.code, 1) << "salvage still reports the damage";
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["epoch"], 42) << "salvage reads on past the damage";
  EXPECT_GE(j["epochs_dropped"].get<int>(), 1);
  r = Mmsb("replay " + log_ + " --epoch 42", dir_.path());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("00000001.seg:"), std::string::npos) << r.err;
}

TEST_F(CliTest, ReplayWritesPagesAndJson) {
  CliRun r = Mmsb("replay " + log_ + " --epoch 42 --json", dir_.path());
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["format"], "mmsb.state/1");
  EXPECT_EQ(j["epoch"], 42);
  ASSERT_EQ(j["pages"].size(), 2u);
  EXPECT_EQ(j["pages"][0]["name"], "g_particles");

  const std::string out = dir_.Sub("state");
  r = Mmsb("replay " + log_ + " --epoch 7 --out " + out, dir_.path());
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream page(out + "/pages/2.bin", std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(page)), std::istreambuf_iterator<char>());
  ASSERT_EQ(bytes.size(), 4096u);
  EXPECT_EQ(bytes[70], 7);
  EXPECT_EQ(bytes[80], 0) << "epoch 8's write is not in epoch 7";
  std::ifstream manifest(out + "/manifest.json");
  auto m = nlohmann::json::parse(manifest);
  EXPECT_EQ(m["epoch"], 7);

  r = Mmsb("replay " + dir_.Sub("nope.tlog") + " --epoch 1", dir_.path());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("nope.tlog"), std::string::npos) << r.err;
  r = Mmsb("replay " + log_, dir_.path());
  EXPECT_EQ(r.code, 2) << "--epoch is required";
}

}  // namespace
}  // namespace mmsb
