// The diff of two generations of an IR store (docs/IRStore.md, "Diff semantics").
//
// Functions are matched by (TU, mangled name). Unmatched ones are then paired:
//   - moved:   the same name removed from one TU and added to another (once each);
//   - renamed: in one TU, a removed and an added function with the same structural hash whose
//              texts are equal once the name is substituted, or the only such pair for that hash.
// Everything else is added, removed or changed (normalised text differs). Filters apply after
// matching, so a filter never turns a rename into an add.
//
// Grouping: an inline function in a header is compiled into every TU that includes it, so one
// edit changes it identically in many TUs. Changes with the same kind, the same names and the
// same text before and after (by hash) form one group, shown as one row with its TU count.
// Grouping never merges changes whose before or after text differ.
//
// Thread-safety: DiffGenerations uses the Store it is given (one thread at a time); the rest are
// pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mmsb/ir/record.h"
#include "mmsb/ir/store.h"
#include "mmsb/status.h"

namespace mmsb::ir {

enum class ChangeKind { kChanged, kAdded, kRemoved, kRenamed, kMoved };

// "changed", "added", "removed", "renamed", "moved".
const char* ChangeKindName(ChangeKind kind);

struct DiffOptions {
  Stage stage = Stage::kPre;
  std::string function_regex;  // ECMAScript; searched in mangled and demangled names
  std::string touching;        // a page type: "Particles" matches "Particles" and "ns::Particles"
  bool with_text = true;       // compute per-function unified diffs (false for --stat)
  enum class Sort { kDelta, kName } sort = Sort::kDelta;
  bool by_tu = false;  // one group per (TU, function) instead of per identical change
};

struct FunctionChange {
  ChangeKind kind = ChangeKind::kChanged;
  std::optional<FunctionVersion> before;  // absent for added
  std::optional<FunctionVersion> after;   // absent for removed
  bool text_changed = false;              // renamed/moved: whether the body changed beyond the name
  std::string unified;                    // unified diff of the normalised text (with_text only)

  const FunctionVersion& any() const { return after ? *after : *before; }
  std::int64_t InstructionDelta() const;
  std::int64_t BlockDelta() const;
  std::vector<std::string> PageTypes() const;  // union of both sides, sorted
};

// Identical changes of one function in several TUs: indices into GenerationDiff::changes, in
// the changes' order; the first is the representative.
struct ChangeGroup {
  std::vector<size_t> members;
};

struct GenerationDiff {
  std::int64_t from = 0;
  std::int64_t to = 0;
  Stage stage = Stage::kPre;
  std::vector<FunctionChange> changes;  // after filters, sorted; one per (TU, function)
  std::vector<ChangeGroup> groups;      // every change in exactly one group, in changes' order
  int unchanged = 0;                    // matched functions with identical text (filtered)

  int Count(ChangeKind kind) const;       // per (TU, function)
  int GroupCount(ChangeKind kind) const;  // per group
  // Summed over every (TU, function): the change in the IR the compiler saw.
  std::int64_t InstructionDelta() const;
  std::int64_t BlockDelta() const;
};

// Groups `changes` (see "Grouping" above); with `by_tu`, one group per change.
std::vector<ChangeGroup> GroupChanges(const std::vector<FunctionChange>& changes, bool by_tu);

Expected<GenerationDiff> DiffGenerations(Store& store, std::int64_t from, std::int64_t to,
                                         const DiffOptions& options);

// A unified diff (hunks only, no file header) of two texts, by line, computed with dtl (three
// lines of context, dtl's fixed hunk context). Empty when the texts are equal.
std::string UnifiedDiff(std::string_view a, std::string_view b);

// How well `query`, typed by a user, names the function with the mangled name `mangled`:
//   4: the mangled name;  3: the demangled name;  2: the demangled name without parameters;
//   1: a trailing part of the qualified name, at a "::" boundary, with the return type ignored
//      and template arguments optional: "allocate", "detail::allocate" and
//      "detail::allocate(unsigned long)" all name "fmt::v12::detail::allocate(unsigned long)";
//   0: no match.
int NameMatchRank(std::string_view query, std::string_view mangled);

// When `ids` (what Store::FindFunctions returned for `query`) matched only as partial names
// (rank 1) and name more than one distinct function, the distinct demangled names, sorted, each
// with the number of TUs that define it ("ns::f(int) (3 TUs)"). Empty otherwise.
std::vector<std::string> AmbiguousCandidates(std::string_view query,
                                             const std::vector<Store::FunctionId>& ids);

// True when page type `type` (as the rewriter names it) is what `query` asks for.
bool PageTypeMatches(std::string_view type, std::string_view query);

}  // namespace mmsb::ir
