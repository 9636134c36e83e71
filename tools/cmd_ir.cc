// `mmsb ir ...`: the IR store from the command line (docs/IRStore.md). Thin: parse flags, call
// the IR store library (mmsb/ir/*.h), print.
//
//   mmsb ir builds
//   mmsb ir functions --gen N [--tu PATH]
//   mmsb ir show FUNC --gen N [--stage pre|post] [--tu PATH]
//   mmsb ir diff [A [B]] [--stage S] [--function REGEX] [--touching TYPE] [--stat] [--json]
//                [--sort delta|name] [--by-tu]
//   mmsb ir history FUNC [--stage S] [--tu PATH]
//   mmsb ir gc --keep N
//   mmsb ir new-generation [--label L] [--quiet]   (the pre-build step, cmake/MmsbIr.cmake)
// Every subcommand takes --store PATH (default: MMSB_IR_STORE, else .mmsb/ir.db found from the
// working directory, see ResolveStorePath).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "mmsb/ir/demangle.h"
#include "mmsb/ir/diff.h"
#include "mmsb/ir/report.h"
#include "mmsb/ir/store.h"

#include "cmd_ir_report.h"
#include "command.h"

namespace mmsb::cli {
namespace {

struct IrFlags {
  std::string store;
  std::string gen;
  std::string tu;
  std::string stage = "pre";
  std::string function_regex;
  std::string touching;
  std::string sort = "delta";
  std::string label;
  std::string func;
  std::string from;
  std::string to;
  int keep = 0;
  int timeout_s = -1;  // -1: MMSB_IR_WAIT_SECONDS or the default
  bool stat = false;
  bool json = false;
  bool quiet = false;
  bool by_tu = false;
};

IrFlags& Flags() {
  static IrFlags f;
  return f;
}

std::string Cwd() {
  std::error_code ec;
  return std::filesystem::current_path(ec).string();
}

Expected<std::unique_ptr<ir::Store>> OpenStore(ir::Store::Mode mode = ir::Store::Mode::kExisting) {
  std::string path = Flags().store;
  if (path.empty()) path = ir::ResolveStorePath(Cwd(), Cwd());
  // --store DIR means DIR/ir.db, as MMSB_IR_STORE=DIR does.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    path = (std::filesystem::path(path) / "ir.db").string();
  auto options = ir::StoreOptionsFromEnv();
  if (!options.ok()) return options.status();
  if (Flags().timeout_s >= 0) options->max_wait_ms = Flags().timeout_s * 1000;
  // Writes that wait for another process say so, and for whom, instead of hanging silently.
  options->busy_timeout_ms = std::min(options->busy_timeout_ms, 250);
  options->on_wait = [path](const std::string& holder) {
    std::fprintf(stderr,
                 "mmsb: waiting for the write lock of %s, held by %s (--timeout SECONDS "
                 "to give up sooner)\n",
                 path.c_str(), holder.c_str());
  };
  auto store = ir::Store::Open(path, mode, *options);
  if (!store.ok() && store.status().code() == StatusCode::kNotFound) {
    return NotFound(store.status().message() +
                    " (compiles with the plugin write <build dir>/.mmsb/ir.db; pass --store "
                    "or set " +
                    ir::kStoreEnv + ")");
  }
  return store;
}

ir::RenderOptions Render() {
  ir::RenderOptions o;
  o.color = ColorStdout();
  o.base_dir = Cwd();
  return o;
}

void Print(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }

std::optional<ir::Stage> StageFlag(int* rc) {
  auto stage = ir::ParseStage(Flags().stage);
  if (!stage) *rc = Fail("--stage must be 'pre' or 'post', not '" + Flags().stage + "'");
  return stage;
}

bool TuMatches(const std::string& tu, const std::string& query) {
  if (query.empty()) return true;
  if (tu == query) return true;
  std::error_code ec;
  const std::string abs = std::filesystem::absolute(query, ec).lexically_normal().string();
  if (tu == abs) return true;
  // A path suffix at a component boundary: "src/a.cpp" matches "/p/src/a.cpp".
  return tu.size() > query.size() &&
         tu.compare(tu.size() - query.size(), query.size(), query) == 0 &&
         tu[tu.size() - query.size() - 1] == '/';
}

int Builds() {
  auto store = OpenStore();
  if (!store.ok()) return Fail(store.status().ToString());
  auto gens = (*store)->Generations(/*with_changes=*/true);
  if (!gens.ok()) return Fail(gens.status().ToString());
  Print(Flags().json ? ir::RenderBuildsJson(*gens) : ir::RenderBuilds(*gens, Render()));
  return 0;
}

int Functions() {
  auto store = OpenStore();
  if (!store.ok()) return Fail(store.status().ToString());
  auto gen = (*store)->ResolveGeneration(Flags().gen);
  if (!gen.ok()) return Fail(gen.status().ToString());
  auto versions = (*store)->Functions(*gen, std::nullopt);
  if (!versions.ok()) return Fail(versions.status().ToString());
  std::vector<ir::FunctionVersion> kept;
  for (ir::FunctionVersion& v : *versions)
    if (TuMatches(v.tu_source, Flags().tu)) kept.push_back(std::move(v));
  if (kept.empty() && !Flags().tu.empty())
    return Fail("generation " + std::to_string(*gen) + " has no TU matching '" + Flags().tu + "'");
  Print(Flags().json ? ir::RenderFunctionsJson(*gen, kept) : ir::RenderFunctions(kept, Render()));
  return 0;
}

// The functions FUNC names, restricted to --tu.
Expected<std::vector<ir::Store::FunctionId>> Lookup(ir::Store& store, const std::string& func) {
  auto ids = store.FindFunctions(func);
  if (!ids.ok()) return ids.status();
  std::vector<ir::Store::FunctionId> kept;
  for (const auto& id : *ids)
    if (TuMatches(id.tu_source, Flags().tu)) kept.push_back(id);
  if (kept.empty() && !ids->empty()) {
    // The function exists: it is the TU that is missing. Name it, and where the function is.
    std::string where;
    for (const auto& id : *ids) where += (where.empty() ? "" : ", ") + id.tu_source;
    return NotFound("no TU matching '" + Flags().tu + "' has function '" + func + "' (it is in " +
                    where + ")");
  }
  if (kept.empty()) return NotFound("no function '" + func + "' in " + store.path());
  const std::vector<std::string> candidates = ir::AmbiguousCandidates(func, kept);
  if (!candidates.empty()) {
    std::string list;
    for (const std::string& c : candidates) list += "\n  " + c;
    return InvalidArgument("'" + func + "' matches " + std::to_string(candidates.size()) +
                           " functions; name one (more of its qualified name, or its "
                           "parameters):" +
                           list);
  }
  return kept;
}

int Show() {
  int rc = 0;
  auto stage = StageFlag(&rc);
  if (!stage) return rc;
  auto store = OpenStore();
  if (!store.ok()) return Fail(store.status().ToString());
  auto gen = (*store)->ResolveGeneration(Flags().gen);
  if (!gen.ok()) return Fail(gen.status().ToString());
  auto ids = Lookup(**store, Flags().func);
  if (!ids.ok()) return Fail(ids.status().ToString());
  auto versions = (*store)->Functions(*gen, stage);
  if (!versions.ok()) return Fail(versions.status().ToString());
  int shown = 0;
  for (const ir::FunctionVersion& v : *versions) {
    bool wanted = false;
    for (const auto& id : *ids) wanted = wanted || id.func_id == v.func_id;
    if (!wanted) continue;
    auto text = (*store)->Text(v.text_hash);
    if (!text.ok()) return Fail(text.status().ToString());
    if (shown++ > 0) Print("\n");
    Print(ir::RenderShow(v, *text, Render()));
  }
  if (shown == 0) {
    return Fail("'" + Flags().func + "' has no " + ir::StageName(*stage) +
                " version in generation " + std::to_string(*gen));
  }
  return 0;
}

int Diff() {
  int rc = 0;
  auto stage = StageFlag(&rc);
  if (!stage) return rc;
  if (Flags().sort != "delta" && Flags().sort != "name")
    return Fail("--sort must be 'delta' or 'name', not '" + Flags().sort + "'");
  auto store = OpenStore();
  if (!store.ok()) return Fail(store.status().ToString());
  const std::string from_spec = Flags().from.empty() ? "latest~1" : Flags().from;
  const std::string to_spec = Flags().to.empty() ? "latest" : Flags().to;
  auto from = (*store)->ResolveGeneration(from_spec);
  if (!from.ok()) return Fail(from.status().ToString());
  auto to = (*store)->ResolveGeneration(to_spec);
  if (!to.ok()) return Fail(to.status().ToString());
  ir::DiffOptions options;
  options.stage = *stage;
  options.function_regex = Flags().function_regex;
  options.touching = Flags().touching;
  options.with_text = !Flags().stat;
  options.by_tu = Flags().by_tu;
  options.sort =
      Flags().sort == "name" ? ir::DiffOptions::Sort::kName : ir::DiffOptions::Sort::kDelta;
  auto diff = ir::DiffGenerations(**store, *from, *to, options);
  if (!diff.ok()) return Fail(diff.status().ToString());
  Print(Flags().json ? ir::RenderDiffJson(*diff, !Flags().stat)
                     : ir::RenderDiff(*diff, Flags().stat, Render()));
  return 0;
}

int History() {
  int rc = 0;
  auto stage = StageFlag(&rc);
  if (!stage) return rc;
  auto store = OpenStore();
  if (!store.ok()) return Fail(store.status().ToString());
  auto ids = Lookup(**store, Flags().func);
  if (!ids.ok()) return Fail(ids.status().ToString());
  std::string out;
  std::vector<ir::FunctionHistory> histories;
  for (size_t i = 0; i < ids->size(); ++i) {
    const ir::Store::FunctionId& id = (*ids)[i];
    auto captures = (*store)->History(id.func_id, *stage);
    if (!captures.ok()) return Fail(captures.status().ToString());
    std::vector<ir::HistoryRow> rows = ir::HistoryRows(*captures);
    if (!Flags().json) {
      if (i > 0) out += "\n";
      out += ir::RenderHistory(id, *stage, rows, Render());
    }
    histories.push_back({id, std::move(rows)});
  }
  if (Flags().json) out = ir::RenderHistoryJson(*stage, histories);
  Print(out);
  return 0;
}

int Gc() {
  if (Flags().keep < 1)
    return Fail("--keep must be at least 1, not " + std::to_string(Flags().keep));
  auto store = OpenStore();
  if (!store.ok()) return Fail(store.status().ToString());
  auto r = (*store)->Gc(Flags().keep);
  if (!r.ok()) return Fail(r.status().ToString());
  std::printf("removed %d generation(s) and %lld blob(s); %s: %lld -> %lld bytes\n",
              r->generations_removed, static_cast<long long>(r->blobs_removed),
              (*store)->path().c_str(), static_cast<long long>(r->bytes_before),
              static_cast<long long>(r->bytes_after));
  return 0;
}

int NewGeneration() {
  auto store = OpenStore(ir::Store::Mode::kReadWrite);
  if (!store.ok()) return Fail(store.status().ToString());
  Status s = (*store)->BeginGeneration(Flags().label);
  if (!s.ok()) return Fail(s.ToString());
  if (!Flags().quiet) {
    std::printf("mmsb: the next capture into %s opens a new generation%s\n",
                (*store)->path().c_str(),
                Flags().label.empty() ? "" : (" labelled '" + Flags().label + "'").c_str());
  }
  return 0;
}

void AddIr(CLI::App& app) {
  IrFlags& f = Flags();
  CLI::App* ir = app.add_subcommand("ir", "IR captured by the plugin, by build generation");
  ir->require_subcommand(1);
  auto store_flag = [&](CLI::App* sub) {
    sub->add_option("--store", f.store,
                    "the IR store (default: $MMSB_IR_STORE or .mmsb/ir.db "
                    "found upward from the working directory)")
        ->check(NonEmpty());
  };
  auto json_flag = [&](CLI::App* sub) { sub->add_flag("--json", f.json, "print JSON"); };
  auto stage_flag = [&](CLI::App* sub) {
    sub->add_option("--stage", f.stage, "pre (as clang generated it) or post (optimised)")
        ->capture_default_str();
  };

  CLI::App* builds = ir->add_subcommand("builds", "list generations");
  store_flag(builds);
  json_flag(builds);
  SetAction(builds, Builds);

  CLI::App* functions = ir->add_subcommand("functions", "list the functions a generation sees");
  functions->add_option("--gen", f.gen, "generation: N, latest, latest~K or a label")
      ->check(NonEmpty())
      ->required();
  functions->add_option("--tu", f.tu, "only this translation unit (path or path suffix)")
      ->check(NonEmpty());
  store_flag(functions);
  json_flag(functions);
  SetAction(functions, Functions);

  CLI::App* show = ir->add_subcommand("show", "print a function's normalised IR");
  show->add_option("FUNC", f.func, "mangled name, demangled name, or name without parameters")
      ->required();
  show->add_option("--gen", f.gen, "generation: N, latest, latest~K or a label")
      ->check(NonEmpty())
      ->required();
  show->add_option("--tu", f.tu, "only this translation unit")->check(NonEmpty());
  stage_flag(show);
  store_flag(show);
  SetAction(show, Show);

  CLI::App* diff = ir->add_subcommand("diff", "what changed between two generations");
  diff->add_option("A", f.from, "older generation (default: latest~1)");
  diff->add_option("B", f.to, "newer generation (default: latest)");
  stage_flag(diff);
  diff->add_option("--function", f.function_regex, "only functions whose name matches REGEX");
  diff->add_option("--touching", f.touching, "only functions that write this page type");
  diff->add_flag("--stat", f.stat, "summary only, no per-function diffs");
  diff->add_flag("--by-tu", f.by_tu,
                 "one row per TU (default: an identical change in several TUs is one row)");
  diff->add_option("--sort", f.sort, "delta (largest instruction change first) or name")
      ->capture_default_str();
  store_flag(diff);
  json_flag(diff);
  SetAction(diff, Diff);

  CLI::App* history = ir->add_subcommand("history", "generations in which a function changed");
  history->add_option("FUNC", f.func, "mangled name, demangled name, or name without parameters")
      ->required();
  history->add_option("--tu", f.tu, "only this translation unit")->check(NonEmpty());
  stage_flag(history);
  store_flag(history);
  json_flag(history);
  SetAction(history, History);

  CLI::App* gc = ir->add_subcommand("gc", "keep only the newest generations");
  gc->add_option("--keep", f.keep, "generations to keep")->required();
  gc->add_option("--timeout", f.timeout_s,
                 "seconds to wait for a store another process is writing (default: $" +
                     std::string(ir::kWaitEnv) + " or 600)")
      ->check(CLI::NonNegativeNumber);
  store_flag(gc);
  SetAction(gc, Gc);

  CLI::App* next = ir->add_subcommand(
      "new-generation",
      "close the open generation, so the next capture opens a new one (a pre-build step)");
  next->add_option("--label", f.label, "label for the next generation");
  next->add_flag("--quiet", f.quiet, "print nothing");
  next->add_option("--timeout", f.timeout_s,
                   "seconds to wait for a store another process is writing (default: $" +
                       std::string(ir::kWaitEnv) + " or 600)")
      ->check(CLI::NonNegativeNumber);
  store_flag(next);
  SetAction(next, NewGeneration);

  AddIrReportCommands(ir);  // gate, report (cmd_ir_report.cc)
}

const CommandRegistrar kRegistrar(AddIr);

}  // namespace
}  // namespace mmsb::cli
