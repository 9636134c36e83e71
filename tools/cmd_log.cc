// `mmsb log show|verify|stats <log>`: inspect a transaction log (a log directory, one segment, or
// a checkpoint file). Output formats are documented in docs/SerializationSpec.md ("CLI JSON").
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "mmsb/checkpoint.h"
#include "mmsb/events.h"
#include "mmsb/log.h"
#include "mmsb/replay.h"

#include "command.h"
#include "log_cli.h"

namespace mmsb::cli {
namespace {

struct LogArgs {
  std::string path;
  bool json = false;
  bool salvage = false;
  bool quiet = false;
  std::string from_epoch;
  std::string to_epoch;
  std::string type;
  std::int64_t limit = 0;  // 0: no limit
  std::int64_t keep = 2;
  bool keep_given = false;
  std::string max_bytes;
  std::string max_age;
};

// "64M", "1G", "4096": bytes with an optional K/M/G/T (powers of 1024) suffix.
bool ParseBytes(const std::string& s, std::uint64_t* out) {
  std::size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  if (digits == 0 || digits > 15) return false;
  const std::string suffix = s.substr(digits);
  int shift = 0;
  if (suffix == "K" || suffix == "k")
    shift = 10;
  else if (suffix == "M" || suffix == "m")
    shift = 20;
  else if (suffix == "G" || suffix == "g")
    shift = 30;
  else if (suffix == "T" || suffix == "t")
    shift = 40;
  else if (!suffix.empty())
    return false;
  *out = std::stoull(s.substr(0, digits)) << shift;
  return *out > 0;
}

// "90s", "15m", "12h", "7d", "3600": a positive duration in seconds, minutes, hours or days (no
// suffix: seconds), at most 100 years.
bool ParseDuration(const std::string& s, std::chrono::seconds* out) {
  std::size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) return false;
  const std::string suffix = s.substr(digits);
  std::uint64_t unit = 1;
  if (suffix == "m")
    unit = 60;
  else if (suffix == "h")
    unit = 3600;
  else if (suffix == "d")
    unit = 86400;
  else if (!suffix.empty() && suffix != "s")
    return false;
  const std::uint64_t seconds = std::stoull(s.substr(0, digits)) * unit;
  if (seconds == 0 || seconds > std::uint64_t{100} * 366 * 86400) return false;
  *out = std::chrono::seconds(seconds);
  return true;
}

// The record type names --type accepts.
std::vector<std::string> KnownTypeNames() {
  std::vector<std::string> names;
  for (int t = 0; t < 256; ++t) {
    const std::string n = LogRecordTypeName(static_cast<LogRecordType>(t));
    if (n != "unknown") names.push_back(n);
  }
  return names;
}

// 1 when any problem is an error (its line was printed already), else 0.
int HasErrors(const std::vector<LogProblem>& problems) {
  return std::any_of(problems.begin(), problems.end(),
                     [](const LogProblem& p) { return p.is_error(); })
             ? 1
             : 0;
}

// Checkpoint files of a log directory by epoch (none for a file).
std::vector<std::pair<Epoch, std::string>> CheckpointFiles(const std::string& dir) {
  std::vector<std::pair<Epoch, std::string>> out;
  if (auto names = Env::Default()->GetChildren(dir); names.ok()) {
    for (const std::string& n : *names) {
      Epoch ep = 0;
      if (n.size() == 30 && n.rfind("ckpt-", 0) == 0 && n.ends_with(".ckpt") &&
          ParseEpoch(n.substr(5, 20), false, &ep).empty()) {
        out.push_back({ep, n});
      }
    }
    std::sort(out.begin(), out.end());
  }
  return out;
}

std::string TypeName(const LogEntry& e) {
  const char* n = LogRecordTypeName(e.type);
  return std::string(n) == "unknown" ? fmt::format("unknown({})", e.raw_type) : n;
}

// A one-line summary of a record's content, and the same as JSON fields.
std::string Describe(const LogEntry& e, nlohmann::json* j) {
  switch (e.type) {
    case LogRecordType::kPageCreate: {
      const LogPageCreate& c = e.page_create;
      (*j)["page"] = c.id;
      (*j)["size"] = c.size;
      (*j)["location"] = LocationName(c.location);
      (*j)["static"] = c.is_static;
      (*j)["name"] = c.name;
      (*j)["page_type"] = c.type_name;
      return fmt::format("page {} size {} {}{}{}{}", c.id, c.size, LocationName(c.location),
                         c.is_static ? " static" : "", c.name.empty() ? "" : " name=" + c.name,
                         c.type_name.empty() ? "" : " type=" + c.type_name);
    }
    case LogRecordType::kPageFree:
      (*j)["page"] = e.page_free;
      return fmt::format("page {}", e.page_free);
    case LogRecordType::kTypeDescriptor:
      (*j)["name"] = e.type_descriptor.name;
      (*j)["size"] = e.type_descriptor.size;
      (*j)["fields"] = e.type_descriptor.fields.size();
      return fmt::format("{} ({} bytes, {} fields)", e.type_descriptor.name, e.type_descriptor.size,
                         e.type_descriptor.fields.size());
    case LogRecordType::kDelta: {
      const Delta& d = e.delta;
      (*j)["page"] = d.page();
      (*j)["base_epoch"] = d.base_epoch();
      (*j)["page_size"] = d.page_size();
      (*j)["changed_bytes"] = d.changed_bytes();
      (*j)["form"] = d.form() == Delta::Form::kSparse ? "sparse" : "dense";
      return fmt::format("page {} base {} changed {} of {} bytes ({})", d.page(), d.base_epoch(),
                         d.changed_bytes(), d.page_size(),
                         d.form() == Delta::Form::kSparse ? "sparse" : "dense");
    }
    case LogRecordType::kCommit:
      (*j)["record_count"] = e.commit.record_count;
      (*j)["unix_nanos"] = e.commit.unix_nanos;
      (*j)["page_id_high"] = e.commit.page_id_high;
      return fmt::format("epoch {} records {} at {}", e.commit.epoch, e.commit.record_count,
                         FormatUnixNanos(e.commit.unix_nanos));
    case LogRecordType::kCheckpointMarker:
      (*j)["file"] = e.checkpoint.file;
      return fmt::format("epoch {} in {}", e.checkpoint.epoch, e.checkpoint.file);
    case LogRecordType::kGraphEdge: {
      const EdgeInfo& x = e.edge.edge;
      (*j)["op"] = e.edge.op == EdgeOp::kAdd ? "add" : "remove";
      (*j)["parent"] = x.parent;
      (*j)["child"] = x.child;
      (*j)["kind"] = EdgeKindName(x.kind);
      (*j)["policy"] = x.policy == DerivedPolicy::kLog ? "log" : "recompute_on_replay";
      return fmt::format("{} {} -> {} {}{}", e.edge.op == EdgeOp::kAdd ? "add" : "remove", x.parent,
                         x.child, EdgeKindName(x.kind),
                         x.policy == DerivedPolicy::kLog ? "" : " (recompute on replay)");
    }
    case LogRecordType::kVerifyMiss: {
      const LogVerifyMiss& m = e.verify_miss;
      (*j)["page"] = m.page;
      (*j)["offset"] = m.offset;
      (*j)["length"] = m.length;
      (*j)["after_epoch"] = m.after_epoch;
      (*j)["miss_epoch"] = m.epoch;
      (*j)["sampled"] = m.sampled;
      (*j)["field"] = m.field;
      return fmt::format(
          "page {}: {} byte(s) at offset {}{}{} changed without a barrier after "
          "epoch {} and before epoch {} ({})",
          m.page, m.length, m.offset, m.field.empty() ? "" : " in ", m.field, m.after_epoch,
          m.epoch, m.sampled ? "sampled verification" : "verify");
    }
    case LogRecordType::kRecompute:
      (*j)["pages"] = e.recompute.pages;
      return fmt::format("{} derived deltas left out; replay recomputes them here",
                         e.recompute.pages);
    case LogRecordType::kEvent: {
      (*j)["bytes"] = e.event.size();
      auto batch = DecodeEvents(e.event);
      if (!batch.ok()) return fmt::format("{} opaque bytes", e.event.size());
      std::map<std::string, int> by_type;
      for (const Event& ev : *batch) ++by_type[EventTypeName(ev.type)];
      std::string s = fmt::format("batch of {} events:", batch->size());
      (*j)["events"] = batch->size();
      for (const auto& [name, n] : by_type) s += fmt::format(" {}={}", name, n);
      return s;
    }
    case LogRecordType::kRunStart:
      (*j)["epoch_base"] = e.run_start.epoch_base;
      (*j)["page_id_base"] = e.run_start.page_id_base;
      (*j)["pid"] = e.run_start.pid;
      return fmt::format("after epoch {}, page ids from {}, pid {}, at {}", e.run_start.epoch_base,
                         e.run_start.page_id_base + 1, e.run_start.pid,
                         FormatUnixNanos(e.run_start.unix_nanos));
    case LogRecordType::kPageImage:
      (*j)["page"] = e.image.page;
      (*j)["chunk_offset"] = e.image.offset;
      (*j)["bytes"] = e.image.bytes.size();
      return fmt::format("page {} bytes [{}, {})", e.image.page, e.image.offset,
                         e.image.offset + e.image.bytes.size());
    case LogRecordType::kSite: {
      const LogSite& x = e.site;
      const char* kind = x.kind == LogSite::Kind::kTransaction ? "transaction" : "commit() call";
      (*j)["site"] = x.id;
      (*j)["kind"] = x.kind == LogSite::Kind::kTransaction ? "transaction" : "commit";
      (*j)["function"] = x.function;
      (*j)["file"] = x.file;
      (*j)["line"] = x.line;
      return fmt::format("site {}: {} {} at {}:{}", x.id, kind, x.function, x.file, x.line);
    }
    case LogRecordType::kCommitInfo: {
      const LogCommitInfo& x = e.commit_info;
      (*j)["state_hash"] = x.state_hash;
      nlohmann::json txs = nlohmann::json::array();
      std::string s = fmt::format("{} transaction(s):", x.transactions.size());
      for (const LogCommitTransaction& t : x.transactions) {
        txs.push_back({{"site", t.site}, {"thread", t.thread}, {"sequence", t.sequence}});
        s += fmt::format(" site {} thread {} seq {};", t.site, t.thread, t.sequence);
      }
      (*j)["transactions"] = std::move(txs);
      if (x.state_hash != 0) s += fmt::format(" state hash {:016x}", x.state_hash);
      return s;
    }
    case LogRecordType::kBuild: {
      const LogBuild& x = e.build;
      (*j)["build_id"] = x.build_id;
      (*j)["executable"] = x.executable;
      (*j)["units"] = x.units.size();
      nlohmann::json units = nlohmann::json::array();
      std::string s = fmt::format("{} build id {}, {} unit hash(es)",
                                  x.executable.empty() ? "(unknown executable)" : x.executable,
                                  x.build_id.empty() ? "(none)" : x.build_id, x.units.size());
      for (const LogBuild::Unit& u : x.units) {
        units.push_back(
            {{"source", u.source}, {"content_hash", fmt::format("{:016x}", u.content_hash)}});
        s += fmt::format("{} {:016x} {}", &u == x.units.data() ? ":" : ";", u.content_hash,
                         u.source);
      }
      (*j)["unit_hashes"] = std::move(units);
      return s;
    }
    case LogRecordType::kCheckpointEnd:
      (*j)["pages"] = e.checkpoint_end.pages;
      (*j)["image_bytes"] = e.checkpoint_end.image_bytes;
      return fmt::format("epoch {}: {} pages, {} types, {} edges, {} image bytes",
                         e.checkpoint_end.epoch, e.checkpoint_end.pages, e.checkpoint_end.types,
                         e.checkpoint_end.edges, e.checkpoint_end.image_bytes);
  }
  (*j)["bytes"] = e.payload.size();
  return fmt::format("{} bytes (a record type this build does not know; skipped)",
                     e.payload.size());
}

int OpenReader(const LogArgs& a, std::unique_ptr<LogReader>* out) {
  if (int rc = CheckLogInput(a.path)) return rc;
  LogReaderOptions o;
  o.mode = a.salvage ? RecoveryMode::kSalvage : RecoveryMode::kStrict;
  auto r = LogReader::Open(a.path, o);
  if (!r.ok()) return FailLog(r.status(), a.salvage);
  *out = std::move(*r);
  return 0;
}

int Show(const LogArgs& a) {
  Epoch from = 0, to = kLatestEpoch;
  if (!a.from_epoch.empty()) {
    if (int rc = EpochFlag("--from-epoch", a.from_epoch, false, &from)) return rc;
  }
  if (!a.to_epoch.empty()) {
    if (int rc = EpochFlag("--to-epoch", a.to_epoch, true, &to)) return rc;
  }
  if (from > to) {
    Fail(fmt::format("--from-epoch {} is after --to-epoch {}", from, to));
    return 2;
  }
  if (a.limit < 0) {
    Fail(fmt::format("--limit: {} is negative (a count of records, 0 for no limit)", a.limit));
    return 2;
  }
  if (!a.type.empty()) {
    const auto names = KnownTypeNames();
    if (std::find(names.begin(), names.end(), a.type) == names.end() &&
        !(a.type.starts_with("unknown(") && a.type.ends_with(")"))) {
      Fail(fmt::format("--type: no record type '{}' (one of: {})", a.type, fmt::join(names, ", ")));
      return 2;
    }
  }
  std::unique_ptr<LogReader> r;
  if (int rc = OpenReader(a, &r)) return rc;
  const Palette pal(!a.json && ColorStdout());
  nlohmann::json records = nlohmann::json::array();
  std::uint64_t shown = 0;
  Epoch last_epoch = 0;
  Status failure;
  for (;;) {
    LogEntry e;
    auto more = r->Next(&e);
    if (!more.ok()) {
      failure = more.status();
      break;
    }
    if (!*more) break;
    last_epoch = std::max(last_epoch, e.epoch);
    if (e.epoch < from || e.epoch > to) continue;
    if (!a.type.empty() && TypeName(e) != a.type) continue;
    if (a.limit && shown >= static_cast<std::uint64_t>(a.limit)) continue;
    ++shown;
    nlohmann::json j;
    const std::string what = Describe(e, &j);
    const std::string& file = r->files()[e.file_index];
    if (a.json) {
      j["file"] = file;
      j["offset"] = e.offset;
      j["size"] = e.framed_size;
      j["type"] = TypeName(e);
      j["epoch"] = e.epoch;
      records.push_back(std::move(j));
      continue;
    }
    std::string type = fmt::format("{:<14}", TypeName(e));
    type = e.type == LogRecordType::kCommit ? pal.Bold(type) : pal.Cyan(type);
    std::printf("%s  epoch %-6llu %s %s\n", pal.Dim(fmt::format("{}:{}", file, e.offset)).c_str(),
                static_cast<unsigned long long>(e.epoch), type.c_str(), what.c_str());
  }
  if (failure.ok() && !a.from_epoch.empty() && from > last_epoch) {
    return Fail(
        fmt::format("--from-epoch {}: log '{}' ends at epoch {}", from, a.path, last_epoch));
  }
  if (a.json) {
    nlohmann::json out;
    out["format"] = "mmsb.log/1";
    out["files"] = r->files();
    out["records"] = std::move(records);
    out["problems"] = nlohmann::json::array();
    for (const LogProblem& p : r->problems()) out["problems"].push_back(ProblemJson(p));
    if (!failure.ok()) out["error"] = failure.ToString();
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    // The failure that stopped the listing is also the last problem: print it once.
    std::vector<LogProblem> problems = r->problems();
    if (!failure.ok() && !problems.empty() && problems.back().is_error() &&
        failure.message().find(problems.back().ToString()) != std::string::npos) {
      problems.pop_back();
    }
    PrintProblems(stderr, problems, Palette(ColorStdout()));
    if (failure.ok() && shown == 0) {
      std::printf("no records match (%s)\n",
                  fmt::format("epochs {}..{}{}", from,
                              to == kLatestEpoch ? std::string("latest") : std::to_string(to),
                              a.type.empty() ? std::string() : ", type " + a.type)
                      .c_str());
    }
  }
  if (!failure.ok()) return FailLog(failure, a.salvage);
  // Salvage skipped damage: the listing stands, the exit says so (text mode printed each one).
  return a.json ? FailProblems(a.path, r->problems()) : HasErrors(r->problems());
}

int Stats(const LogArgs& a) {
  std::unique_ptr<LogReader> r;
  if (int rc = OpenReader(a, &r)) return rc;
  struct Count {
    std::uint64_t records = 0, bytes = 0;
  };
  std::map<std::string, Count> by_type;
  Epoch first = 0, last = 0;
  std::uint64_t t_first = 0, t_last = 0, commits = 0, created = 0, freed = 0, changed = 0,
                page_bytes = 0;
  Status failure;
  for (;;) {
    LogEntry e;
    auto more = r->Next(&e);
    if (!more.ok()) {
      failure = more.status();
      break;
    }
    if (!*more) break;
    Count& c = by_type[TypeName(e)];
    ++c.records;
    c.bytes += e.framed_size;
    if (e.type == LogRecordType::kCommit) {
      if (commits++ == 0) {
        first = e.commit.epoch;
        t_first = e.commit.unix_nanos;
      }
      last = e.commit.epoch;
      t_last = e.commit.unix_nanos;
    } else if (e.type == LogRecordType::kPageCreate) {
      ++created;
      page_bytes += e.page_create.size;
    } else if (e.type == LogRecordType::kPageFree) {
      ++freed;
    } else if (e.type == LogRecordType::kDelta) {
      changed += e.delta.changed_bytes();
    }
  }
  const std::vector<std::pair<Epoch, std::string>> checkpoints = CheckpointFiles(a.path);
  if (a.json) {
    nlohmann::json j;
    j["format"] = "mmsb.log-stats/1";
    j["files"] = r->files();
    j["bytes"] = r->total_bytes();
    j["commits"] = commits;
    j["first_epoch"] = first;
    j["last_epoch"] = last;
    j["first_unix_nanos"] = t_first;
    j["last_unix_nanos"] = t_last;
    j["pages_created"] = created;
    j["pages_freed"] = freed;
    j["page_bytes_created"] = page_bytes;
    j["delta_changed_bytes"] = changed;
    j["records"] = nlohmann::json::object();
    for (const auto& [name, c] : by_type)
      j["records"][name] = {{"count", c.records}, {"bytes", c.bytes}};
    j["checkpoints"] = nlohmann::json::array();
    for (const auto& [ep, n] : checkpoints)
      j["checkpoints"].push_back({{"epoch", ep}, {"file", n}});
    j["problems"] = nlohmann::json::array();
    for (const LogProblem& p : r->problems()) j["problems"].push_back(ProblemJson(p));
    if (!failure.ok()) j["error"] = failure.ToString();
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    const Palette pal(ColorStdout());
    std::printf("%s %s\n", pal.Bold("log").c_str(), a.path.c_str());
    std::printf("  segments      %zu, %s\n", r->files().size(),
                FormatBytes(r->total_bytes()).c_str());
    std::printf("  epochs        %llu..%llu (%llu commits)\n",
                static_cast<unsigned long long>(first), static_cast<unsigned long long>(last),
                static_cast<unsigned long long>(commits));
    std::printf("  time          %s .. %s\n", FormatUnixNanos(t_first).c_str(),
                FormatUnixNanos(t_last).c_str());
    std::printf("  pages         %llu created (%s), %llu freed\n",
                static_cast<unsigned long long>(created), FormatBytes(page_bytes).c_str(),
                static_cast<unsigned long long>(freed));
    std::printf("  changed bytes %llu in deltas\n", static_cast<unsigned long long>(changed));
    std::printf("  records\n");
    for (const auto& [name, c] : by_type) {
      std::printf("    %-16s %10llu  %s\n", name.c_str(),
                  static_cast<unsigned long long>(c.records), FormatBytes(c.bytes).c_str());
    }
    std::printf("  checkpoints   %zu\n", checkpoints.size());
    for (const auto& [ep, n] : checkpoints)
      std::printf("    epoch %llu  %s\n", static_cast<unsigned long long>(ep), n.c_str());
    PrintProblems(stderr, r->problems(), pal);
  }
  if (!failure.ok()) return FailLog(failure, a.salvage);
  return a.json ? FailProblems(a.path, r->problems()) : HasErrors(r->problems());
}

// Replays the whole log (every record decoded and applied, every group checked), and checks each
// checkpoint against the replayed state at its epoch.
int Verify(const LogArgs& a) {
  ReplayOptions o;
  o.mode = a.salvage ? RecoveryMode::kSalvage : RecoveryMode::kStrict;
  o.use_checkpoints = false;
  Progress progress(a.path, a.quiet || a.json);
  o.progress = progress.Callback();
  // Every failure is a verdict: with --json it is JSON too.
  auto fail_open = [&](const Status& s, bool hint) {
    if (a.json) {
      nlohmann::json j;
      j["format"] = "mmsb.log-verify/1";
      j["ok"] = false;
      j["error"] = s.ToString();
      j["problems"] = nlohmann::json::array();
      std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    }
    return hint ? FailLog(s, a.salvage) : Fail(s.ToString());
  };
  if (Status s = CheckLogPath(a.path); !s.ok()) return fail_open(s, false);
  auto r = Replayer::Open(a.path, o);
  if (!r.ok() && r.status().code() == StatusCode::kNotFound) {
    o.use_checkpoints = true;  // the early segments were retired: start at the oldest checkpoint
    r = Replayer::Open(a.path, o);
  }
  if (!r.ok()) return fail_open(r.status(), true);
  std::vector<std::pair<Epoch, std::string>> checkpoints;
  for (auto& [ep, n] : CheckpointFiles(a.path)) checkpoints.push_back({ep, JoinPath(a.path, n)});
  std::vector<LogProblem> extra;
  Status failure;
  int verified = 0;
  for (const auto& [ep, file] : checkpoints) {
    auto st = LoadCheckpoint(file);
    if (!st.ok()) {
      extra.push_back({LogProblem::Kind::kCorruption, file, 0, 0, ep, st.status().message()});
      continue;
    }
    if (ep < (*r)->state().epoch) continue;  // replay started from it
    auto reached = (*r)->AdvanceTo(ep);
    if (!reached.ok()) {
      failure = reached.status();
      break;
    }
    const LogState& live = (*r)->state();
    bool same = live.epoch == ep && live.pages.size() == st->pages.size() &&
                live.edges.size() == st->edges.size();
    for (auto it = live.pages.begin(); same && it != live.pages.end(); ++it) {
      const ReplayedPage* c = st->FindPage(it->first);
      same = c != nullptr && c->bytes == it->second.bytes;
    }
    if (!same) {
      extra.push_back({LogProblem::Kind::kInconsistent, file, 0, 0, ep,
                       "checkpoint differs from the replayed state at its epoch"});
    } else {
      ++verified;
    }
  }
  if (failure.ok()) {
    auto reached = (*r)->AdvanceTo(kLatestEpoch);
    if (!reached.ok()) failure = reached.status();
  }
  const ReplayReport& rep = (*r)->report();
  std::vector<LogProblem> problems = rep.problems;
  problems.insert(problems.end(), extra.begin(), extra.end());
  const bool errors =
      !failure.ok() || std::any_of(problems.begin(), problems.end(),
                                   [](const LogProblem& p) { return p.is_error(); });
  if (a.json) {
    nlohmann::json j;
    j["format"] = "mmsb.log-verify/1";
    j["ok"] = !errors;
    j["epoch"] = rep.epoch;
    j["epochs_applied"] = rep.epochs_applied;
    j["epochs_dropped"] = rep.epochs_dropped;
    j["records"] = rep.records;
    j["deltas_applied"] = rep.deltas_applied;
    j["deltas_recomputed"] = rep.deltas_recomputed;
    j["unknown_records"] = rep.unknown_records;
    j["bytes_read"] = rep.bytes_read;
    j["checkpoints_verified"] = verified;
    j["state_xxh3"] = fmt::format("{:016x}", (*r)->state().Hash());
    j["problems"] = nlohmann::json::array();
    for (const LogProblem& p : problems) j["problems"].push_back(ProblemJson(p));
    if (!failure.ok()) j["error"] = failure.ToString();
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    if (!failure.ok()) return Fail(a.path + ": " + failure.ToString());
    return FailProblems(a.path, problems);
  }
  const Palette pal(ColorStdout());
  PrintProblems(stdout, problems, pal);
  if (!failure.ok()) {
    std::printf("%s: %s\n", pal.Red("error").c_str(), failure.ToString().c_str());
  }
  const std::string recomputed = rep.deltas_recomputed == 0
                                     ? std::string()
                                     : fmt::format(" (and {} recomputed)", rep.deltas_recomputed);
  std::printf(
      "%s %s: %llu epochs applied (to epoch %llu), %llu dropped, %llu records, %llu deltas%s, %d "
      "checkpoint(s) verified, %s read\n",
      errors ? pal.Red("FAILED").c_str() : pal.Green("OK").c_str(), a.path.c_str(),
      static_cast<unsigned long long>(rep.epochs_applied),
      static_cast<unsigned long long>(rep.epoch),
      static_cast<unsigned long long>(rep.epochs_dropped),
      static_cast<unsigned long long>(rep.records),
      static_cast<unsigned long long>(rep.deltas_applied), recomputed.c_str(), verified,
      FormatBytes(rep.bytes_read).c_str());
  // The verdict on stderr too, in one line, for scripts that only look there.
  if (!failure.ok()) return Fail(a.path + ": " + failure.ToString());
  return FailProblems(a.path, problems);
}

int Compact(const LogArgs& a) {
  if (a.keep < 1) {
    Fail(fmt::format("--keep: {} checkpoints; at least one is always kept", a.keep));
    return 2;
  }
  RetentionPolicy policy;
  policy.keep_checkpoints = static_cast<std::size_t>(a.keep);
  if (!a.max_bytes.empty() && !ParseBytes(a.max_bytes, &policy.max_bytes)) {
    Fail(fmt::format("--max-bytes: '{}' is not a size (bytes, or a number with K, M, G or T)",
                     a.max_bytes));
    return 2;
  }
  if (!a.max_age.empty()) {
    if (!ParseDuration(a.max_age, &policy.max_age)) {
      Fail(fmt::format(
          "--max-age: '{}' is not a duration (a positive number of seconds, or with s, m, h or d)",
          a.max_age));
      return 2;
    }
    // An age budget alone keeps every checkpoint younger than it.
    if (!a.keep_given) policy.keep_checkpoints = std::numeric_limits<std::size_t>::max();
  }
  if (int rc = CheckLogInput(a.path)) return rc;
  auto r = CompactLog(a.path, policy);
  if (!r.ok()) return Fail(r.status().ToString());
  if (a.json) {
    nlohmann::json j;
    j["format"] = "mmsb.log-compact/1";
    j["checkpoints_removed"] = r->checkpoints_removed;
    j["segments_removed"] = r->segments_removed;
    j["bytes_before"] = r->bytes_before;
    j["bytes_after"] = r->bytes_after;
    j["oldest_epoch"] = r->oldest_checkpoint;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf(
      "%s: removed %llu checkpoint(s) and %llu segment(s), %s -> %s; replayable from epoch %llu\n",
      a.path.c_str(), static_cast<unsigned long long>(r->checkpoints_removed),
      static_cast<unsigned long long>(r->segments_removed), FormatBytes(r->bytes_before).c_str(),
      FormatBytes(r->bytes_after).c_str(), static_cast<unsigned long long>(r->oldest_checkpoint));
  return 0;
}

void AddLog(CLI::App& app) {
  CLI::App* log = app.add_subcommand("log", "inspect a transaction log");
  log->require_subcommand(1);
  static LogArgs a;
  auto common = [](CLI::App* sub) {
    sub->add_option("log", a.path, "log directory, segment or checkpoint file")->required();
    sub->add_flag("--json", a.json,
                  "machine-readable output (docs/SerializationSpec.md, CLI JSON)");
    sub->add_flag("--salvage", a.salvage, "skip damaged records instead of stopping at the first");
  };
  CLI::App* show =
      log->add_subcommand("show", "list the records with file, offset, epoch and content");
  common(show);
  show->add_option("--from-epoch", a.from_epoch, "first epoch to list")->check(NonEmpty());
  show->add_option("--to-epoch", a.to_epoch, "last epoch to list")->check(NonEmpty());
  show->add_option("--type", a.type, "only records of this type (delta, commit, page-create, ...)")
      ->check(NonEmpty());
  show->add_option("--limit", a.limit, "list at most this many records (0: all)");
  SetAction(show, [] { return Show(a); });
  CLI::App* verify =
      log->add_subcommand("verify", "check every record, replay every epoch, check checkpoints");
  common(verify);
  verify->add_flag("-q,--quiet", a.quiet, "no progress on stderr");
  SetAction(verify, [] { return Verify(a); });
  CLI::App* stats = log->add_subcommand("stats", "records, bytes, epochs, pages and checkpoints");
  common(stats);
  SetAction(stats, [] { return Stats(a); });
  CLI::App* compact = log->add_subcommand(
      "compact", "apply a retention policy: drop old checkpoints and the segments behind them");
  compact->add_option("log", a.path, "log directory")->required();
  compact->add_option("--keep", a.keep, "checkpoints to keep, newest first (default 2)")
      ->each([](const std::string&) { a.keep_given = true; });
  compact
      ->add_option("--max-bytes", a.max_bytes,
                   "keep fewer checkpoints (at least one) while the log is larger (e.g. 1G)")
      ->check(NonEmpty());
  compact
      ->add_option("--max-age", a.max_age,
                   "keep fewer checkpoints (at least one) while the oldest kept is older "
                   "(e.g. 7d, 12h, 30m; alone: every younger checkpoint is kept)")
      ->check(NonEmpty());
  compact->add_flag("--json", a.json, "machine-readable output");
  SetAction(compact, [] { return Compact(a); });
}

const CommandRegistrar kRegistrar(AddLog);

}  // namespace
}  // namespace mmsb::cli
