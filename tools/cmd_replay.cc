// `mmsb replay <log> --epoch N [--out DIR | --json]`: rebuild the state of an epoch.
#include <sys/stat.h>
#include <xxhash.h>

#include <cstdio>

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

int Run(const ReplayArgs& a) {
  Epoch epoch = 0;
  if (!ParseEpoch(a.epoch, &epoch)) return Fail("--epoch: not an epoch: " + a.epoch);
  if (a.json && !a.out.empty()) return Fail("--json and --out are alternatives");
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
    return rep.has_errors() ? 1 : 0;
  }
  PrintProblems(stderr, rep.problems, pal);
  if (!a.out.empty()) {
    if (::mkdir(a.out.c_str(), 0755) != 0 && errno != EEXIST)
      return Fail(fmt::format("cannot create directory '{}'", a.out));
    const std::string pages = JoinPath(a.out, "pages");
    if (::mkdir(pages.c_str(), 0755) != 0 && errno != EEXIST)
      return Fail(fmt::format("cannot create directory '{}'", pages));
    for (const auto& [id, p] : st->pages) {
      if (Status s =
              WriteFile(JoinPath(pages, fmt::format("{}.bin", id)), p.bytes.data(), p.bytes.size());
          !s.ok()) {
        return Fail(s.ToString());
      }
    }
    const std::string manifest = LogStateToJson(*st, &rep, false) + "\n";
    if (Status s = WriteFile(JoinPath(a.out, "manifest.json"), manifest.data(), manifest.size());
        !s.ok()) {
      return Fail(s.ToString());
    }
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
                  "write each page's bytes to DIR/pages/<id>.bin and DIR/manifest.json");
  sub->add_flag("--json", a.json, "print the state as JSON (docs/SerializationSpec.md, CLI JSON)");
  sub->add_flag("--with-bytes", a.with_bytes, "with --json: include each page's bytes as hex");
  sub->add_flag("--salvage", a.salvage, "skip damaged epochs instead of stopping");
  sub->add_flag("-q,--quiet", a.quiet, "no progress on stderr");
  SetAction(sub, [] { return Run(a); });
}

const CommandRegistrar kRegistrar(AddReplay);

}  // namespace
}  // namespace mmsb::cli
