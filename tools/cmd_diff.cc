// `mmsb diff <log> --from A --to B [--page ID|--type NAME] [--json]`: what changed between two
// epochs, per page as byte ranges and, where the log has the page's type, by field name.
#include <charconv>
#include <cstdio>

#include <fmt/format.h>

#include "mmsb/replay.h"

#include "command.h"
#include "log_cli.h"

namespace mmsb::cli {
namespace {

struct DiffArgs {
  std::string path;
  std::string from;
  std::string to;
  std::string page;
  std::string type;
  bool json = false;
  bool salvage = false;
  bool quiet = false;
  std::int64_t max_fields = 1000;
};

int Run(const DiffArgs& a) {
  Epoch from = 0, to = 0;
  if (int rc = EpochFlag("--from", a.from, false, &from)) return rc;
  if (int rc = EpochFlag("--to", a.to, false, &to)) return rc;
  auto usage = [](const std::string& m) {
    Fail(m);
    return 2;
  };
  if (!a.page.empty() && !a.type.empty()) return usage("--page and --type are alternatives");
  if (a.max_fields < 0) {
    return usage(
        fmt::format("--max-fields: {} is negative (field changes listed per page)", a.max_fields));
  }
  DiffOptions o;
  if (!a.page.empty()) {
    PageId id = 0;
    auto r = std::from_chars(a.page.data(), a.page.data() + a.page.size(), id);
    if (r.ec != std::errc() || r.ptr != a.page.data() + a.page.size() || id == kInvalidPageId)
      return usage("--page: '" + a.page + "' is not a page id (a decimal number)");
    o.page = id;
  }
  o.type_name = a.type;
  o.max_fields = static_cast<std::size_t>(a.max_fields);
  if (int rc = CheckLogInput(a.path)) return rc;
  ReplayOptions ro;
  ro.mode = a.salvage ? RecoveryMode::kSalvage : RecoveryMode::kStrict;
  Progress progress(a.path, a.quiet || a.json);
  ro.progress = progress.Callback();
  ReplayReport rep;
  auto d = DiffEpochs(a.path, from, to, o, ro, &rep);
  if (!d.ok()) return FailLog(d.status(), ro.mode == RecoveryMode::kSalvage);
  // With --salvage the answer skipped damaged epochs: it is printed, and the exit says so.
  if (a.json) {
    std::printf("%s\n", StateDiffToJson(*d).c_str());
    return rep.has_errors() ? FailProblems(a.path, rep.problems) : 0;
  }
  const Palette pal(ColorStdout());
  std::printf(
      "%s %s: epoch %llu -> %llu, %zu page(s) differ%s\n", pal.Bold("diff").c_str(), a.path.c_str(),
      static_cast<unsigned long long>(d->from), static_cast<unsigned long long>(d->to),
      d->pages.size(),
      d->pages.empty() && d->edges_added.empty() && d->edges_removed.empty() ? " (no change)" : "");
  for (const PageDiff& p : d->pages) {
    std::string label = fmt::format("page {}", p.id);
    if (!p.name.empty()) label += " " + p.name;
    std::string what = p.type_name.empty() ? "raw" : p.type_name;
    std::string ranges;
    for (std::size_t i = 0; i < p.runs.size() && i < 8; ++i) {
      ranges += fmt::format(" [{}, {})", p.runs[i].offset, p.runs[i].offset + p.runs[i].length);
    }
    if (p.runs.size() > 8) ranges += fmt::format(" ... ({} ranges)", p.runs.size());
    std::printf("%s (%s, %llu bytes): %s", pal.Bold(label).c_str(), what.c_str(),
                static_cast<unsigned long long>(p.size), PageDiffKindName(p.kind));
    if (p.kind != PageDiff::Kind::kRemoved) {
      std::printf(", %llu byte(s) in %zu range(s)%s",
                  static_cast<unsigned long long>(p.changed_bytes), p.runs.size(), ranges.c_str());
    }
    std::printf("\n");
    for (const FieldChange& f : p.fields) {
      const std::string path =
          (p.type_name.empty() ? "" : p.type_name + (f.path.starts_with("[") ? "" : ".")) + f.path;
      std::printf("  %s: %s -> %s\n", path.c_str(), pal.Red(f.old_value).c_str(),
                  pal.Green(f.new_value).c_str());
    }
    if (p.fields_truncated) std::printf("  ... more fields (raise --max-fields)\n");
  }
  for (const EdgeInfo& e : d->edges_added) {
    std::printf("%s %llu -> %llu (%s)\n", pal.Green("+edge").c_str(),
                static_cast<unsigned long long>(e.parent), static_cast<unsigned long long>(e.child),
                EdgeKindName(e.kind));
  }
  for (const EdgeInfo& e : d->edges_removed) {
    std::printf("%s %llu -> %llu (%s)\n", pal.Red("-edge").c_str(),
                static_cast<unsigned long long>(e.parent), static_cast<unsigned long long>(e.child),
                EdgeKindName(e.kind));
  }
  return rep.has_errors() ? FailProblems(a.path, rep.problems) : 0;
}

void AddDiff(CLI::App& app) {
  static DiffArgs a;
  CLI::App* sub = app.add_subcommand(
      "diff", "what changed between two epochs of a log (byte ranges and fields)");
  sub->add_option("log", a.path, "log directory, segment or checkpoint file")->required();
  sub->add_option("--from", a.from, "the earlier epoch")->required();
  sub->add_option("--to", a.to, "the later epoch")->required();
  sub->add_option("--page", a.page, "only this page id")->check(NonEmpty());
  sub->add_option("--type", a.type, "only pages of this type")->check(NonEmpty());
  sub->add_option("--max-fields", a.max_fields, "field changes listed per page (default 1000)");
  sub->add_flag("--json", a.json, "machine-readable output (docs/SerializationSpec.md, CLI JSON)");
  sub->add_flag("--salvage", a.salvage, "skip damaged epochs instead of stopping");
  sub->add_flag("-q,--quiet", a.quiet, "no progress on stderr");
  SetAction(sub, [] { return Run(a); });
}

const CommandRegistrar kRegistrar(AddDiff);

}  // namespace
}  // namespace mmsb::cli
