// `mmsb ir gate [A B] --budget FILE [--json] [--report-url URL]`: the IR change between two
// generations against a budget (exit 0 within it, 1 over it, with a Markdown summary).
// `mmsb ir report [A [B]] -o ir.html`: the offline HTML report of a build's IR change.
// Thin: mmsb/ir/gate.h and mmsb/report/report.h do the work.
#include "cmd_ir_report.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "mmsb/ir/gate.h"
#include "mmsb/ir/store.h"
#include "mmsb/report/report.h"

#include "command.h"

namespace mmsb::cli {
namespace {

struct Args {
  std::string store;
  std::string from;
  std::string to;
  std::string budget;
  std::string report_url = "ir.html";
  std::string out = "ir.html";
  bool json = false;
  bool quiet = false;
};

Args& A() {
  static Args a;
  return a;
}

Expected<std::unique_ptr<ir::Store>> OpenStore() {
  std::string path = A().store;
  std::error_code ec;
  const std::string cwd = std::filesystem::current_path(ec).string();
  if (path.empty()) path = ir::ResolveStorePath(cwd, cwd);
  // --store DIR means DIR/ir.db, as for the other ir commands and MMSB_IR_STORE=DIR.
  if (std::filesystem::is_directory(path, ec))
    path = (std::filesystem::path(path) / "ir.db").string();
  auto store = ir::Store::Open(path, ir::Store::Mode::kExisting);
  if (!store.ok() && store.status().code() == StatusCode::kNotFound) {
    return NotFound(store.status().message() + " (pass --store or set " + ir::kStoreEnv + ")");
  }
  return store;
}

// A, B defaults: latest~1 and latest.
Expected<std::pair<std::int64_t, std::int64_t>> Range(ir::Store& store, const char* default_from) {
  auto from = store.ResolveGeneration(A().from.empty() ? default_from : A().from);
  if (!from.ok()) return from.status();
  auto to = store.ResolveGeneration(A().to.empty() ? "latest" : A().to);
  if (!to.ok()) return to.status();
  return std::make_pair(*from, *to);
}

int Gate() {
  // Exit 1 means "over budget": a gate that cannot run exits 2, so that CI never takes a wrong
  // budget file or store for a verdict.
  auto fail = [](const std::string& message) {
    Fail(message);
    return 2;
  };
  std::error_code ec;
  if (std::filesystem::is_directory(A().budget, ec))
    return fail("budget file '" + A().budget + "' is a directory");
  std::ifstream in(A().budget);
  if (!in) return fail("cannot read budget file '" + A().budget + "'");
  std::stringstream text;
  text << in.rdbuf();
  auto budget = ir::ParseGateBudget(text.str());
  if (!budget.ok()) return fail(A().budget + ": " + budget.status().message());
  auto store = OpenStore();
  if (!store.ok()) return fail(store.status().ToString());
  auto range = Range(**store, "latest~1");
  if (!range.ok()) return fail(range.status().ToString());
  auto result = ir::EvaluateGate(**store, range->first, range->second, *budget);
  if (!result.ok()) return fail(result.status().ToString());
  const std::string out =
      A().json ? ir::RenderGateJson(*result) : ir::RenderGateMarkdown(*result, A().report_url);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return result->pass() ? 0 : 1;
}

int Report() {
  auto store = OpenStore();
  if (!store.ok()) return Fail(store.status().ToString());
  auto gens = (*store)->Generations(false);
  if (!gens.ok()) return Fail(gens.status().ToString());
  if (gens->empty()) return Fail("the IR store has no generation yet: compile with the plugin");
  auto range = Range(**store, gens->size() > 1 ? "latest~1" : "latest");
  if (!range.ok()) return Fail(range.status().ToString());
  report::IrReportStats stats;
  auto html = report::BuildIrReport(**store, range->first, range->second, {}, &stats);
  if (!html.ok()) return Fail(html.status().ToString());
  std::ofstream out(A().out, std::ios::binary | std::ios::trunc);
  out.write(html->data(), static_cast<std::streamsize>(html->size()));
  out.close();
  if (!out) return Fail("cannot write '" + A().out + "'");
  if (!A().quiet) {
    std::printf("wrote %s: generations %lld -> %lld, %zu functions, %zu changed, %zu bytes\n",
                A().out.c_str(), static_cast<long long>(range->first),
                static_cast<long long>(range->second), stats.functions, stats.changed,
                stats.html_bytes);
  }
  return 0;
}

}  // namespace

void AddIrReportCommands(CLI::App* ir) {
  Args& a = A();
  CLI::App* gate = ir->add_subcommand(
      "gate", "check the IR change between two generations against a budget (for CI)");
  gate->add_option("A", a.from, "older generation (default: latest~1)");
  gate->add_option("B", a.to, "newer generation (default: latest)");
  gate->add_option("--budget", a.budget, "budget file (JSON, see docs/IRStore.md)")->required();
  gate->add_option("--report-url", a.report_url,
                   "where `mmsb ir report` output will be, for links in the summary")
      ->capture_default_str();
  gate->add_flag("--json", a.json, "print JSON instead of Markdown");
  gate->add_option("--store", a.store, "the IR store (default: as for the other ir commands)");
  SetAction(gate, Gate);

  CLI::App* report = ir->add_subcommand(
      "report", "write an offline HTML report of the IR change between two generations");
  report->add_option("A", a.from, "older generation (default: latest~1)");
  report->add_option("B", a.to, "newer generation (default: latest)");
  report->add_option("-o,--output", a.out, "the HTML file to write")->capture_default_str();
  report->add_option("--store", a.store, "the IR store (default: as for the other ir commands)");
  report->add_flag("-q,--quiet", a.quiet, "print nothing");
  SetAction(report, Report);
}

}  // namespace mmsb::cli
