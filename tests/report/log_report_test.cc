// `mmsb report`'s library: what the page embeds for the scrubber, the heatmap and the graph, and
// that the values shown for an epoch are the runtime's state diff (what `mmsb diff` prints).
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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
