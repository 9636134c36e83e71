// Offline HTML reports: one self-contained file each (inline JS, CSS and SVG, the data as
// embedded JSON; no CDN, no server, no network). docs/Reports.md describes what they show and
// the bounds that keep them small.
//
// - BuildLogReport: `mmsb report LOG`. An epoch scrubber, a field x epoch heatmap and the page
//   graph of a transaction log. Epochs are bucketed into at most `max_columns` columns of 2^k
//   epochs (aligned), so the size is bounded whatever the log's length: the diff embedded for a
//   column is the state diff across it (the same values `mmsb diff --from FIRST-1 --to LAST`
//   prints, by the runtime's DiffStates), capped per page and per column.
// - BuildIrReport: `mmsb ir report`. A treemap of the functions of generation B sized by
//   instruction count and coloured by their change since A, per-function diffs (pre and post),
//   instruction-count sparklines over every generation, and the functions that write pages.
//
// Thread-safety: pure functions of their inputs (the IR one uses the Store it is given, from one
// thread at a time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mmsb/ir/store.h"
#include "mmsb/replay.h"
#include "mmsb/status.h"

namespace mmsb::report {

struct LogReportOptions {
  std::size_t max_columns = 1000;     // epoch buckets (scrubber bars and heatmap columns)
  std::size_t max_rows = 200;         // field rows (arrays collapsed); the rest in one row
  std::size_t max_children = 64;      // element rows under one collapsed array row
  std::size_t fields_per_page = 16;   // field changes embedded per page per column
  std::size_t pages_per_column = 24;  // pages embedded per column diff
  std::size_t max_graph_pages = 400;  // pages drawn in the graph (the most changed)
  RecoveryMode mode = RecoveryMode::kStrict;
  std::string title;  // default: the log path
  // `--store`: the IR store of the build that ran. Each commit site's function is looked up in
  // it: its instructions in the run's generation, whether its IR changed since the generation
  // before, the generations where it changed, and a link into `ir_link` (an `mmsb ir report`).
  std::string ir_store;
  // The run's generation ("42", "latest", a label); empty: the newest generation opened before
  // the log's last run started (the run-start record's time), else the latest.
  std::string ir_generation;
  std::string ir_link = "ir.html";
};

struct LogReportStats {
  std::uint64_t epochs = 0;  // committed epochs in the log
  std::uint64_t first_epoch = 0;
  std::uint64_t last_epoch = 0;
  std::uint64_t epochs_per_column = 1;
  std::size_t columns = 0;
  std::size_t rows = 0;  // heatmap rows, children included
  std::size_t pages = 0;
  std::size_t html_bytes = 0;
  std::int64_t ir_generation = 0;    // with ir_store: the generation the sites were looked up in
  std::string ir_generation_how;     // why that one ("--gen", "opened before the run", "latest")
  std::size_t ir_sites_found = 0;    // commit sites whose function the store knows
  std::vector<LogProblem> problems;  // salvage mode: the damage that was skipped
};

Expected<std::string> BuildLogReport(const std::string& log_path, const LogReportOptions& options,
                                     LogReportStats* stats = nullptr);

struct IrReportOptions {
  std::size_t max_functions = 4000;        // treemap cells (the largest; the rest summed)
  std::size_t max_diffs = 400;             // changed functions whose IR diff is embedded
  std::size_t max_diff_bytes = 24 * 1024;  // per diff, cut beyond
  std::string title;
};

struct IrReportStats {
  std::size_t functions = 0;
  std::size_t changed = 0;
  std::size_t diffs = 0;
  std::size_t generations = 0;
  std::size_t html_bytes = 0;
};

// `from` may equal `to` (nothing is coloured as changed then).
Expected<std::string> BuildIrReport(ir::Store& store, std::int64_t from, std::int64_t to,
                                    const IrReportOptions& options, IrReportStats* stats = nullptr);

}  // namespace mmsb::report
