// `mmsb ir report`'s library: the treemap's functions (one per name, with TU counts), their
// change kinds, the embedded pre/post diffs, the trends over generations and the page writers.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mmsb/ir/gate.h"
#include "mmsb/report/report.h"

#include "ir_test_util.h"

namespace mmsb::report {
namespace {

using ir::testing::Fn;
using ir::testing::TempDir;
using ir::testing::Tu;

nlohmann::json Embedded(const std::string& html) {
  const std::string open = "<script type=\"application/json\" id=\"mmsb-data\">";
  const size_t a = html.find(open);
  const size_t b = html.find("</script>", a);
  return nlohmann::json::parse(html.substr(a + open.size(), b - a - open.size()));
}

TEST(IrReport, FunctionsCarryChangeDiffsTrendsAndPageWriters) {
  TempDir dir;
  auto store = ir::Store::Open(dir.Sub("ir.db"), ir::Store::Mode::kReadWrite);
  ASSERT_TRUE(store.ok());
  auto writer = Fn("Step", "store\nret void");
  writer.page_types = {"Particles"};
  for (const char* tu : {"/p/a.cc", "/p/b.cc"}) {
    ASSERT_TRUE((*store)
                    ->AddCapture(Tu(tu, {Fn("Inl", "ret void"), Fn("Old", "x\nret void")}), {"1"})
                    .ok());
  }
  ASSERT_TRUE(
      (*store)
          ->AddCapture(Tu("/p/a.cc", {Fn("Inl", "a\nret void"), writer, Fn("Old", "x\nret void")}),
                       {"2"})
          .ok());
  ASSERT_TRUE((*store)->AddCapture(Tu("/p/b.cc", {Fn("Inl", "a\nret void")}), {"2"}).ok());
  IrReportStats stats;
  auto html = BuildIrReport(**store, 1, 2, {}, &stats);
  ASSERT_TRUE(html.ok()) << html.status().ToString();
  EXPECT_EQ(stats.functions, 3u);  // Inl, Step, Old (once each, whatever the TU count)
  const nlohmann::json d = Embedded(*html);
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& f : d["functions"]) by_name[f[0]] = f;
  ASSERT_EQ(by_name.size(), 3u);
  EXPECT_EQ(by_name["Inl"][5], 2);  // TUs
  EXPECT_EQ(by_name["Inl"][7], "changed");
  EXPECT_EQ(by_name["Inl"][8], 1);                        // instruction delta of one copy
  EXPECT_EQ(by_name["Inl"][11], nlohmann::json({1, 2}));  // trend over generations 1 and 2
  EXPECT_EQ(by_name["Step"][7], "added");
  EXPECT_EQ(by_name["Step"][6], nlohmann::json({"Particles"}));
  EXPECT_EQ(by_name["Old"][7], "");  // unchanged in a.cc
  EXPECT_EQ(by_name["Inl"][10], ir::FunctionAnchor("Inl"));
  // b.cc dropped Old: one removal.
  ASSERT_EQ(d["removed"].size(), 1u);
  EXPECT_EQ(d["removed"][0][0], "Old");
  ASSERT_TRUE(d["diffs"].contains("Inl"));
  EXPECT_NE(d["diffs"]["Inl"]["pre"].get<std::string>().find("+a"), std::string::npos);
}

TEST(IrReport, UnknownGenerationIsAnError) {
  TempDir dir;
  auto store = ir::Store::Open(dir.Sub("ir.db"), ir::Store::Mode::kReadWrite);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->AddCapture(Tu("/p/a.cc", {Fn("F", "ret void")}), {"1"}).ok());
  auto html = BuildIrReport(**store, 1, 7, {});
  EXPECT_FALSE(html.ok());
}

}  // namespace
}  // namespace mmsb::report
