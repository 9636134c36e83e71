// Runs the built `mmsb` binary as a user would, for the CLI tests (cli_test, cli_bad_input_test,
// query_cli_test): exit code, stdout and stderr, captured separately.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#ifndef MMSB_CLI_PATH
#error "MMSB_CLI_PATH must name the mmsb binary"
#endif

namespace mmsb::testing {

struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs the CLI with `args` (shell words); its stderr goes through a file in `dir`.
inline CliRun Mmsb(const std::string& args, const std::string& dir) {
  const std::string err_file = dir + "/stderr.txt";
  const std::string cmd = std::string(MMSB_CLI_PATH) + " " + args + " 2>" + err_file;
  CliRun r;
  std::FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream e(err_file);
  std::stringstream ss;
  ss << e.rdbuf();
  r.err = ss.str();
  return r;
}

}  // namespace mmsb::testing
