// `mmsb report`'s library: what the page embeds for the scrubber, the heatmap and the graph, and
// that the values shown for an epoch are the runtime's state diff (what `mmsb diff` prints).
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mmsb/ir/record.h"
#include "mmsb/ir/store.h"
#include "mmsb/replay.h"
#include "mmsb/report/report.h"

#include "fixture_log.h"
#include "html.h"

namespace mmsb::report {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "mmsb-report-XXXXXX").string();
    path_ = mkdtemp(t.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The JSON the page embeds.
nlohmann::json Embedded(const std::string& html) {
  const std::string open = "<script type=\"application/json\" id=\"mmsb-data\">";
  const size_t a = html.find(open);
  const size_t b = html.find("</script>", a);
  EXPECT_NE(a, std::string::npos);
  return nlohmann::json::parse(html.substr(a + open.size(), b - a - open.size()));
}

// A column's diff: its chunk base64-decoded and inflated, as the page does in the browser.
nlohmann::json Detail(const nlohmann::json& data, std::size_t column) {
  const int chunk = data["columns"][column][5];
  if (chunk < 0) return nullptr;
  const std::string b64 = data["chunks"][chunk];
  std::string raw;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char ch : b64) {
    const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char* at = std::strchr(abc, ch);
    if (ch == '=' || at == nullptr) break;
    acc = (acc << 6) | static_cast<std::uint32_t>(at - abc);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      raw += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  z_stream z{};
  EXPECT_EQ(inflateInit(&z), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(raw.data());
  z.avail_in = static_cast<uInt>(raw.size());
  std::string text;
  char buf[65536];
  int rc;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    text.append(buf, sizeof buf - z.avail_out);
  } while (rc == Z_OK);
  inflateEnd(&z);
  EXPECT_EQ(rc, Z_STREAM_END);
  return nlohmann::json::parse(text)[std::to_string(column)];
}

int RowIndex(const nlohmann::json& data, const std::string& label) {
  for (size_t i = 0; i < data["rows"].size(); ++i)
    if (data["rows"][i][0] == label) return static_cast<int>(i);
  return -1;
}

// Field changes of page `name` in a column's embedded diff: path -> (old, new).
std::map<std::string, std::pair<std::string, std::string>> Fields(const nlohmann::json& detail,
                                                                  const std::string& name) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  for (const auto& p : detail["pages"]) {
    if (p[1] != name) continue;
    for (const auto& f : p[5]) out[f[0]] = {f[1], f[2]};
  }
  return out;
}

class LogReportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    ASSERT_TRUE(testing::WriteFixtureLog(dir_->Sub("run.tlog"), 50, 4).ok());
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string Log() { return dir_->Sub("run.tlog"); }
  static TempDir* dir_;
};
TempDir* LogReportTest::dir_ = nullptr;

TEST_F(LogReportTest, OneColumnPerEpochShowsTheSameValuesAsMmsbDiff) {
  LogReportStats stats;
  auto html = BuildLogReport(Log(), {}, &stats);
  ASSERT_TRUE(html.ok()) << html.status().ToString();
  EXPECT_EQ(stats.epochs, 50u);
  EXPECT_EQ(stats.epochs_per_column, 1u);
  const nlohmann::json d = Embedded(*html);
  ASSERT_EQ(d["columns"].size(), 50u);
  const int first = d["first_epoch"];
  ASSERT_EQ(first, 1);
  const nlohmann::json detail = Detail(d, 42 - first);
  EXPECT_EQ(detail["from"], 41);
  EXPECT_EQ(detail["to"], 42);
  auto fields = Fields(detail, "g_particles");
  EXPECT_EQ(fields["Particles.x[42]"], std::make_pair(std::string("0"), std::string("21")));
  EXPECT_EQ(fields["Particles.step"], std::make_pair(std::string("41"), std::string("42")));
  // Exactly what the runtime's diff of the two epochs says, field for field.
  auto want = DiffEpochs(Log(), 41, 42);
  ASSERT_TRUE(want.ok());
  for (const PageDiff& p : want->pages) {
    auto got = Fields(detail, p.name);
    ASSERT_EQ(got.size(), p.fields.size()) << p.name;
    for (const FieldChange& f : p.fields) {
      const std::string path = p.type_name.empty() ? f.path : p.type_name + "." + f.path;
      EXPECT_EQ(got[path], std::make_pair(f.old_value, f.new_value)) << path;
    }
  }
}

TEST_F(LogReportTest, HeatmapRowsCollapseArraysAndCountChangesPerColumn) {
  auto html = BuildLogReport(Log(), {});
  ASSERT_TRUE(html.ok());
  const nlohmann::json d = Embedded(*html);
  const int x = RowIndex(d, "Particles.x[]");
  const int step = RowIndex(d, "Particles.step");
  const int x42 = RowIndex(d, "Particles.x[42]");
  ASSERT_GE(x, 0);
  ASSERT_GE(step, 0);
  ASSERT_GE(x42, 0);
  EXPECT_EQ(d["rows"][x][2], -1);   // a parent row
  EXPECT_EQ(d["rows"][x42][2], x);  // an element row under it
  std::map<std::pair<int, int>, int> cells;
  for (const auto& c : d["cells"]) cells[{c[0], c[1]}] = c[2];
  // Epoch 42 (column 41): x[42] of g_particles and of its passthrough mirror, x[38] of p1; step
  // of both.
  EXPECT_EQ((cells[{x, 41}]), 3);
  EXPECT_EQ((cells[{x42, 41}]), 2);
  EXPECT_EQ((cells[{step, 41}]), 2);
  int step_cells = 0;
  for (const auto& [rc, n] : cells) step_cells += rc.first == step ? n : 0;
  EXPECT_EQ(step_cells, 100);
}

TEST_F(LogReportTest, BucketedColumnsCarryTheNetDiffAcrossTheirEpochs) {
  LogReportOptions o;
  o.max_columns = 8;
  LogReportStats stats;
  auto html = BuildLogReport(Log(), o, &stats);
  ASSERT_TRUE(html.ok());
  EXPECT_EQ(stats.epochs_per_column, 8u);
  const nlohmann::json d = Embedded(*html);
  ASSERT_EQ(d["columns"].size(), 7u);  // epochs 1..50 in aligned blocks of 8: [0,8) .. [48,56)
  std::uint64_t epochs = 0;
  for (const auto& c : d["columns"]) epochs += c[3].get<std::uint64_t>();
  EXPECT_EQ(epochs, 50u);
  const nlohmann::json col = Detail(d, 5);  // epochs 40..47
  EXPECT_EQ(d["columns"][5][0], 40);
  EXPECT_EQ(d["columns"][5][1], 47);
  EXPECT_EQ(col["from"], 39);
  EXPECT_EQ(col["to"], 47);
  auto want = DiffEpochs(Log(), 39, 47);
  ASSERT_TRUE(want.ok());
  for (const PageDiff& p : want->pages) {
    if (p.name != "g_particles") continue;
    auto got = Fields(col, "g_particles");
    for (size_t i = 0; i < p.fields.size() && i < o.fields_per_page; ++i) {
      EXPECT_EQ(got["Particles." + p.fields[i].path],
                std::make_pair(p.fields[i].old_value, p.fields[i].new_value));
    }
  }
}

TEST_F(LogReportTest, GraphListsEdgesByKindAndPerPageChangeCounts) {
  auto html = BuildLogReport(Log(), {});
  ASSERT_TRUE(html.ok());
  const nlohmann::json d = Embedded(*html);
  std::multiset<std::string> kinds;
  for (const auto& e : d["edges"]) kinds.insert(e[2].get<std::string>());
  EXPECT_EQ(kinds, (std::multiset<std::string>{"passthrough", "projection", "user"}));
  for (const auto& p : d["pages"]) {
    if (p[1] == "g_particles") EXPECT_EQ(p[4], 50);  // changed in every epoch
    if (p[1] == "p1") EXPECT_EQ(p[4], 17);           // e % 3 == 0 for e in 1..50, plus creation
  }
}

TEST_F(LogReportTest, PageIsSelfContained) {
  auto html = BuildLogReport(Log(), {});
  ASSERT_TRUE(html.ok());
  EXPECT_EQ(html->find(" src="), std::string::npos);
  EXPECT_EQ(html->find("href=\"http"), std::string::npos);
  EXPECT_EQ(html->find("{{"), std::string::npos);  // every placeholder filled
  EXPECT_NE(html->find("default-src 'none'"), std::string::npos);
}

// The fixture's sites: FixtureStep (a transaction) commits epochs not divisible by 5,
// WriteFixtureLog's commit() call the others.
std::pair<int, int> Sites(const nlohmann::json& d) {
  int step = -1, call = -1;
  for (size_t i = 0; i < d["sites"].size(); ++i) {
    const std::string label = d["sites"][i][0];
    if (label.find("FixtureStep") != std::string::npos) step = static_cast<int>(i);
    if (label.find("WriteFixtureLog") != std::string::npos) call = static_cast<int>(i);
  }
  return {step, call};
}

TEST_F(LogReportTest, ColumnsNameWhatCommittedThemFromTheLogsProvenance) {
  LogReportOptions o;
  o.max_columns = 8;
  auto html = BuildLogReport(Log(), o);
  ASSERT_TRUE(html.ok());
  const nlohmann::json d = Embedded(*html);
  const auto [step, call] = Sites(d);
  ASSERT_GE(step, 1);
  ASSERT_GE(call, 1);
  EXPECT_EQ(d["sites"][step][1], "transaction");
  EXPECT_EQ(d["sites"][call][1], "commit");
  EXPECT_EQ(d["sites"][step][5], 40);  // epochs
  EXPECT_EQ(d["sites"][call][5], 10);
  EXPECT_EQ(d["sites"][0][5], 0);  // every epoch has provenance
  // Column 5 holds epochs 40..47: 40 and 45 by the commit() call, the other 6 by the
  // transaction; the transaction committed more bytes, so it is the first (bottom) segment.
  const nlohmann::json& segs = d["columns"][5][4];
  ASSERT_EQ(segs.size(), 2u);
  EXPECT_EQ(segs[0][0], step);
  EXPECT_EQ(segs[0][2], 6);
  EXPECT_EQ(segs[1][0], call);
  EXPECT_EQ(segs[1][2], 2);
  EXPECT_EQ(segs[0][1].get<std::uint64_t>() + segs[1][1].get<std::uint64_t>(),
            d["columns"][5][2].get<std::uint64_t>());
}

TEST_F(LogReportTest, CellsCarryTheLastChangeAndItsCommitSite) {
  LogReportOptions o;
  o.max_columns = 8;
  auto html = BuildLogReport(Log(), o);
  ASSERT_TRUE(html.ok());
  const nlohmann::json d = Embedded(*html);
  const auto [step, call] = Sites(d);
  const int x42 = RowIndex(d, "Particles.x[42]");
  const int stp = RowIndex(d, "Particles.step");
  ASSERT_GE(x42, 0);
  bool seen_x42 = false, seen_step = false;
  for (const auto& c : d["cells"]) {
    // x[42]: epoch 42 (g_particles and its mirror) in column 5, committed by the transaction.
    if (c[0] == x42 && c[1] == 5) {
      seen_x42 = true;
      EXPECT_EQ(c[3], 42);
      EXPECT_EQ(c[4], step);
    }
    // step changes every epoch: the last one of column 4 (32..39) is 39, of column 6 (48..50) 50.
    if (c[0] == stp && c[1] == 4) {
      seen_step = true;
      EXPECT_EQ(c[3], 39);
      EXPECT_EQ(c[4], step);
    }
    if (c[0] == stp && c[1] == 6) {
      EXPECT_EQ(c[3], 50);
      EXPECT_EQ(c[4], call);
    }
  }
  EXPECT_TRUE(seen_x42);
  EXPECT_TRUE(seen_step);
}

// An IR store where FixtureStep is 5 instructions in generation 1 and 10 in generation 2.
void WriteStepStore(const std::string& db) {
  auto store = ir::Store::Open(db, ir::Store::Mode::kReadWrite);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (int gen = 1; gen <= 2; ++gen) {
    ir::TuCapture tu;
    tu.source = "/src/fixture.cc";
    tu.output = "/src/fixture.cc.o";
    tu.compiler = "clang version 19.1.7";
    tu.flags_hash = "0123456789abcdef";
    ir::FunctionRecord r;
    r.name = "_ZN4mmsb7testing11FixtureStepEv";
    r.stage = ir::Stage::kPre;
    r.instructions = gen == 1 ? 5 : 10;
    r.text = "define void @f() {\n" + std::string(r.instructions, ' ') + "ret void\n}\n";
    r.structural_hash = 7 + gen;
    r.blocks = 1;
    r.linkage = "external";
    tu.functions.push_back(r);
    auto g = (*store)->AddCapture(tu, {std::to_string(gen)});
    ASSERT_TRUE(g.ok()) << g.status().ToString();
  }
}

TEST_F(LogReportTest, StoreLinksEachCommitSiteToItsFunctionsIr) {
  const std::string db = dir_->Sub("ir.db");
  WriteStepStore(db);
  LogReportOptions o;
  o.ir_store = db;
  LogReportStats stats;
  auto html = BuildLogReport(Log(), o, &stats);
  ASSERT_TRUE(html.ok()) << html.status().ToString();
  const nlohmann::json d = Embedded(*html);
  const auto [step, call] = Sites(d);
  // The store's generations were opened after the run: the latest is taken, and says so.
  EXPECT_EQ(stats.ir_generation, 2);
  EXPECT_NE(stats.ir_generation_how.find("latest"), std::string::npos);
  EXPECT_EQ(stats.ir_sites_found, 1u);
  const nlohmann::json& ir = d["ir"];
  EXPECT_EQ(ir["generation"], 2);
  EXPECT_EQ(ir["previous"], 1);
  EXPECT_EQ(ir["link"], "ir.html");
  const nlohmann::json& s = ir["sites"][std::to_string(step)];
  EXPECT_EQ(s[0], "mmsb::testing::FixtureStep");
  EXPECT_EQ(s[1], "_ZN4mmsb7testing11FixtureStepEv");
  EXPECT_EQ(s[2], 10);
  EXPECT_EQ(s[3], "changed");
  EXPECT_EQ(s[4], nlohmann::json::array({2}));
  EXPECT_EQ(ir["sites"][std::to_string(call)][3], "absent");

  // --gen 1: the function is new there (no generation before it).
  o.ir_generation = "1";
  html = BuildLogReport(Log(), o, &stats);
  ASSERT_TRUE(html.ok()) << html.status().ToString();
  const nlohmann::json d1 = Embedded(*html);
  EXPECT_EQ(d1["ir"]["sites"][std::to_string(step)][3], "added");
  EXPECT_EQ(d1["ir"]["sites"][std::to_string(step)][2], 5);

  o.ir_generation = "7";
  html = BuildLogReport(Log(), o, &stats);
  EXPECT_FALSE(html.ok());
  o.ir_generation = "";
  o.ir_store = dir_->Sub("no-such.db");
  html = BuildLogReport(Log(), o, &stats);
  ASSERT_FALSE(html.ok());
  EXPECT_NE(html.status().message().find("--store"), std::string::npos);
}

TEST(LogReport, MissingLogIsAnErrorNotACrash) {
  TempDir dir;
  auto html = BuildLogReport(dir.Sub("nope"), {});
  EXPECT_FALSE(html.ok());
}

TEST(ReportHtml, DataCannotCloseTheScriptElementOrInjectPlaceholders) {
  const std::string page = RenderPage(
      "<script>{{DATA}}</script><h1>{{TITLE}}</h1>", "",
      nlohmann::json({{"name", "</script><script>alert(1)</script>{{TITLE}}"}}).dump(), "<b>t</b>");
  EXPECT_EQ(page.find("</script><script>alert"), std::string::npos) << page;
  EXPECT_NE(page.find("{{TITLE}}"), std::string::npos);  // data is not rescanned
  EXPECT_NE(page.find("<h1>&lt;b&gt;t&lt;/b&gt;</h1>"), std::string::npos) << page;
  const size_t a = page.find("<script>") + 8;
  const auto back = nlohmann::json::parse(page.substr(a, page.find("</script>") - a));
  EXPECT_EQ(back["name"], "</script><script>alert(1)</script>{{TITLE}}");
}

}  // namespace
}  // namespace mmsb::report
