// What `mmsb ir` prints: text for people (colour only when asked, i.e. on a TTY) and JSON for
// programs. The JSON is stable: fixed key order, every key always present (null when unknown),
// arrays in a defined order, paths absolute. Its shape is documented in docs/IRStore.md.
//
// Thread-safety: pure functions, except that the Store-taking ones use the store (one thread at
// a time).
#pragma once

#include <string>
#include <vector>

#include "mmsb/ir/diff.h"
#include "mmsb/ir/store.h"
#include "mmsb/status.h"

namespace mmsb::ir {

struct RenderOptions {
  bool color = false;
  // Paths under this directory print relative to it in text output ("" prints them as stored).
  std::string base_dir;
};

std::string RenderBuilds(const std::vector<GenerationInfo>& gens, const RenderOptions& options);
std::string RenderBuildsJson(const std::vector<GenerationInfo>& gens);

// `versions` as Store::Functions returns them (both stages): one line per (TU, function).
std::string RenderFunctions(const std::vector<FunctionVersion>& versions,
                            const RenderOptions& options);
std::string RenderFunctionsJson(std::int64_t generation,
                                const std::vector<FunctionVersion>& versions);

// The summary table, then (unless `stat_only`) the unified diff of every change.
std::string RenderDiff(const GenerationDiff& diff, bool stat_only, const RenderOptions& options);
std::string RenderDiffJson(const GenerationDiff& diff, bool with_text);

// One function version: a header of facts, then its normalised IR.
std::string RenderShow(const FunctionVersion& v, const std::string& text,
                       const RenderOptions& options);

// The generations in which a function changed (first appearance, changes, removal).
struct HistoryRow {
  std::int64_t generation = 0;
  std::int64_t captured_at_ms = 0;
  std::string change;                      // "added", "changed", "removed"
  std::optional<FunctionVersion> version;  // absent for "removed"
  std::int64_t instruction_delta = 0;
  std::int64_t block_delta = 0;
};
// Reduces a TU's captures to the rows where the function changed.
std::vector<HistoryRow> HistoryRows(const std::vector<CaptureVersion>& captures);
std::string RenderHistory(const Store::FunctionId& id, Stage stage,
                          const std::vector<HistoryRow>& rows, const RenderOptions& options);
// One JSON document for every function the name matched ("mmsb.ir-history/1").
struct FunctionHistory {
  Store::FunctionId id;
  std::vector<HistoryRow> rows;
};
std::string RenderHistoryJson(Stage stage, const std::vector<FunctionHistory>& histories);

// "clang version 19.1.7" out of a full clang version line.
std::string ShortCompiler(const std::string& full);

}  // namespace mmsb::ir
