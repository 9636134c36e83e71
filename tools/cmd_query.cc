// Asking the log (mmsb/query.h): `mmsb history`, `blame`, `bisect`, `touched`, `slice` and `why`.
// Each prints text or, with --json, one document whose `format` is `mmsb.<command>/1`
// (docs/SerializationSpec.md, "CLI JSON"). All logic lives in the query library and the IR store.
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "mmsb/ir/demangle.h"
#include "mmsb/ir/diff.h"
#include "mmsb/ir/store.h"
#include "mmsb/log.h"
#include "mmsb/query.h"

#include "command.h"
#include "log_cli.h"

namespace mmsb::cli {
namespace {

using nlohmann::json;

struct QueryArgs {
  std::string log;
  std::string field;
  std::string from;
  std::string to;
  std::string at;
  std::string where;
  std::string out;
  std::string store;
  std::string gen;
  bool monotone = false;
  bool json = false;
  std::size_t max = 1000;
};

void Print(const json& j) {
  std::printf("%s\n", j.dump(2, ' ', false, json::error_handler_t::replace).c_str());
}

// Parses an optional epoch flag; `dflt` when empty.
bool EpochFlag(const std::string& s, const char* flag, Epoch dflt, Epoch* out, int* rc) {
  if (s.empty()) {
    *out = dflt;
    return true;
  }
  *rc = ::mmsb::cli::EpochFlag(flag, s, true, out);  // the one epoch parser (log_cli.h)
  return *rc == 0;
}

// The index is a cache: when the file was not usable (damaged, stale), Open rebuilt it, and
// the user hears why on stderr.
Expected<std::unique_ptr<query::LogIndex>> OpenIndex(const std::string& log) {
  // A directory that is not a log is refused before the index (query.idx) is built in it.
  MMSB_RETURN_IF_ERROR(CheckLogPath(log));
  auto index = query::LogIndex::Open(log);
  if (index.ok() && !(*index)->note().empty()) {
    fmt::print(stderr, "mmsb: note: {}\n", (*index)->note());
  }
  return index;
}

// A query's error about its field or path, naming what was asked when the message names only the
// part that is wrong ("type 'Pair' has no field 'zz'" for Pair.zz).
int FailAbout(const std::string& asked, const Status& s) {
  const bool about_input =
      s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound;
  if (!about_input || asked.empty() || s.message().find(asked) != std::string::npos)
    return Fail(s.message());
  return Fail(fmt::format("'{}': {}", asked, s.message()));
}

// An epoch the log never reached is a wrong question, not an empty answer (issue 15): `epoch`
// (kLatestEpoch: 'latest', always fine) must be at most the last committed one. 0 when it is.
int CheckReached(const query::LogIndex& index, const std::string& log, const char* flag,
                 Epoch epoch) {
  if (epoch == kLatestEpoch || epoch <= index.last_epoch()) return 0;
  return Fail(fmt::format("{}: epoch {} is beyond the end of log '{}' (last committed epoch {})",
                          flag, epoch, log, index.last_epoch()));
}

// --from/--to: both reached, and in order. 0 when they are.
int CheckWindow(const query::LogIndex& index, const std::string& log, Epoch from, Epoch to) {
  if (int rc = CheckReached(index, log, "--from", from)) return rc;
  if (int rc = CheckReached(index, log, "--to", to)) return rc;
  const Epoch last = to == kLatestEpoch ? index.last_epoch() : to;
  if (from > last) {
    return Fail(
        fmt::format("--from {} is after --to {}", from,
                    to == kLatestEpoch ? fmt::format("latest ({})", last) : std::to_string(to)));
  }
  return 0;
}

json SiteJson(const query::TransactionRef& t) {
  json j;
  j["kind"] = t.site.kind == query::TransactionSite::Kind::kTransaction  ? "transaction"
              : t.site.kind == query::TransactionSite::Kind::kCommitCall ? "commit"
                                                                         : "unknown";
  j["function"] = t.site.function;
  j["file"] = t.site.file;
  j["line"] = t.site.line;
  j["thread"] = t.thread;
  j["sequence"] = t.sequence;
  return j;
}

json CommitJson(const query::CommitInfo& c) {
  json j;
  j["epoch"] = c.epoch;
  j["unix_nanos"] = c.unix_nanos;
  j["transactions"] = json::array();
  for (const auto& t : c.transactions) j["transactions"].push_back(SiteJson(t));
  return j;
}

json ChangeJson(const query::FieldChangeAt& c) {
  json j;
  j["epoch"] = c.epoch;
  j["page"] = c.field.page;
  j["path"] = c.field.label;
  j["offset"] = c.field.offset;
  j["size"] = c.field.size;
  j["kind"] = ScalarKindName(c.field.kind);
  j["old"] = c.old_value;
  j["new"] = c.new_value;
  return j;
}

std::string SitesText(const query::CommitInfo& c) {
  if (c.transactions.empty()) return "(no provenance in the log)";
  std::string s;
  for (const auto& t : c.transactions) {
    if (!s.empty()) s += "; ";
    s += t.site.ToString();
    if (t.thread != 0) s += fmt::format(" [thread {}, #{}]", t.thread, t.sequence);
  }
  return s;
}

std::string PageText(const query::LogIndex& index, PageId id) {
  const query::IndexedPage* p = index.FindPage(id);
  if (p == nullptr) return fmt::format("page {}", id);
  return p->name.empty() ? fmt::format("page {}", id) : fmt::format("page {} {}", id, p->name);
}

// The --from/--to window of a query: both flags parsed by the one epoch parser, the log's index
// opened, and the window checked against the log's end. Returns 0, or the exit code of the error
// it printed.
int OpenWindow(const QueryArgs& a, Epoch* from, Epoch* to,
               std::unique_ptr<query::LogIndex>* index) {
  int rc = 0;
  if (!EpochFlag(a.from, "--from", 0, from, &rc)) return rc;
  if (!EpochFlag(a.to, "--to", kLatestEpoch, to, &rc)) return rc;
  auto opened = OpenIndex(a.log);
  if (!opened.ok()) return FailLog(opened.status(), false);
  if (int c = CheckWindow(**opened, a.log, *from, *to)) return c;
  *index = std::move(*opened);
  return 0;
}

// The --at epoch of a query: parsed by the one epoch parser, the log's index opened, the epoch
// checked against the log's end, and 'latest' resolved to the last committed epoch. Returns 0, or
// the exit code of the error it printed.
int OpenAt(const QueryArgs& a, Epoch* at, std::unique_ptr<query::LogIndex>* index) {
  int rc = 0;
  if (!EpochFlag(a.at, "--at", kLatestEpoch, at, &rc)) return rc;
  auto opened = OpenIndex(a.log);
  if (!opened.ok()) return FailLog(opened.status(), false);
  if (int c = CheckReached(**opened, a.log, "--at", *at)) return c;
  if (*at == kLatestEpoch) *at = (*opened)->last_epoch();
  *index = std::move(*opened);
  return 0;
}

// ---- history ------------------------------------------------------------------------------------

int RunHistory(const QueryArgs& a) {
  query::HistoryOptions o;
  o.max_changes = a.max;
  std::unique_ptr<query::LogIndex> index;
  if (int rc = OpenWindow(a, &o.from, &o.to, &index)) return rc;
  auto h = query::FieldHistory(*index, a.field, o);
  if (!h.ok()) return FailAbout(a.field, h.status());
  if (a.json) {
    json j;
    j["format"] = "mmsb.history/1";
    j["log"] = a.log;
    j["field"] = a.field;
    j["fields"] = h->fields.size();
    j["changes"] = json::array();
    for (const auto& c : h->changes) {
      json cj = ChangeJson(c);
      auto ci = index->Commit(c.epoch);
      if (ci.ok()) cj["commit"] = CommitJson(*ci);
      j["changes"].push_back(std::move(cj));
    }
    j["truncated"] = h->truncated;
    Print(j);
    return 0;
  }
  const Palette pal(ColorStdout());
  std::printf("%s %s: %zu change(s) of %zu field(s)\n", pal.Bold("history").c_str(),
              a.field.c_str(), h->changes.size(), h->fields.size());
  Epoch shown = 0;
  for (const auto& c : h->changes) {
    if (c.epoch != shown) {
      auto ci = index->Commit(c.epoch);
      std::printf("%s %s  %s\n", pal.Bold(fmt::format("epoch {}", c.epoch)).c_str(),
                  ci.ok() ? FormatUnixNanos(ci->unix_nanos).c_str() : "-",
                  ci.ok() ? pal.Cyan(SitesText(*ci)).c_str() : "");
      shown = c.epoch;
    }
    std::printf("  %s: %s -> %s\n", c.field.label.c_str(), pal.Red(c.old_value).c_str(),
                pal.Green(c.new_value).c_str());
  }
  if (h->truncated) std::printf("... more changes (raise --max)\n");
  return 0;
}

// ---- blame --------------------------------------------------------------------------------------

int RunBlame(const QueryArgs& a) {
  Epoch at = 0;
  std::unique_ptr<query::LogIndex> index;
  if (int rc = OpenAt(a, &at, &index)) return rc;
  auto b = query::BlameField(*index, a.field, at, a.max);
  if (!b.ok()) return FailAbout(a.field, b.status());
  if (a.json) {
    json j;
    j["format"] = "mmsb.blame/1";
    j["log"] = a.log;
    j["field"] = a.field;
    j["at"] = at;
    j["change"] = ChangeJson(b->change);
    j["commit"] = CommitJson(b->commit);
    j["together"] = json::array();
    for (const auto& c : b->together) j["together"].push_back(ChangeJson(c));
    j["together_truncated"] = b->together_truncated;
    j["derived"] = b->derived;
    Print(j);
    return 0;
  }
  const Palette pal(ColorStdout());
  std::printf("%s: last changed in %s (%s)\n", pal.Bold(b->change.field.label).c_str(),
              pal.Bold(fmt::format("epoch {}", b->change.epoch)).c_str(),
              FormatUnixNanos(b->commit.unix_nanos).c_str());
  std::printf("  %s -> %s\n", pal.Red(b->change.old_value).c_str(),
              pal.Green(b->change.new_value).c_str());
  std::printf("  committed by %s\n", pal.Cyan(SitesText(b->commit)).c_str());
  if (!b->together.empty()) {
    std::printf("  the same commit changed:\n");
    for (const auto& c : b->together) {
      std::printf("    %s (%s): %s -> %s\n", c.field.label.c_str(),
                  PageText(*index, c.field.page).c_str(), pal.Red(c.old_value).c_str(),
                  pal.Green(c.new_value).c_str());
    }
    if (b->together_truncated) std::printf("    ... more (raise --max)\n");
  }
  for (PageId d : b->derived) {
    std::printf("  recomputed downstream: %s\n", PageText(*index, d).c_str());
  }
  return 0;
}

// ---- bisect -------------------------------------------------------------------------------------

int RunBisect(const QueryArgs& a) {
  query::BisectOptions o;
  o.monotone = a.monotone;
  std::unique_ptr<query::LogIndex> index;
  if (int rc = OpenWindow(a, &o.from, &o.to, &index)) return rc;
  auto p = query::Predicate::Parse(*index, a.where);
  if (!p.ok()) {
    const std::string m = p.status().message();
    if (a.where.empty() || m.find(a.where) != std::string::npos) return Fail("--where: " + m);
    return Fail(fmt::format("--where '{}': {}", a.where, m));
  }
  auto r = query::Bisect(*index, *p, o);
  if (!r.ok()) return Fail(r.status().message());
  std::optional<query::CommitInfo> ci;
  if (r->found) {
    if (auto c = index->Commit(r->epoch); c.ok()) ci = *c;
  }
  if (a.json) {
    json j;
    j["format"] = "mmsb.bisect/1";
    j["log"] = a.log;
    j["where"] = a.where;
    j["monotone"] = a.monotone;
    j["found"] = r->found;
    j["epochs_evaluated"] = r->epochs_evaluated;
    if (r->found) {
      j["epoch"] = r->epoch;
      j["changes"] = json::array();
      for (const auto& c : r->changes) j["changes"].push_back(ChangeJson(c));
      json vals = json::object();
      for (std::size_t i = 0; i < p->fields().size(); ++i) {
        vals[p->fields()[i].label] = r->values[i];
      }
      j["values"] = std::move(vals);
      if (ci) j["commit"] = CommitJson(*ci);
    }
    Print(j);
    return 0;
  }
  const Palette pal(ColorStdout());
  if (!r->found) {
    std::printf("%s never holds in epochs %llu..%llu (%llu evaluation(s))\n", a.where.c_str(),
                static_cast<unsigned long long>(std::max(o.from, index->first_epoch())),
                static_cast<unsigned long long>(std::min(o.to, index->last_epoch())),
                static_cast<unsigned long long>(r->epochs_evaluated));
    return 0;
  }
  std::printf("%s first holds at %s (%llu evaluation(s)%s)\n", pal.Bold(a.where).c_str(),
              pal.Bold(fmt::format("epoch {}", r->epoch)).c_str(),
              static_cast<unsigned long long>(r->epochs_evaluated),
              a.monotone ? ", assuming it stays true" : "");
  if (ci) std::printf("  committed by %s\n", pal.Cyan(SitesText(*ci)).c_str());
  for (const auto& c : r->changes) {
    std::printf("  %s: %s -> %s\n", c.field.label.c_str(), pal.Red(c.old_value).c_str(),
                pal.Green(c.new_value).c_str());
  }
  if (r->epoch == 0) {
    std::printf("  (it holds in the initial state)\n");
    return 0;
  }
  std::printf("  (mmsb diff %s --from %llu --to %llu shows the whole epoch)\n", a.log.c_str(),
              static_cast<unsigned long long>(r->epoch - 1),
              static_cast<unsigned long long>(r->epoch));
  return 0;
}

// ---- touched ------------------------------------------------------------------------------------

int RunTouched(const QueryArgs& a) {
  Epoch from = 0, to = 0;
  std::unique_ptr<query::LogIndex> index;
  if (int rc = OpenWindow(a, &from, &to, &index)) return rc;
  auto t = query::TouchedBy(*index, a.field, from, to);
  if (!t.ok()) return FailAbout(a.field, t.status());
  if (a.json) {
    json j;
    j["format"] = "mmsb.touched/1";
    j["log"] = a.log;
    j["path"] = a.field;
    j["epochs"] = t->epochs;
    j["sites"] = json::array();
    for (const auto& s : t->sites) {
      j["sites"].push_back(
          {{"site", s.site}, {"epochs", s.epochs}, {"first", s.first}, {"last", s.last}});
    }
    Print(j);
    return 0;
  }
  const Palette pal(ColorStdout());
  std::printf("%s changed in %llu epoch(s)\n", pal.Bold(a.field).c_str(),
              static_cast<unsigned long long>(t->epochs));
  for (const auto& s : t->sites) {
    std::printf("  %8llu  %s  (epochs %llu..%llu)\n", static_cast<unsigned long long>(s.epochs),
                pal.Cyan(s.site).c_str(), static_cast<unsigned long long>(s.first),
                static_cast<unsigned long long>(s.last));
  }
  return 0;
}

// ---- slice --------------------------------------------------------------------------------------

int RunSlice(const QueryArgs& a) {
  Epoch from = 0, to = 0;
  if (int rc = ::mmsb::cli::EpochFlag("--from", a.from, false, &from); rc != 0) return rc;
  if (int rc = ::mmsb::cli::EpochFlag("--to", a.to, true, &to); rc != 0) return rc;
  if (to == kLatestEpoch) {
    auto index = OpenIndex(a.log);
    if (!index.ok()) return FailLog(index.status(), false);
    to = (*index)->last_epoch();
  }
  auto r = query::Slice(a.log, from, to, a.out);
  if (!r.ok()) return FailLog(r.status(), false);
  if (a.json) {
    json j;
    j["format"] = "mmsb.slice/1";
    j["log"] = a.log;
    j["out"] = a.out;
    j["from"] = r->from;
    j["to"] = r->to;
    j["groups"] = r->groups;
    j["records"] = r->records;
    j["bytes"] = r->bytes;
    j["checkpoint"] = r->checkpoint;
    Print(j);
    return 0;
  }
  std::printf("slice %s: epochs %llu..%llu -> %s (%llu epoch(s), %s)\n", a.log.c_str(),
              static_cast<unsigned long long>(r->from), static_cast<unsigned long long>(r->to),
              a.out.c_str(), static_cast<unsigned long long>(r->groups),
              FormatBytes(r->bytes).c_str());
  return 0;
}

// ---- why ----------------------------------------------------------------------------------------

std::string Cwd() {
  std::error_code ec;
  return std::filesystem::current_path(ec).string();
}

std::string HashHex(std::uint64_t h) { return fmt::format("{:016x}", h); }

// The run's build, matched against the IR store through its units' content hashes.
struct BuildInStore {
  query::BuildInfo build;
  ir::BuildMatch match;
};

Expected<BuildInStore> MatchRunBuild(ir::Store& store, const query::BuildInfo& build) {
  std::vector<ir::UnitRef> units;
  units.reserve(build.units.size());
  for (const LogBuild::Unit& u : build.units) units.push_back({u.source, u.content_hash});
  MMSB_ASSIGN_OR_RETURN(ir::BuildMatch match, store.MatchBuild(units));
  return BuildInStore{build, std::move(match)};
}

json BuildJson(const BuildInStore& b) {
  json j = {{"build_id", b.build.build_id}, {"executable", b.build.executable}};
  j["units"] = json::array();
  for (const ir::UnitMatch& u : b.match.units) {
    json x = {{"source", u.unit.source}, {"content_hash", HashHex(u.unit.content_hash)}};
    x["generation"] = u.captured_in == 0 ? json(nullptr) : json(u.captured_in);
    x["tu"] = u.tu_source.empty() ? json(nullptr) : json(u.tu_source);
    j["units"].push_back(std::move(x));
  }
  j["units_known"] = b.match.known;
  j["generation"] = b.match.generation == 0 ? json(nullptr) : json(b.match.generation);
  j["last_generation"] =
      b.match.last_generation == 0 ? json(nullptr) : json(b.match.last_generation);
  return j;
}

void PrintBuild(const BuildInStore& b, const Palette& pal) {
  std::printf("  run built as %s (build id %s)\n",
              b.build.executable.empty() ? "(unknown executable)" : b.build.executable.c_str(),
              b.build.build_id.empty() ? "(none)" : b.build.build_id.c_str());
  if (b.build.units.empty()) {
    std::printf(
        "  the log names no translation units (written before unit hashes, or no TU "
        "was instrumented)\n");
    return;
  }
  if (b.match.generation != 0) {
    std::printf("  built from IR generation %s",
                pal.Bold(std::to_string(b.match.generation)).c_str());
    if (b.match.last_generation != b.match.generation) {
      std::printf(" (generations up to %lld hold the same units)",
                  static_cast<long long>(b.match.last_generation));
    }
    std::printf("\n");
  } else {
    std::printf("  no IR generation holds this build (%d of %zu unit(s) known to the store)\n",
                b.match.known, b.build.units.size());
  }
  for (const ir::UnitMatch& u : b.match.units) {
    std::printf("    %s  %s  %s\n", HashHex(u.unit.content_hash).c_str(), u.unit.source.c_str(),
                u.captured_in == 0 ? "not in the store"
                                   : fmt::format("generation {}", u.captured_in).c_str());
  }
}

Expected<std::unique_ptr<ir::Store>> OpenStoreFor(const std::string& store_path,
                                                  const char* command) {
  auto store = ir::Store::Open(store_path, ir::Store::Mode::kExisting);
  if (!store.ok()) {
    return Status(store.status().code(),
                  store.status().message() + " (" + command +
                      " needs the IR store of the build that ran: pass --store or set " +
                      ir::kStoreEnv + ")");
  }
  return store;
}

int RunBuild(const QueryArgs& a) {
  Epoch at = 0;
  std::unique_ptr<query::LogIndex> index;
  if (int rc = OpenAt(a, &at, &index)) return rc;
  const std::string store_path = a.store.empty() ? ir::ResolveStorePath(Cwd(), Cwd()) : a.store;
  auto store = OpenStoreFor(store_path, "build");
  if (!store.ok()) return Fail(store.status().message());
  auto b = MatchRunBuild(**store, index->BuildAt(at));
  if (!b.ok()) return Fail(b.status().message());
  if (a.json) {
    json j;
    j["format"] = "mmsb.build/1";
    j["log"] = a.log;
    j["at"] = at;
    j["store"] = store_path;
    j["build"] = BuildJson(*b);
    Print(j);
    return 0;
  }
  const Palette pal(ColorStdout());
  std::printf("the run at epoch %llu, IR store %s\n", static_cast<unsigned long long>(at),
              store_path.c_str());
  PrintBuild(*b, pal);
  return 0;
}

int RunWhy(const QueryArgs& a) {
  Epoch at = 0;
  std::unique_ptr<query::LogIndex> index;
  if (int rc = OpenAt(a, &at, &index)) return rc;
  auto b = query::BlameField(*index, a.field, at, 0);
  if (!b.ok()) return FailAbout(a.field, b.status());
  const query::IndexedPage* page = index->FindPage(b->change.field.page);
  const std::string type = page ? page->type_name : "";

  const std::string store_path = a.store.empty() ? ir::ResolveStorePath(Cwd(), Cwd()) : a.store;
  auto store = OpenStoreFor(store_path, "why");
  if (!store.ok()) return Fail(store.status().message());
  auto build = MatchRunBuild(**store, index->BuildAt(b->change.epoch));
  if (!build.ok()) return Fail(build.status().message());
  // The generation to compare: --gen, else the one the run's units name, else the latest.
  std::string gen_from = "--gen";
  std::string gen_spec = a.gen;
  if (gen_spec.empty() && build->match.generation != 0) {
    gen_from = "build";
    gen_spec = std::to_string(build->match.generation);
  } else if (gen_spec.empty()) {
    gen_from = "latest";
    gen_spec = "latest";
    fmt::print(stderr, "mmsb: note: {}; comparing the latest generation (--gen picks another)\n",
               build->build.units.empty()
                   ? "the log names no translation units of the run's build"
                   : fmt::format("no IR generation holds the run's build ({} of {} unit(s) "
                                 "known to the store)",
                                 build->match.known, build->build.units.size()));
  }
  auto gen = (*store)->ResolveGeneration(gen_spec);
  if (!gen.ok()) return Fail("--gen: " + gen.status().message());
  auto gens = (*store)->Generations(false);
  if (!gens.ok()) return Fail(gens.status().message());
  std::int64_t prev = 0;
  for (const auto& g : *gens) {
    if (g.id < *gen) prev = std::max(prev, g.id);
  }
  auto funcs = (*store)->Functions(*gen, ir::Stage::kPre);
  if (!funcs.ok()) return Fail(funcs.status().message());
  std::vector<const ir::FunctionVersion*> writers;
  for (const auto& f : *funcs) {
    for (const auto& t : f.page_types) {
      if (!type.empty() && ir::PageTypeMatches(t, type)) {
        writers.push_back(&f);
        break;
      }
    }
  }
  std::optional<ir::GenerationDiff> diff;
  if (prev != 0 && !type.empty()) {
    ir::DiffOptions d;
    d.touching = type;
    auto dd = ir::DiffGenerations(**store, prev, *gen, d);
    if (!dd.ok()) return Fail(dd.status().message());
    diff = std::move(*dd);
  }
  auto change_of = [&](const ir::FunctionVersion& f) -> const ir::FunctionChange* {
    if (!diff) return nullptr;
    for (const auto& c : diff->changes) {
      if (c.any().name == f.name && c.any().tu_source == f.tu_source) return &c;
    }
    return nullptr;
  };
  if (a.json) {
    json j;
    j["format"] = "mmsb.why/1";
    j["log"] = a.log;
    j["field"] = a.field;
    j["at"] = at;
    j["change"] = ChangeJson(b->change);
    j["commit"] = CommitJson(b->commit);
    j["page_type"] = type;
    j["build"] = BuildJson(*build);
    j["store"] = store_path;
    j["generation"] = *gen;
    j["generation_from"] = gen_from;
    j["previous_generation"] = prev;
    j["writers"] = json::array();
    for (const auto* f : writers) {
      json w;
      w["function"] = ir::Demangle(f->name);
      w["mangled"] = f->name;
      w["tu"] = f->tu_source;
      w["file"] = f->file;
      w["line"] = f->line;
      const ir::FunctionChange* c = change_of(*f);
      w["changed"] = c != nullptr;
      if (c) {
        w["change"] = ir::ChangeKindName(c->kind);
        w["instructions_delta"] = c->InstructionDelta();
        w["blocks_delta"] = c->BlockDelta();
        w["diff"] = c->unified;
      }
      j["writers"].push_back(std::move(w));
    }
    Print(j);
    return 0;
  }
  const Palette pal(ColorStdout());
  std::printf("%s changed in %s: %s -> %s\n", pal.Bold(b->change.field.label).c_str(),
              pal.Bold(fmt::format("epoch {}", b->change.epoch)).c_str(),
              pal.Red(b->change.old_value).c_str(), pal.Green(b->change.new_value).c_str());
  std::printf("  committed by %s\n", pal.Cyan(SitesText(b->commit)).c_str());
  PrintBuild(*build, pal);
  std::printf("  IR store %s: generation %lld", store_path.c_str(), static_cast<long long>(*gen));
  if (prev != 0) std::printf(" vs %lld", static_cast<long long>(prev));
  std::printf("\n");
  if (writers.empty()) {
    std::printf("  no function in generation %lld is known to write '%s'\n",
                static_cast<long long>(*gen), type.c_str());
    return 0;
  }
  std::printf("  functions that write %s:\n", type.c_str());
  for (const auto* f : writers) {
    const ir::FunctionChange* c = change_of(*f);
    std::string where = f->file.empty() ? f->tu_source : fmt::format("{}:{}", f->file, f->line);
    if (c == nullptr) {
      std::printf("    %s (%s): %s\n", ir::Demangle(f->name).c_str(), where.c_str(),
                  prev == 0 ? "no earlier generation" : "unchanged");
      continue;
    }
    std::printf("    %s (%s): %s, %+lld instruction(s), %+lld block(s)\n",
                pal.Bold(ir::Demangle(f->name)).c_str(), where.c_str(),
                pal.Yellow(ir::ChangeKindName(c->kind)).c_str(),
                static_cast<long long>(c->InstructionDelta()),
                static_cast<long long>(c->BlockDelta()));
    if (!c->unified.empty()) {
      std::string text = c->unified;
      std::size_t lines = 0, pos = 0;
      while (pos < text.size() && lines < 40) {
        pos = text.find('\n', pos);
        if (pos == std::string::npos) break;
        ++pos;
        ++lines;
      }
      if (pos < text.size() && pos != std::string::npos) text = text.substr(0, pos) + "      ...\n";
      std::printf("%s", text.c_str());
    }
  }
  return 0;
}

// ---- registration -------------------------------------------------------------------------------

void AddQuery(CLI::App& app) {
  static QueryArgs a;
  auto common = [](CLI::App* sub) {
    sub->add_option("log", a.log, "log directory")->required();
    sub->add_flag("--json", a.json,
                  "machine-readable output (docs/SerializationSpec.md, CLI JSON)");
  };
  constexpr const char* kField =
      "a field as mmsb diff prints it (Counters.hits[1]), [*] for any index, or a whole "
      "struct, page or type name";

  CLI::App* h = app.add_subcommand("history", "every change of a field, with old -> new values");
  common(h);
  h->add_option("field", a.field, kField)->required();
  h->add_option("--from", a.from, "changes after this epoch")->check(NonEmpty());
  h->add_option("--to", a.to, "changes up to this epoch")->check(NonEmpty());
  h->add_option("--max", a.max, "changes listed (default 1000)")->check(CLI::NonNegativeNumber);
  SetAction(h, [] { return RunHistory(a); });

  CLI::App* b = app.add_subcommand("blame", "the last change of a field at or before an epoch");
  common(b);
  b->add_option("field", a.field, kField)->required();
  b->add_option("--at", a.at, "the epoch (default: latest)")->check(NonEmpty());
  b->add_option("--max", a.max, "other changes of the commit listed (default 1000)")
      ->check(CLI::NonNegativeNumber);
  SetAction(b, [] { return RunBlame(a); });

  CLI::App* bi = app.add_subcommand("bisect", "the first epoch where a predicate holds");
  common(bi);
  bi->add_option("--where", a.where,
                 "predicate: fields, numbers, + - * / %, == != < <= > >=, && || !, ( )")
      ->required();
  bi->add_option("--from", a.from, "first epoch searched")->check(NonEmpty());
  bi->add_option("--to", a.to, "last epoch searched")->check(NonEmpty());
  bi->add_flag("--monotone", a.monotone,
               "binary search: only right if the predicate stays true once true");
  SetAction(bi, [] { return RunBisect(a); });

  CLI::App* t = app.add_subcommand("touched", "which transactions modified a path, by site");
  common(t);
  t->add_option("path", a.field, kField)->required();
  t->add_option("--from", a.from, "changes after this epoch")->check(NonEmpty());
  t->add_option("--to", a.to, "changes up to this epoch")->check(NonEmpty());
  SetAction(t, [] { return RunTouched(a); });

  CLI::App* s = app.add_subcommand("slice", "a self-contained log of a window of epochs");
  common(s);
  s->add_option("--from", a.from, "first epoch (the slice's checkpoint)")->required();
  s->add_option("--to", a.to, "last epoch")->required();
  s->add_option("-o,--out", a.out, "new log directory")->required();
  SetAction(s, [] { return RunSlice(a); });

  CLI::App* w = app.add_subcommand(
      "why", "a field's last change, and how the functions that write its type changed");
  common(w);
  w->add_option("field", a.field, kField)->required();
  w->add_option("--at", a.at, "the epoch (default: latest)")->check(NonEmpty());
  w->add_option("--store", a.store, "IR store (default: MMSB_IR_STORE or .mmsb/ir.db)");
  w->add_option("--gen", a.gen,
                "the generation the run was built from (default: the one its build's unit "
                "hashes name, else the latest)");
  SetAction(w, [] { return RunWhy(a); });

  CLI::App* bu = app.add_subcommand(
      "build", "the build a run was made from: its units and the IR generations they came from");
  common(bu);
  bu->add_option("--at", a.at, "an epoch of the run (default: latest)")->check(NonEmpty());
  bu->add_option("--store", a.store, "IR store (default: MMSB_IR_STORE or .mmsb/ir.db)");
  SetAction(bu, [] { return RunBuild(a); });
}

const CommandRegistrar kRegistrar(AddQuery);

}  // namespace
}  // namespace mmsb::cli
