// The generation diff: matching, renames, moves, filters, ordering, the unified diff and JSON.
#include "mmsb/ir/diff.h"

#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mmsb/ir/report.h"

#include "ir_test_util.h"

namespace mmsb::ir {
namespace {

using testing::Fn;
using testing::TempDir;
using testing::Tu;

// Applies a unified diff (as UnifiedDiff prints it) to `a`.
std::vector<std::string> Apply(const std::vector<std::string>& a, const std::string& patch) {
  std::vector<std::string> out;
  size_t next = 0;  // next line of `a` to copy
  std::istringstream in(patch);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("@@ -", 0) == 0) {
      const long start = std::stol(line.substr(4));
      const size_t first = start == 0 ? 0 : static_cast<size_t>(start - 1);
      while (next < first) out.push_back(a[next++]);
      continue;
    }
    const char op = line[0];
    const std::string body = line.substr(1);
    if (op == ' ') {
      EXPECT_EQ(a.at(next), body);
      out.push_back(a[next++]);
    } else if (op == '-') {
      EXPECT_EQ(a.at(next), body);
      ++next;
    } else if (op == '+') {
      out.push_back(body);
    }
  }
  while (next < a.size()) out.push_back(a[next++]);
  return out;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

TEST(IrTextDiff, EqualTextsHaveNoDiff) { EXPECT_EQ(UnifiedDiff("a\nb\n", "a\nb\n"), ""); }

TEST(IrTextDiff, HunkHeadersAndContext) {
  const std::string a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";
  const std::string b = "1\n2\n3\n4\n5\nsix\n7\n8\n9\n10\n";
  // dtl keeps a hunk's trailing context up to the end of the text when only one line is left.
  EXPECT_EQ(UnifiedDiff(a, b), "@@ -3,8 +3,8 @@\n 3\n 4\n 5\n-6\n+six\n 7\n 8\n 9\n 10\n");
  const std::string c = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n";
  const std::string e = "1\n2\n3\nfour\n5\n6\n7\n8\n9\n10\n11\n12\n";
  EXPECT_EQ(UnifiedDiff(c, e), "@@ -1,7 +1,7 @@\n 1\n 2\n 3\n-4\n+four\n 5\n 6\n 7\n");
  EXPECT_EQ(UnifiedDiff("", "x\ny\n"), "@@ -0,0 +1,2 @@\n+x\n+y\n");
  EXPECT_EQ(UnifiedDiff("x\n", ""), "@@ -1,1 +0,0 @@\n-x\n");
}

// Random edits: the printed diff, applied to the old text, gives the new one.
TEST(IrTextDiff, RandomEditsRoundTrip) {
  std::mt19937 rng(42);
  for (int round = 0; round < 300; ++round) {
    std::vector<std::string> a;
    const int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) a.push_back("line " + std::to_string(rng() % 12));
    std::vector<std::string> b = a;
    const int edits = static_cast<int>(rng() % 6);
    for (int e = 0; e < edits; ++e) {
      const int kind = static_cast<int>(rng() % 3);
      if (kind == 0 || b.empty()) {
        b.insert(b.begin() + (b.empty() ? 0 : rng() % (b.size() + 1)), "new " + std::to_string(e));
      } else if (kind == 1) {
        b.erase(b.begin() + rng() % b.size());
      } else {
        b[rng() % b.size()] = "changed " + std::to_string(e);
      }
    }
    const std::string patch = UnifiedDiff(Join(a), Join(b));
    if (a == b) {
      EXPECT_EQ(patch, "");
      continue;
    }
    EXPECT_EQ(Apply(a, patch), b) << "round " << round << "\n" << patch;
  }
}

class IrDiff : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::Open(dir_.Sub("ir.db"), Store::Mode::kReadWrite);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  std::int64_t Add(const TuCapture& c) { return store_->AddCapture(c, {}).value(); }
  GenerationDiff Diff(std::int64_t a, std::int64_t b, DiffOptions o = {}) {
    auto d = DiffGenerations(*store_, a, b, o);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return std::move(d).value();
  }
  static const FunctionChange* Find(const GenerationDiff& d, const std::string& name) {
    for (const FunctionChange& c : d.changes)
      if (c.any().name == name) return &c;
    return nullptr;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(IrDiff, ChangedAddedRemovedAcrossIncrementalBuilds) {
  Add(Tu("/p/a.cc", {Fn("keep", "1"), Fn("edit", "1"), Fn("drop", "1")}));
  Add(Tu("/p/b.cc", {Fn("other", "1")}));
  Add(Tu("/p/a.cc", {Fn("keep", "1"), Fn("edit", "2\n3"), Fn("fresh", "1\n2\n3")}));
  const GenerationDiff d = Diff(1, 2);
  EXPECT_EQ(d.Count(ChangeKind::kChanged), 1);
  EXPECT_EQ(d.Count(ChangeKind::kAdded), 1);
  EXPECT_EQ(d.Count(ChangeKind::kRemoved), 1);
  EXPECT_EQ(d.unchanged, 2);  // keep, and other (inherited by generation 2)
  ASSERT_NE(Find(d, "edit"), nullptr);
  EXPECT_EQ(Find(d, "edit")->InstructionDelta(), 1);
  EXPECT_NE(Find(d, "edit")->unified.find("+2"), std::string::npos);
  EXPECT_EQ(Find(d, "drop")->kind, ChangeKind::kRemoved);
  EXPECT_EQ(Find(d, "fresh")->kind, ChangeKind::kAdded);
  // Same-name functions of different TUs are different functions.
  EXPECT_EQ(Find(d, "other"), nullptr);
}

TEST_F(IrDiff, RenameIsMatchedByStructuralHash) {
  Add(Tu("/p/a.cc", {Fn("old_name", "body", Stage::kPre, 77), Fn("x", "1", Stage::kPre, 5)}));
  Add(Tu("/p/a.cc", {Fn("new_name", "body", Stage::kPre, 77), Fn("x", "1", Stage::kPre, 5)}));
  const GenerationDiff d = Diff(1, 2);
  ASSERT_EQ(d.changes.size(), 1u);
  EXPECT_EQ(d.changes[0].kind, ChangeKind::kRenamed);
  EXPECT_EQ(d.changes[0].before->name, "old_name");
  EXPECT_EQ(d.changes[0].after->name, "new_name");
  EXPECT_FALSE(d.changes[0].text_changed);  // identical once the name is substituted
}

TEST_F(IrDiff, AmbiguousHashPairsOnlyExactRenames) {
  // Two removed and two added with one structural hash: only the exact rename pairs up.
  Add(Tu("/p/a.cc", {Fn("r1", "same", Stage::kPre, 9), Fn("r2", "other", Stage::kPre, 9)}));
  Add(Tu("/p/a.cc", {Fn("a1", "same", Stage::kPre, 9), Fn("a2", "third", Stage::kPre, 9)}));
  const GenerationDiff d = Diff(1, 2);
  EXPECT_EQ(d.Count(ChangeKind::kRenamed), 1);
  EXPECT_EQ(d.Count(ChangeKind::kAdded), 1);
  EXPECT_EQ(d.Count(ChangeKind::kRemoved), 1);
  EXPECT_EQ(Find(d, "a1")->kind, ChangeKind::kRenamed);
}

TEST_F(IrDiff, FunctionMovedBetweenTus) {
  Add(Tu("/p/a.cc", {Fn("f", "1"), Fn("g", "1")}));
  Add(Tu("/p/b.cc", {Fn("h", "1")}));
  Add(Tu("/p/a.cc", {Fn("g", "1")}));
  Add(Tu("/p/b.cc", {Fn("h", "1"), Fn("f", "1")}));
  const GenerationDiff d = Diff(1, 2);
  ASSERT_EQ(d.changes.size(), 1u);
  EXPECT_EQ(d.changes[0].kind, ChangeKind::kMoved);
  EXPECT_EQ(d.changes[0].before->tu_source, "/p/a.cc");
  EXPECT_EQ(d.changes[0].after->tu_source, "/p/b.cc");
}

TEST_F(IrDiff, FiltersApplyAfterMatching) {
  FunctionRecord w1 = Fn("_Z4stepf", "1");
  w1.page_types = {"sim::Particles"};
  FunctionRecord w2 = Fn("_Z4stepf", "2");
  w2.page_types = {"sim::Particles"};
  Add(Tu("/p/a.cc", {w1, Fn("_Z4readv", "1"), Fn("old", "z", Stage::kPre, 3)}));
  Add(Tu("/p/a.cc", {w2, Fn("_Z4readv", "2"), Fn("renamed", "z", Stage::kPre, 3)}));
  DiffOptions touching;
  touching.touching = "Particles";
  GenerationDiff d = Diff(1, 2, touching);
  ASSERT_EQ(d.changes.size(), 1u);
  EXPECT_EQ(d.changes[0].any().name, "_Z4stepf");
  touching.touching = "sim::Particles";
  EXPECT_EQ(Diff(1, 2, touching).changes.size(), 1u);
  touching.touching = "ticles";
  EXPECT_EQ(Diff(1, 2, touching).changes.size(), 0u);

  DiffOptions by_name;
  by_name.function_regex = "^read";  // searched in the demangled name too
  d = Diff(1, 2, by_name);
  ASSERT_EQ(d.changes.size(), 1u);
  EXPECT_EQ(d.changes[0].any().name, "_Z4readv");
  by_name.function_regex = "renamed";
  d = Diff(1, 2, by_name);
  ASSERT_EQ(d.changes.size(), 1u);
  EXPECT_EQ(d.changes[0].kind, ChangeKind::kRenamed);  // not an add: filters come after matching
  by_name.function_regex = "([";
  EXPECT_EQ(DiffGenerations(*store_, 1, 2, by_name).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(IrDiff, StageSelectsPreOrPost) {
  Add(Tu("/p/a.cc", {Fn("f", "1"), Fn("f", "inl", Stage::kPost)}));
  Add(Tu("/p/a.cc", {Fn("f", "1"), Fn("f", "inl2", Stage::kPost)}));
  EXPECT_TRUE(Diff(1, 2).changes.empty());
  DiffOptions post;
  post.stage = Stage::kPost;
  EXPECT_EQ(Diff(1, 2, post).changes.size(), 1u);
}

TEST_F(IrDiff, SortByDeltaOrName) {
  Add(Tu("/p/a.cc", {Fn("b_small", "1"), Fn("a_big", "1"), Fn("c_mid", "1")}));
  Add(Tu("/p/a.cc", {Fn("b_small", "1\n2"), Fn("a_big", "1\n2\n3\n4\n5"), Fn("c_mid", "1\n2\n3")}));
  GenerationDiff d = Diff(1, 2);
  ASSERT_EQ(d.changes.size(), 3u);
  EXPECT_EQ(d.changes[0].any().name, "a_big");
  EXPECT_EQ(d.changes[1].any().name, "c_mid");
  EXPECT_EQ(d.changes[2].any().name, "b_small");
  DiffOptions o;
  o.sort = DiffOptions::Sort::kName;
  d = Diff(1, 2, o);
  EXPECT_EQ(d.changes[0].any().name, "a_big");
  EXPECT_EQ(d.changes[1].any().name, "b_small");
  EXPECT_EQ(d.changes[2].any().name, "c_mid");
}

TEST_F(IrDiff, JsonIsStableAndComplete) {
  Add(Tu("/p/a.cc", {Fn("_Z1fv", "1"), Fn("gone", "1")}));
  Add(Tu("/p/a.cc", {Fn("_Z1fv", "1\n2"), Fn("new", "x")}));
  const GenerationDiff d = Diff(1, 2);
  const std::string json = RenderDiffJson(d, true);
  EXPECT_EQ(json, RenderDiffJson(Diff(1, 2), true));  // deterministic
  const auto j = nlohmann::json::parse(json);
  EXPECT_EQ(j["from"], 1);
  EXPECT_EQ(j["to"], 2);
  EXPECT_EQ(j["stage"], "pre");
  EXPECT_EQ(j["summary"]["changed"], 1);
  EXPECT_EQ(j["summary"]["added"], 1);
  EXPECT_EQ(j["summary"]["removed"], 1);
  ASSERT_EQ(j["functions"].size(), 3u);
  for (const auto& f : j["functions"]) {
    for (const char* key : {"kind", "tu", "output", "name", "demangled", "old_tu", "old_name",
                            "text_changed", "instructions", "blocks", "structural_hash", "linkage",
                            "file", "line", "page_types", "diff"})
      EXPECT_TRUE(f.contains(key)) << key;
  }
  // Equal instruction deltas: larger block delta first (added/removed), then by name.
  EXPECT_EQ(j["functions"][0]["name"], "gone");
  EXPECT_EQ(j["functions"][1]["name"], "new");
  const auto& f = j["functions"][2];
  EXPECT_EQ(f["demangled"], "f()");
  EXPECT_EQ(f["instructions"]["delta"], 1);
  // Key order is fixed (the document is an ordered object).
  EXPECT_LT(json.find("\"from\""), json.find("\"summary\""));
  EXPECT_TRUE(nlohmann::json::parse(RenderDiffJson(d, false))["functions"][0]["diff"].is_null());
}

TEST_F(IrDiff, TextReportColoursOnlyWhenAsked) {
  Add(Tu("/p/a.cc", {Fn("f", "1")}));
  Add(Tu("/p/a.cc", {Fn("f", "2")}));
  const GenerationDiff d = Diff(1, 2);
  RenderOptions plain;
  const std::string text = RenderDiff(d, false, plain);
  EXPECT_EQ(text.find('\033'), std::string::npos);
  EXPECT_NE(text.find("-1"), std::string::npos);
  EXPECT_NE(text.find("+2"), std::string::npos);
  RenderOptions color;
  color.color = true;
  EXPECT_NE(RenderDiff(d, false, color).find("\033[31m-1"), std::string::npos);
  EXPECT_EQ(RenderDiff(d, true, plain).find("@@"), std::string::npos);  // --stat
}

TEST(IrReport, HistoryRowsKeepOnlyChanges) {
  std::vector<CaptureVersion> caps(5);
  for (int i = 0; i < 5; ++i) caps[i].generation = i + 1;
  FunctionVersion v;
  v.instructions = 3;
  v.text_hash = HashText("a");
  caps[0].version = v;
  caps[1].version = v;  // unchanged: no row
  v.text_hash = HashText("b");
  v.instructions = 5;
  caps[2].version = v;
  // caps[3]: the function is gone
  caps[4].version = v;  // back again
  const auto rows = HistoryRows(caps);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].change, "added");
  EXPECT_EQ(rows[1].change, "changed");
  EXPECT_EQ(rows[1].instruction_delta, 2);
  EXPECT_EQ(rows[2].change, "removed");
  EXPECT_EQ(rows[3].change, "added");
}

TEST(IrReport, ShortCompilerName) {
  EXPECT_EQ(ShortCompiler("Debian clang version 19.1.7 (3~deb12u1)"), "clang 19.1.7");
  EXPECT_EQ(ShortCompiler("gcc"), "gcc");
}

TEST(IrReport, PageTypeMatching) {
  EXPECT_TRUE(PageTypeMatches("Particles", "Particles"));
  EXPECT_TRUE(PageTypeMatches("sim::Particles", "Particles"));
  EXPECT_FALSE(PageTypeMatches("sim::MyParticles", "Particles"));
  EXPECT_FALSE(PageTypeMatches("Particles", ""));
}

}  // namespace
}  // namespace mmsb::ir

namespace mmsb::ir {
namespace {

// Names as users type them, against real mangled names.
TEST(IrNameMatch, UnqualifiedAndPartlyQualifiedNamesMatchAtBoundaries) {
  const char* kAllocate = "_ZN3fmt3v126detail8allocateEm";  // fmt::v12::detail::allocate(ulong)
  EXPECT_EQ(NameMatchRank(kAllocate, kAllocate), 4);
  EXPECT_EQ(NameMatchRank("fmt::v12::detail::allocate(unsigned long)", kAllocate), 3);
  EXPECT_EQ(NameMatchRank("fmt::v12::detail::allocate", kAllocate), 2);
  EXPECT_EQ(NameMatchRank("allocate", kAllocate), 1);
  EXPECT_EQ(NameMatchRank("detail::allocate", kAllocate), 1);
  EXPECT_EQ(NameMatchRank("detail::allocate(unsigned long)", kAllocate), 1);
  EXPECT_EQ(NameMatchRank("locate", kAllocate), 0);
  EXPECT_EQ(NameMatchRank("tail::allocate", kAllocate), 0);
  EXPECT_EQ(NameMatchRank("other::allocate", kAllocate), 0);
  EXPECT_EQ(NameMatchRank("allocate(int)", kAllocate), 0);
  EXPECT_EQ(NameMatchRank("", kAllocate), 0);
}

TEST(IrNameMatch, TemplateArgumentsAreOptionalAndReturnTypesIgnored) {
  const char* kTemplate = "_ZN3fmt3v126detail8allocateIcEEPT_m";  // char* ...allocate<char>(ulong)
  EXPECT_EQ(NameMatchRank("allocate", kTemplate), 1);
  EXPECT_EQ(NameMatchRank("detail::allocate<char>", kTemplate), 1);
  EXPECT_EQ(NameMatchRank("detail::allocate<int>", kTemplate), 0);
  EXPECT_EQ(NameMatchRank("char* fmt::v12::detail::allocate<char>", kTemplate), 2);
  // Operators keep their brackets: operator< is not a template argument list.
  const char* kLess = "_ZN2nsltERKNS_1AES2_";  // ns::operator<(ns::A const&, ns::A const&)
  EXPECT_EQ(NameMatchRank("operator<", kLess), 1);
  EXPECT_EQ(NameMatchRank("ns::operator<", kLess), 2);
  // A C name is its own demangled name.
  EXPECT_EQ(NameMatchRank("main", "main"), 4);
  EXPECT_EQ(NameMatchRank("mai", "main"), 0);
}

TEST(IrNameMatch, AmbiguousPartialNamesListTheirCandidates) {
  std::vector<Store::FunctionId> ids = {
      {1, "/p/a.cc", "_ZN3lib6detail8allocateEm"},
      {2, "/p/b.cc", "_ZN3lib6detail8allocateEm"},
      {3, "/p/a.cc", "_ZN5other8allocateEi"},
  };
  EXPECT_EQ(AmbiguousCandidates("allocate", ids),
            (std::vector<std::string>{"lib::detail::allocate(unsigned long) (2 TUs)",
                                      "other::allocate(int) (1 TU)"}));
  // One function in several TUs is not ambiguous, nor is a name that matched exactly.
  ids.pop_back();
  EXPECT_TRUE(AmbiguousCandidates("allocate", ids).empty());
  EXPECT_TRUE(AmbiguousCandidates("lib::detail::allocate", {{1, "/a", "_ZN3lib6detail8allocateEm"},
                                                            {2, "/a", "_ZN3lib6detail8allocateEi"}})
                  .empty());
}

TEST(IrDiffGrouping, IdenticalChangesInSeveralTusAreOneGroup) {
  TempDir dir;
  auto store = Store::Open(dir.Sub("ir.db"), Store::Mode::kReadWrite);
  ASSERT_TRUE(store.ok());
  GenerationRequest g1{"1"}, g2{"2"};
  for (const char* tu : {"/p/a.cc", "/p/b.cc", "/p/c.cc"}) {
    ASSERT_TRUE(
        (*store)->AddCapture(Tu(tu, {Fn("inl", "ret void"), Fn("own", "ret void")}), g1).ok());
  }
  // inl changes the same way in a and b, differently in c; own does not change.
  ASSERT_TRUE((*store)
                  ->AddCapture(Tu("/p/a.cc", {Fn("inl", "x\nret void"), Fn("own", "ret void")}), g2)
                  .ok());
  ASSERT_TRUE((*store)
                  ->AddCapture(Tu("/p/b.cc", {Fn("inl", "x\nret void"), Fn("own", "ret void")}), g2)
                  .ok());
  ASSERT_TRUE(
      (*store)
          ->AddCapture(Tu("/p/c.cc", {Fn("inl", "y\ny\nret void"), Fn("own", "ret void")}), g2)
          .ok());
  DiffOptions o;
  auto d = DiffGenerations(**store, 1, 2, o);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_EQ(d->changes.size(), 3u);
  ASSERT_EQ(d->groups.size(), 2u);
  EXPECT_EQ(d->GroupCount(ChangeKind::kChanged), 2);
  EXPECT_EQ(d->Count(ChangeKind::kChanged), 3);
  // Sorted by delta: c's change (+2) first, then a and b together.
  EXPECT_EQ(d->groups[0].members.size(), 1u);
  EXPECT_EQ(d->changes[d->groups[0].members[0]].any().tu_source, "/p/c.cc");
  ASSERT_EQ(d->groups[1].members.size(), 2u);
  EXPECT_EQ(d->changes[d->groups[1].members[0]].any().tu_source, "/p/a.cc");
  EXPECT_EQ(d->changes[d->groups[1].members[1]].any().tu_source, "/p/b.cc");
  EXPECT_EQ(d->InstructionDelta(), 4);  // every TU counts
  const std::string text = RenderDiff(*d, /*stat_only=*/true, {});
  EXPECT_NE(text.find("2 TUs"), std::string::npos) << text;

  o.by_tu = true;
  auto each = DiffGenerations(**store, 1, 2, o);
  ASSERT_TRUE(each.ok());
  EXPECT_EQ(each->groups.size(), 3u);
  const nlohmann::json j = nlohmann::json::parse(RenderDiffJson(*each, false));
  EXPECT_EQ(j["functions"].size(), 3u);
  EXPECT_EQ(j["summary"]["changed"], 3);
  const nlohmann::json grouped = nlohmann::json::parse(RenderDiffJson(*d, false));
  ASSERT_EQ(grouped["functions"].size(), 2u);
  EXPECT_EQ(grouped["functions"][1]["tu_count"], 2);
  EXPECT_EQ(grouped["functions"][1]["tus"], nlohmann::json({"/p/a.cc", "/p/b.cc"}));
}

}  // namespace
}  // namespace mmsb::ir
