// `mmsb replay <log> --epoch N [--out DIR | --json]`: rebuild the state of an epoch.
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "mmsb/replay.h"

#include "command.h"
#include "log_cli.h"

namespace mmsb::cli {
namespace {

struct ReplayArgs {
  std::string path;
  std::string epoch;
  std::string out;
  bool json = false;
  bool with_bytes = false;
  bool salvage = false;
  bool quiet = false;
};

Status WriteFile(const std::string& path, const void* data, std::size_t n) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return IOError(fmt::format("cannot create '{}'", path));
  const bool ok = std::fwrite(data, 1, n, f) == n;
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) return IOError(fmt::format("cannot write '{}'", path));
  return Status::Ok();
}

// Where --out may go: a new directory, or an empty one. A non-empty directory is refused, so no
// page file of an earlier replay survives next to a manifest that does not list it.
int CheckOutDir(const std::string& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(out, ec);
  if (!fs::exists(st)) return 0;
  if (!fs::is_directory(st))
    return Fail(fmt::format("--out '{}' exists and is not a directory", out));
  if (!fs::is_empty(out, ec) || ec) {
    return Fail(fmt::format(
        "--out '{}' is not empty; give a new or empty directory (files of an earlier replay would "
        "mix with this one)",
        out));
  }
  return 0;
}

// Writes the pages and the manifest into a fresh sibling directory, then renames it to `out`
// (over an empty directory), so `out` never holds a partial or mixed replay.
int WriteOut(const std::string& out, const LogState& st, const ReplayReport& rep) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path target = fs::path(out).lexically_normal();
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string tmp =
      (parent / fmt::format(".{}.tmp-{}", target.filename().string(), ::getpid())).string();
  fs::remove_all(tmp, ec);
  auto cleanup = [&](const std::string& why) {
    fs::remove_all(tmp, ec);
    return Fail(why);
  };
  if (::mkdir(tmp.c_str(), 0755) != 0)
    return Fail(fmt::format("cannot create directory '{}': {}", tmp, std::strerror(errno)));
  const std::string pages = JoinPath(tmp, "pages");
  if (::mkdir(pages.c_str(), 0755) != 0)
    return cleanup(fmt::format("cannot create directory '{}'", pages));
  for (const auto& [id, p] : st.pages) {
    if (Status s =
            WriteFile(JoinPath(pages, fmt::format("{}.bin", id)), p.bytes.data(), p.bytes.size());
        !s.ok()) {
      return cleanup(s.ToString());
    }
  }
  const std::string manifest = LogStateToJson(st, &rep, false) + "\n";
  if (Status s = WriteFile(JoinPath(tmp, "manifest.json"), manifest.data(), manifest.size());
      !s.ok()) {
    return cleanup(s.ToString());
  }
  if (::rename(tmp.c_str(), out.c_str()) != 0) {
    return cleanup(fmt::format("cannot move the replay into '{}': {}", out, std::strerror(errno)));
  }
  return 0;
}

int Run(const ReplayArgs& a) {
  Epoch epoch = 0;
  if (int rc = EpochFlag("--epoch", a.epoch, true, &epoch)) return rc;
  if (a.json && !a.out.empty()) {
    Fail("--json and --out are alternatives");
    return 2;
  }
  if (a.with_bytes && !a.json) {
    Fail("--with-bytes only goes with --json");
    return 2;
  }
  if (int rc = CheckLogInput(a.path)) return rc;
  if (!a.out.empty()) {
    if (int rc = CheckOutDir(a.out)) return rc;
  }
  ReplayOptions o;
  o.epoch = epoch;
  o.mode = a.salvage ? RecoveryMode::kSalvage : RecoveryMode::kStrict;
  Progress progress(a.path, a.quiet);
  o.progress = progress.Callback();
  ReplayReport rep;
  auto st = Replay(a.path, o, &rep);
  const Palette pal(!a.json && ColorStdout());
  if (!st.ok()) {
    PrintProblems(stderr, rep.problems, Palette(false));
    return FailLog(st.status(), a.salvage);
  }
  if (a.json) {
    std::printf("%s\n", LogStateToJson(*st, &rep, a.with_bytes).c_str());
    return rep.has_errors() ? FailProblems(a.path, rep.problems) : 0;
  }
  PrintProblems(stderr, rep.problems, pal);
  if (!a.out.empty()) {
    if (int rc = WriteOut(a.out, *st, rep)) return rc;
    std::printf(
        "epoch %llu: %zu pages written to %s/pages/<id>.bin, metadata in %s/manifest.json\n",
        static_cast<unsigned long long>(st->epoch), st->pages.size(), a.out.c_str(), a.out.c_str());
    return rep.has_errors() ? 1 : 0;
  }
  std::printf("%s %llu (%s)%s\n", pal.Bold("epoch").c_str(),
              static_cast<unsigned long long>(st->epoch), FormatUnixNanos(st->unix_nanos).c_str(),
              rep.checkpoint_epoch
                  ? fmt::format(", from checkpoint of epoch {}", rep.checkpoint_epoch).c_str()
                  : "");
  std::printf("%-8s %-10s %-8s %-6s %-18s %s\n", "page", "size", "epoch", "where", "xxh3",
              "name / type");
  for (const auto& [id, p] : st->pages) {
    std::string label = p.name;
    if (!p.type_name.empty()) label += (label.empty() ? "" : " ") + pal.Cyan(p.type_name);
    std::printf("%-8llu %-10zu %-8llu %-6s %016llx  %s\n", static_cast<unsigned long long>(id),
                p.bytes.size(), static_cast<unsigned long long>(p.epoch), LocationName(p.location),
                static_cast<unsigned long long>(XXH3_64bits(p.bytes.data(), p.bytes.size())),
                label.c_str());
  }
  std::printf("%zu pages, %s, %zu edges, state xxh3 %016llx\n", st->pages.size(),
              FormatBytes(st->PageBytes()).c_str(), st->edges.size(),
              static_cast<unsigned long long>(st->Hash()));
  return rep.has_errors() ? 1 : 0;
}

void AddReplay(CLI::App& app) {
  static ReplayArgs a;
  CLI::App* sub = app.add_subcommand("replay", "rebuild the exact state of an epoch from a log");
  sub->add_option("log", a.path, "log directory, segment or checkpoint file")->required();
  sub->add_option("--epoch", a.epoch, "the epoch to rebuild (a number, or 'latest')")->required();
  sub->add_option("--out", a.out,
                  "write each page's bytes to DIR/pages/<id>.bin and DIR/manifest.json (DIR must "
                  "be new or empty)")
      ->check(NonEmpty());
  sub->add_flag("--json", a.json, "print the state as JSON (docs/SerializationSpec.md, CLI JSON)");
  sub->add_flag("--with-bytes", a.with_bytes, "with --json: include each page's bytes as hex");
  sub->add_flag("--salvage", a.salvage, "skip damaged epochs instead of stopping");
  sub->add_flag("-q,--quiet", a.quiet, "no progress on stderr");
  SetAction(sub, [] { return Run(a); });
}

const CommandRegistrar kRegistrar(AddReplay);

}  // namespace
}  // namespace mmsb::cli
