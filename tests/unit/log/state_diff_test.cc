// State diff between epochs: byte ranges, fields by name with old -> new values from the type
// descriptors recorded in the log, nested records, arrays of records, filters, JSON.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mmsb/mmsb.h"

#include "log_test_util.h"

namespace mmsb {
namespace {

struct Vec3 {
  float x, y, z;
};
struct Particles {
  float x[16];
  Vec3 pos[2];
  std::uint64_t step;
};

class StateDiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.arena_bytes = std::size_t{1} << 28;
    ASSERT_TRUE(start(o).ok());
    TypeDescriptor vec;
    vec.name = "Vec3";
    vec.size = sizeof(Vec3);
    vec.align = 4;
    vec.fields = {{"x", 0, 4, ScalarKind::kF32, 4, {}, ""},
                  {"y", 4, 4, ScalarKind::kF32, 4, {}, ""},
                  {"z", 8, 4, ScalarKind::kF32, 4, {}, ""}};
    ASSERT_TRUE(RegisterType(vec).ok());
    TypeDescriptor t;
    t.name = "Particles";
    t.size = sizeof(Particles);
    t.align = 8;
    t.fields = {{"x", offsetof(Particles, x), sizeof(float) * 16, ScalarKind::kF32, 4, {16}, ""},
                {"pos",
                 offsetof(Particles, pos),
                 sizeof(Vec3) * 2,
                 ScalarKind::kRecord,
                 sizeof(Vec3),
                 {2},
                 "Vec3"},
                {"step", offsetof(Particles, step), 8, ScalarKind::kU64, 8, {}, ""}};
    auto reg = RegisterType(t);
    ASSERT_TRUE(reg.ok()) << reg.status().ToString();
    auto sink = AttachLog(log_);
    ASSERT_TRUE(sink.ok());
    sink_ = *sink;
    PageOptions po;
    po.type = *reg;
    po.name = "g_particles";
    particles_ = *CreatePage(sizeof(Particles), po);
    raw_ = *CreatePage(100);
    PageOptions many;
    many.type = *reg;
    array_ = *CreatePage(3 * sizeof(Particles), many);
  }
  void TearDown() override {
    sink_.reset();
    stop();
  }
  Particles* P() { return reinterpret_cast<Particles*>(particles_->data()); }
  void Commit() { ASSERT_TRUE(commit().ok()); }

  testing::TempDir dir_;
  std::string log_ = dir_.Sub("run.tlog");
  std::shared_ptr<LogSink> sink_;
  Page* particles_ = nullptr;
  Page* raw_ = nullptr;
  Page* array_ = nullptr;
};

TEST_F(StateDiffTest, ChangedFieldsAreNamedWithOldAndNewValues) {
  *rt::w(&P()->x[12]) = 1.0f;
  Commit();  // epoch 1
  *rt::w(&P()->x[12]) = 1.5f;
  *rt::w(&P()->pos[1].y) = -2.0f;
  *rt::w(&P()->step) = 42;
  *rt::w(&raw_->data()[7]) = 9;
  Commit();  // epoch 2
  ASSERT_TRUE(sink_->Close().ok());

  auto d = DiffEpochs(log_, 1, 2);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->from, 1u);
  EXPECT_EQ(d->to, 2u);
  ASSERT_EQ(d->pages.size(), 2u);
  const PageDiff& p = d->pages[0];
  EXPECT_EQ(p.id, particles_->id());
  EXPECT_EQ(p.kind, PageDiff::Kind::kChanged);
  EXPECT_EQ(p.type_name, "Particles");
  EXPECT_EQ(p.name, "g_particles");
  ASSERT_EQ(p.fields.size(), 3u);
  EXPECT_EQ(p.fields[0].path, "x[12]");
  EXPECT_EQ(p.fields[0].old_value, "1");
  EXPECT_EQ(p.fields[0].new_value, "1.5");
  EXPECT_EQ(p.fields[1].path, "pos[1].y");
  EXPECT_EQ(p.fields[1].old_value, "0");
  EXPECT_EQ(p.fields[1].new_value, "-2");
  EXPECT_EQ(p.fields[2].path, "step");
  EXPECT_EQ(p.fields[2].new_value, "42");
  // Byte ranges: only the bytes that differ (1.0f -> 1.5f changes one byte of the float).
  std::uint64_t bytes = 0;
  for (const ByteRun& r : p.runs) bytes += r.length;
  EXPECT_EQ(bytes, p.changed_bytes);
  EXPECT_GE(p.runs.front().offset, offsetof(Particles, x) + 12 * 4);
  const PageDiff& raw = d->pages[1];
  EXPECT_TRUE(raw.fields.empty()) << "no type, no fields";
  ASSERT_EQ(raw.runs.size(), 1u);
  EXPECT_EQ(raw.runs[0].offset, 7u);
  EXPECT_EQ(raw.runs[0].length, 1u);
}

TEST_F(StateDiffTest, PagesHoldingSeveralRecordsAreIndexed) {
  Commit();
  auto* arr = reinterpret_cast<Particles*>(array_->data());
  *rt::w(&arr[2].x[3]) = 7.0f;
  Commit();
  ASSERT_TRUE(sink_->Close().ok());
  DiffOptions o;
  o.page = array_->id();
  auto d = DiffEpochs(log_, 1, 2, o);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->pages.size(), 1u);
  ASSERT_EQ(d->pages[0].fields.size(), 1u);
  EXPECT_EQ(d->pages[0].fields[0].path, "[2].x[3]");
  EXPECT_EQ(d->pages[0].fields[0].new_value, "7");
}

TEST_F(StateDiffTest, FiltersByPageAndTypeAndReportsAddedAndRemovedPages) {
  Commit();
  *rt::w(&P()->step) = 1;
  *rt::w(&raw_->data()[0]) = 1;
  Page* fresh = *CreatePage(32);
  *rt::w(&fresh->data()[4]) = 4;
  ASSERT_TRUE(FreePage(array_).ok());
  Commit();
  ASSERT_TRUE(sink_->Close().ok());
  auto all = DiffEpochs(log_, 1, 2);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->pages.size(), 4u);
  std::map<PageId, PageDiff::Kind> kinds;
  for (const PageDiff& p : all->pages) kinds[p.id] = p.kind;
  EXPECT_EQ(kinds[fresh->id()], PageDiff::Kind::kAdded);
  EXPECT_EQ(kinds[3], PageDiff::Kind::kRemoved) << "the array page (id 3) was freed";
  DiffOptions by_type;
  by_type.type_name = "Particles";
  auto typed = DiffEpochs(log_, 1, 2, by_type);
  ASSERT_TRUE(typed.ok());
  for (const PageDiff& p : typed->pages) EXPECT_EQ(p.type_name, "Particles");
  EXPECT_EQ(typed->pages.size(), 2u);  // the changed one and the removed one
  DiffOptions by_page;
  by_page.page = raw_->id();
  auto one = DiffEpochs(log_, 1, 2, by_page);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->pages.size(), 1u);
  EXPECT_EQ(one->pages[0].id, raw_->id());
  // Backwards: the same change the other way round.
  auto back = DiffEpochs(log_, 2, 1, by_page);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->from, 2u);
  EXPECT_EQ(back->pages[0].runs, one->pages[0].runs);
}

TEST_F(StateDiffTest, JsonHasTheDocumentedKeys) {
  *rt::w(&P()->x[0]) = 2.5f;
  Commit();
  ASSERT_TRUE(sink_->Close().ok());
  auto d = DiffEpochs(log_, 0, 1);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  auto j = nlohmann::json::parse(StateDiffToJson(*d));
  EXPECT_EQ(j["format"], "mmsb.diff/1");
  EXPECT_EQ(j["from"], 0);
  EXPECT_EQ(j["to"], 1);
  bool found = false;
  for (const auto& p : j["pages"]) {
    if (p["name"] != "g_particles") continue;
    found = true;
    EXPECT_EQ(p["change"], "added");
    EXPECT_EQ(p["type"], "Particles");
    EXPECT_EQ(p["fields"][0]["path"], "x[0]");
    EXPECT_EQ(p["fields"][0]["old"], "0");
    EXPECT_EQ(p["fields"][0]["new"], "2.5");
    EXPECT_EQ(p["fields"][0]["kind"], "f32");
    EXPECT_TRUE(p["runs"].is_array());
  }
  EXPECT_TRUE(found);
  auto st = Replay(log_);
  ASSERT_TRUE(st.ok());
  auto js = nlohmann::json::parse(LogStateToJson(*st, nullptr, true));
  EXPECT_EQ(js["format"], "mmsb.state/1");
  EXPECT_EQ(js["epoch"], 1);
  EXPECT_EQ(js["pages"].size(), 3u);
  EXPECT_EQ(js["types"].size(), 2u);
  EXPECT_EQ(js["pages"][0]["bytes"].get<std::string>().size(), 2 * sizeof(Particles));
}

}  // namespace
}  // namespace mmsb

namespace mmsb {
namespace {

// Found by the log reader fuzzer: names in a log are untrusted bytes, not UTF-8, and the JSON
// writer threw on them (terminating the process).
TEST(StateJson, InvalidUtf8InNamesIsReplacedNotFatal) {
  LogState st;
  st.epoch = 1;
  ReplayedPage& p = st.pages[1];
  p.id = 1;
  p.name = std::string("bad\xf6\xff name", 10);
  p.type_name = "\xc3";
  p.bytes = {1, 2};
  std::string json;
  ASSERT_NO_THROW(json = LogStateToJson(st, nullptr, false));
  auto j = nlohmann::json::parse(json);
  EXPECT_EQ(j["pages"][0]["name"].get<std::string>().substr(0, 3), "bad");
  LogState empty;
  StateDiff d = DiffStates(empty, st);
  ASSERT_NO_THROW(json = StateDiffToJson(d));
  EXPECT_TRUE(nlohmann::json::parse(json)["pages"].is_array());
}

}  // namespace
}  // namespace mmsb
