#include "log_cli.h"

#include <unistd.h>

#include <charconv>
#include <ctime>

#include <fmt/format.h>

#include "command.h"

namespace mmsb::cli {

std::string Palette::Wrap(const char* code, std::string_view s) const {
  if (!on_) return std::string(s);
  return fmt::format("\033[{}m{}\033[0m", code, s);
}

Progress::Progress(std::string what, bool quiet)
    : what_(std::move(what)), quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {
  start_ = last_ = std::chrono::steady_clock::now();
}

Progress::~Progress() {
  if (drawn_ && tty_) std::fprintf(stderr, "\r\033[K");
}

void Progress::Update(std::uint64_t done, std::uint64_t total) {
  if (quiet_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - start_ < std::chrono::milliseconds(500)) return;
  const auto every = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(5000);
  if (drawn_ && now - last_ < every) return;
  last_ = now;
  const double pct = total ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 0.0;
  const std::string line = fmt::format("replaying {}: {:.0f}% ({} of {})", what_, pct,
                                       FormatBytes(done), FormatBytes(total));
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
  drawn_ = true;
}

std::function<void(std::uint64_t, std::uint64_t)> Progress::Callback() {
  return [this](std::uint64_t done, std::uint64_t total) { Update(done, total); };
}

std::string FormatUnixNanos(std::uint64_t ns) {
  if (ns == 0) return "-";
  const std::time_t secs = static_cast<std::time_t>(ns / 1000000000u);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}Z", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     static_cast<int>(ns % 1000000000u / 1000000u));
}

std::string FormatBytes(std::uint64_t n) {
  if (n < 1024) return fmt::format("{} B", n);
  if (n < (1u << 20)) return fmt::format("{:.1f} KiB", static_cast<double>(n) / 1024);
  if (n < (1u << 30)) return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1 << 20));
  return fmt::format("{:.2f} GiB", static_cast<double>(n) / (1 << 30));
}

std::string ParseEpoch(const std::string& s, bool latest_ok, Epoch* out) {
  if (s == "latest") {
    if (!latest_ok) return "'latest' is not accepted here; give an epoch number";
    *out = kLatestEpoch;
    return "";
  }
  const bool digits = !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
  Epoch v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (!digits || r.ptr != s.data() + s.size()) {
    return fmt::format("'{}' is not an epoch (a decimal number{})", s,
                       latest_ok ? " or 'latest'" : "");
  }
  if (r.ec == std::errc::result_out_of_range || v == kLatestEpoch) {
    return fmt::format("'{}' is out of range (the largest epoch is {})", s, kLatestEpoch - 1);
  }
  *out = v;
  return "";
}

int EpochFlag(const char* flag, const std::string& s, bool latest_ok, Epoch* out) {
  const std::string why = ParseEpoch(s, latest_ok, out);
  if (why.empty()) return 0;
  Fail(fmt::format("{}: {}", flag, why));
  return 2;
}

int CheckLogInput(const std::string& path) {
  const Status s = CheckLogPath(path);
  return s.ok() ? 0 : Fail(s.ToString());
}

nlohmann::json ProblemJson(const LogProblem& p) {
  return {{"kind", LogProblemKindName(p.kind)},
          {"error", p.is_error()},
          {"file", p.file},
          {"offset", p.offset},
          {"length", p.length},
          {"epoch", p.epoch},
          {"message", p.message}};
}

void PrintProblems(std::FILE* out, const std::vector<LogProblem>& problems, const Palette& pal) {
  for (const LogProblem& p : problems) {
    const std::string tag = p.is_error() ? pal.Red("error") : pal.Yellow("warning");
    std::fprintf(out, "%s: %s\n", tag.c_str(), p.ToString().c_str());
  }
}

int FailProblems(const std::string& what, const std::vector<LogProblem>& problems) {
  std::size_t errors = 0;
  const LogProblem* first = nullptr;
  for (const LogProblem& p : problems) {
    if (!p.is_error()) continue;
    if (first == nullptr) first = &p;
    ++errors;
  }
  if (first == nullptr) return 0;
  return Fail(fmt::format("{}: {} problem(s), first: {}", what, errors, first->ToString()));
}

int FailLog(const Status& s, bool salvage) {
  Fail(s.ToString());
  if (s.code() == StatusCode::kCorruption && !salvage) {
    std::fprintf(stderr,
                 "mmsb: hint: the log is damaged; run again with --salvage to skip the damaged "
                 "epochs (they are reported, never applied)\n");
  }
  return 1;
}

}  // namespace mmsb::cli
