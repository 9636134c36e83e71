// Presentation helpers shared by the log, replay and diff subcommands: colour (only on a TTY),
// progress on stderr for long replays, times, and the JSON form of log problems.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mmsb/log.h"
#include "mmsb/replay.h"

namespace mmsb::cli {

// ANSI colour when enabled, nothing otherwise.
class Palette {
 public:
  explicit Palette(bool on) : on_(on) {}
  std::string Bold(std::string_view s) const { return Wrap("1", s); }
  std::string Dim(std::string_view s) const { return Wrap("2", s); }
  std::string Red(std::string_view s) const { return Wrap("31", s); }
  std::string Green(std::string_view s) const { return Wrap("32", s); }
  std::string Yellow(std::string_view s) const { return Wrap("33", s); }
  std::string Cyan(std::string_view s) const { return Wrap("36", s); }

 private:
  std::string Wrap(const char* code, std::string_view s) const;
  bool on_;
};

// Prints "replaying <what>: 45% (120 MiB of 260 MiB)" to stderr once a replay has run for half a
// second: redrawn in place on a terminal, a line every five seconds otherwise. Silent when quiet.
class Progress {
 public:
  Progress(std::string what, bool quiet);
  ~Progress();  // clears the line on a terminal
  void Update(std::uint64_t done, std::uint64_t total);
  // A callback for ReplayOptions::progress that forwards here.
  std::function<void(std::uint64_t, std::uint64_t)> Callback();

 private:
  std::string what_;
  bool quiet_;
  bool tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
};

// "2026-11-24T22:48:52.123Z"; "-" for 0.
std::string FormatUnixNanos(std::uint64_t ns);
// "1.2 MiB"
std::string FormatBytes(std::uint64_t n);
// The one epoch parser of every command. An epoch is a decimal number below 2^64-1 (the all-ones
// value is the library's "latest" marker, never an epoch), or "latest" where `latest_ok`.
// Returns "" on success, else why `s` is not an epoch.
std::string ParseEpoch(const std::string& s, bool latest_ok, Epoch* out);
// ParseEpoch for a flag: on failure prints "mmsb: error: <flag>: ..." and returns the usage exit
// code 2; returns 0 on success.
int EpochFlag(const char* flag, const std::string& s, bool latest_ok, Epoch* out);

// Checks that `path` can be read as a log (CheckLogPath) and prints what it is not when it
// cannot. Returns 0, or the exit code 1 after printing one line.
int CheckLogInput(const std::string& path);

// Reports a failed log operation; for damage found in strict mode it adds how to go on
// (--salvage). Returns the exit code 1.
int FailLog(const Status& s, bool salvage);

// For an answer given despite damage (salvage, or problems found on the way): one line on stderr,
// "mmsb: error: <what>: N problem(s), first: <problem>", and the exit code 1.
int FailProblems(const std::string& what, const std::vector<LogProblem>& problems);

nlohmann::json ProblemJson(const LogProblem& p);
// Prints problems (errors red, warnings yellow) to `out`, one per line.
void PrintProblems(std::FILE* out, const std::vector<LogProblem>& problems, const Palette& pal);

}  // namespace mmsb::cli
