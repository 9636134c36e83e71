// `mmsb ir gate`: budget parsing, each rule, rename tolerance, grouping across TUs, and the
// Markdown and JSON summaries.
#include "mmsb/ir/gate.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ir_test_util.h"

namespace mmsb::ir {
namespace {

using testing::Fn;
using testing::TempDir;
using testing::Tu;

TEST(IrGateBudget, ParsesEveryRule) {
  auto b = ParseGateBudget(R"({"stage": "post", "total_growth_percent": 2.5, "function_growth": 40,
      "unchanged": ["^Hot"], "no_growth_at_post": ["Step"], "top": 3})");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->stage, Stage::kPost);
  EXPECT_EQ(*b->total_growth_percent, 2.5);
  EXPECT_EQ(*b->function_growth, 40);
  EXPECT_EQ(b->unchanged, std::vector<std::string>{"^Hot"});
  EXPECT_EQ(b->no_growth_at_post, std::vector<std::string>{"Step"});
  EXPECT_EQ(b->top, 3);
  EXPECT_TRUE(ParseGateBudget("{}").ok());
}

TEST(IrGateBudget, TyposAndBadValuesAreErrorsNamingTheKey) {
  auto msg = [](const char* text) {
    auto b = ParseGateBudget(text);
    EXPECT_FALSE(b.ok()) << text;
    return b.ok() ? std::string() : b.status().message();
  };
  EXPECT_NE(msg(R"({"function_grwoth": 3})").find("unknown key \"function_grwoth\""),
            std::string::npos);
  EXPECT_NE(msg(R"({"function_growth": "3"})").find("function_growth"), std::string::npos);
  EXPECT_NE(msg(R"({"unchanged": ["("]})").find("bad regex '('"), std::string::npos);
  EXPECT_NE(msg(R"({"stage": "mid"})").find("stage"), std::string::npos);
  EXPECT_NE(msg("[1, 2]").find("object"), std::string::npos);
  EXPECT_NE(msg("{").find("not valid JSON"), std::string::npos);
}

class IrGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::Open(dir_.Sub("ir.db"), Store::Mode::kReadWrite);
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
  }
  void Capture(const std::string& gen, const std::string& tu, std::vector<FunctionRecord> fns) {
    ASSERT_TRUE(store_->AddCapture(Tu(tu, std::move(fns)), {gen}).ok());
  }
  GateResult Gate(const std::string& budget) {
    auto b = ParseGateBudget(budget);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    auto r = EvaluateGate(*store_, 1, 2, *b);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : GateResult{};
  }
  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(IrGateTest, RenameOnlyNeverTripsTheStrictestBudget) {
  Capture("1", "/p/a.cc", {Fn("Tax", "a\nb\nret void"), Fn("Keep", "ret void")});
  // Same body, new name: DiffGenerations pairs them by structural hash.
  Capture("2", "/p/a.cc", {Fn("Levy", "a\nb\nret void"), Fn("Keep", "ret void")});
  GateResult r = Gate(R"({"total_growth_percent": 0, "function_growth": 0, "unchanged": [".*"],
                          "no_growth_at_post": [".*"]})");
  EXPECT_TRUE(r.pass()) << RenderGateMarkdown(r, "");
  EXPECT_EQ(r.total_before, r.total_after);
}

TEST_F(IrGateTest, EachRuleReportsTheFunctionThatBrokeIt) {
  Capture("1", "/p/a.cc",
          {Fn("Grow", "ret void"), Fn("Hot", "ret void"), Fn("Hot", "ret void", Stage::kPost),
           Fn("Same", "ret void")});
  Capture("2", "/p/a.cc",
          {Fn("Grow", "1\n2\n3\n4\nret void"), Fn("Hot", "x\nret void"),
           Fn("Hot", "x\nret void", Stage::kPost), Fn("Same", "ret void")});
  GateResult r = Gate(R"({"total_growth_percent": 10, "function_growth": 3, "unchanged": ["^Hot$"],
                          "no_growth_at_post": ["Hot"]})");
  ASSERT_FALSE(r.pass());
  std::map<std::string, std::string> broken;
  for (const GateViolation& v : r.violations) broken[v.rule] = v.name;
  EXPECT_EQ(broken["total_growth_percent"], "");
  EXPECT_EQ(broken["function_growth"], "Grow");
  EXPECT_EQ(broken["unchanged"], "Hot");
  EXPECT_EQ(broken["no_growth_at_post"], "Hot");
  EXPECT_EQ(r.violations.size(), 4u);
  ASSERT_GE(r.top.size(), 2u);
  EXPECT_EQ(r.top[0].name, "Grow");
  EXPECT_EQ(r.top[0].after - r.top[0].before, 4);

  // Within a looser budget.
  EXPECT_TRUE(Gate(R"({"total_growth_percent": 200, "function_growth": 4})").pass());
}

TEST_F(IrGateTest, AnInlineFunctionChangedInManyTusCountsOnceAgainstTheFunctionBudget) {
  for (const char* tu : {"/p/a.cc", "/p/b.cc", "/p/c.cc"})
    Capture("1", tu, {Fn("Inl", "ret void")});
  for (const char* tu : {"/p/a.cc", "/p/b.cc", "/p/c.cc"})
    Capture("2", tu, {Fn("Inl", "1\n2\nret void")});
  GateResult r = Gate(R"({"function_growth": 1})");
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].tus, 3);
  EXPECT_EQ(r.total_after - r.total_before, 6);  // the total counts every TU's copy
  const std::string md = RenderGateMarkdown(r, "ir.html");
  EXPECT_NE(md.find("## mmsb ir gate: over budget (1 rule broken)"), std::string::npos) << md;
  EXPECT_NE(md.find("[`Inl`](ir.html#fn-Inl)"), std::string::npos) << md;
  EXPECT_NE(md.find("| function_growth | "), std::string::npos) << md;
  const auto j = nlohmann::json::parse(RenderGateJson(r));
  EXPECT_EQ(j["format"], "mmsb.ir-gate/1");
  EXPECT_EQ(j["pass"], false);
  EXPECT_EQ(j["violations"][0]["anchor"], "fn-Inl");
  EXPECT_EQ(j["top"][0]["tus"], 3);
}

TEST(IrGateAnchor, IsAValidFragmentForAnyName) {
  EXPECT_EQ(FunctionAnchor("_ZN3fmt2v88allocateEm"), "fn-_ZN3fmt2v88allocateEm");
  EXPECT_EQ(FunctionAnchor("a b<c>#"), "fn-a-b-c--");
}

}  // namespace
}  // namespace mmsb::ir
