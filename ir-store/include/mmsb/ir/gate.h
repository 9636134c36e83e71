// `mmsb ir gate`: checks the IR change between two generations against a budget, for CI.
//
// The budget is a JSON file (docs/IRStore.md, "Gate"):
//   {
//     "stage": "pre",                    // stage of the growth and unchanged rules (default pre)
//     "total_growth_percent": 2.0,       // total instructions may grow by at most 2%
//     "function_growth": 40,             // no function may grow by more than 40 instructions
//     "unchanged": ["^Checksum", "::hot::"],   // functions that must not change (regexes)
//     "no_growth_at_post": ["Step"],     // functions that must not grow after optimisation
//     "top": 10                          // rows in the summary's growth table
//   }
// Every key is optional; an unknown key or a value of the wrong type is an error (so a typo
// never silently disables a rule).
//
// Rules judge functions, not copies: identical changes of one inline function in many TUs
// count once (GroupChanges), except the total, which sums every TU's IR as the compiler saw it.
// Matching is rename tolerant: a function renamed without other change (DiffGenerations pairs it
// by structural hash) neither grows nor changes, and value renumbering never shows up because
// the normalised text has positional local names.
//
// Thread-safety: EvaluateGate uses the Store it is given (one thread at a time); the rest are
// pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mmsb/ir/diff.h"
#include "mmsb/ir/store.h"
#include "mmsb/status.h"

namespace mmsb::ir {

struct GateBudget {
  Stage stage = Stage::kPre;
  std::optional<double> total_growth_percent;
  std::optional<std::int64_t> function_growth;
  std::vector<std::string> unchanged;          // ECMAScript regexes, searched in both names
  std::vector<std::string> no_growth_at_post;  // same
  int top = 10;
};

// Parses a budget document; InvalidArgument naming the key on any problem.
Expected<GateBudget> ParseGateBudget(std::string_view json);

struct GateViolation {
  std::string rule;  // "total_growth_percent", "function_growth", "unchanged", "no_growth_at_post"
  std::string name;  // mangled ("" for the total)
  std::string detail;
  int tus = 0;
};

struct GateRow {     // one function (group) in the growth table
  std::string name;  // mangled, after the change (before for removed)
  std::string kind;  // ChangeKindName, "+changed" for renamed/moved with a new body
  std::int64_t before = 0;
  std::int64_t after = 0;
  int tus = 0;
};

struct GateResult {
  std::int64_t from = 0;
  std::int64_t to = 0;
  Stage stage = Stage::kPre;
  GateBudget budget;
  std::int64_t total_before = 0;  // instructions, every (TU, function) at `stage`
  std::int64_t total_after = 0;
  std::vector<GateViolation> violations;
  std::vector<GateRow> top;  // the largest growths first, at most budget.top
  bool pass() const { return violations.empty(); }
};

Expected<GateResult> EvaluateGate(Store& store, std::int64_t from, std::int64_t to,
                                  const GateBudget& budget);

// The fragment ir.html uses for a function ("fn-" and the mangled name, characters outside
// [A-Za-z0-9_.-] as '-'), so summaries can link into the report.
std::string FunctionAnchor(std::string_view mangled);

// A Markdown summary for a pull-request comment; `report_url` (may be empty) prefixes anchors.
std::string RenderGateMarkdown(const GateResult& result, const std::string& report_url);
std::string RenderGateJson(const GateResult& result);  // "mmsb.ir-gate/1"

}  // namespace mmsb::ir
