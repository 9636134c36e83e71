// The diff of two generations of an IR store (docs/IRStore.md, "Diff semantics").
//
// Functions are matched by (TU, mangled name). Unmatched ones are then paired:
//   - moved:   the same name removed from one TU and added to another (once each);
//   - renamed: in one TU, a removed and an added function with the same structural hash whose
//              texts are equal once the name is substituted, or the only such pair for that hash.
// Everything else is added, removed or changed (normalised text differs). Filters apply after
// matching, so a filter never turns a rename into an add.
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

struct GenerationDiff {
  std::int64_t from = 0;
  std::int64_t to = 0;
  Stage stage = Stage::kPre;
  std::vector<FunctionChange> changes;  // after filters, sorted
  int unchanged = 0;                    // matched functions with identical text (filtered)

  int Count(ChangeKind kind) const;
  std::int64_t InstructionDelta() const;
  std::int64_t BlockDelta() const;
};

Expected<GenerationDiff> DiffGenerations(Store& store, std::int64_t from, std::int64_t to,
                                         const DiffOptions& options);

// A unified diff (hunks only, no file header) of two texts, by line, computed with dtl (three
// lines of context, dtl's fixed hunk context). Empty when the texts are equal.
std::string UnifiedDiff(std::string_view a, std::string_view b);

// True when page type `type` (as the rewriter names it) is what `query` asks for.
bool PageTypeMatches(std::string_view type, std::string_view query);

}  // namespace mmsb::ir
