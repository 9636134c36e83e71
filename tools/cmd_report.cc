// `mmsb report LOG -o report.html`: an offline HTML report of a transaction log (epoch
// scrubber, field x epoch heatmap, page graph). Thin: mmsb/report/report.h does the work.
#include <cstdio>
#include <fstream>

#include "mmsb/report/report.h"

#include "command.h"
#include "log_cli.h"

namespace mmsb::cli {
namespace {

struct ReportArgs {
  std::string log;
  std::string out = "report.html";
  std::size_t columns = 1000;
  bool salvage = false;
  bool quiet = false;
  std::string store;
  std::string gen;
  std::string ir_link = "ir.html";
};

int Run(const ReportArgs& a) {
  if (a.columns < 1 || a.columns > 100000) return Fail("--columns must be from 1 to 100000");
  report::LogReportOptions o;
  o.max_columns = a.columns;
  o.mode = a.salvage ? RecoveryMode::kSalvage : RecoveryMode::kStrict;
  o.ir_store = a.store;
  o.ir_generation = a.gen;
  o.ir_link = a.ir_link;
  if (!a.gen.empty() && a.store.empty()) return Fail("--gen needs --store IR_DB");
  report::LogReportStats stats;
  auto html = report::BuildLogReport(a.log, o, &stats);
  if (!html.ok()) return FailLog(html.status(), a.salvage);
  std::ofstream out(a.out, std::ios::binary | std::ios::trunc);
  out.write(html->data(), static_cast<std::streamsize>(html->size()));
  out.close();
  if (!out) return Fail("cannot write '" + a.out + "'");
  if (!a.quiet) {
    std::printf("wrote %s: %llu epochs (%llu..%llu) in %zu columns of %llu, %zu pages, %s\n",
                a.out.c_str(), static_cast<unsigned long long>(stats.epochs),
                static_cast<unsigned long long>(stats.first_epoch),
                static_cast<unsigned long long>(stats.last_epoch), stats.columns,
                static_cast<unsigned long long>(stats.epochs_per_column), stats.pages,
                FormatBytes(stats.html_bytes).c_str());
    if (!a.store.empty()) {
      std::printf("IR store %s: generation %lld (%s); %zu commit site(s) found in it\n",
                  a.store.c_str(), static_cast<long long>(stats.ir_generation),
                  stats.ir_generation_how.c_str(), stats.ir_sites_found);
    }
  }
  // --salvage wrote what it could read; the damage it skipped still fails the command.
  return FailProblems(a.log, stats.problems);
}

void AddReport(CLI::App& app) {
  static ReportArgs a;
  CLI::App* sub = app.add_subcommand(
      "report", "write an offline HTML report of a log: epochs, fields over time, page graph");
  sub->add_option("log", a.log, "log directory or segment file")->required();
  sub->add_option("-o,--output", a.out, "the HTML file to write")->capture_default_str();
  sub->add_option("--columns", a.columns, "epoch columns at most (epochs are bucketed)")
      ->capture_default_str();
  sub->add_flag("--salvage", a.salvage, "skip damaged epochs instead of stopping");
  sub->add_option("--store", a.store,
                  "IR store of the build that ran: each commit site's function, its IR history "
                  "and a link into the IR report");
  sub->add_option("--gen", a.gen,
                  "with --store: the generation the run was built from (default: the newest "
                  "one opened before the run started)");
  sub->add_option("--ir-link", a.ir_link, "with --store: the `mmsb ir report` page to link to")
      ->capture_default_str();
  sub->add_flag("-q,--quiet", a.quiet, "print nothing");
  SetAction(sub, [] { return Run(a); });
}

const CommandRegistrar kRegistrar(AddReport);

}  // namespace
}  // namespace mmsb::cli
