// Subcommand registry for the `mmsb` CLI.
//
// Each tools/cmd_*.cc file registers its subcommands with a file-scope CommandRegistrar, so the
// CLI grows by adding a file. Commands are thin: parse flags, call a library, print. All logic
// lives in the libraries the tests link too.
//
// A command's callback returns the process exit code: 0 success, 1 a reported error (bad input,
// corrupt file), 2 a usage error.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace mmsb::cli {

// Adds subcommands to `app` and stores the action to run when one of them was parsed.
using AddCommandsFn = void (*)(CLI::App& app);

struct CommandRegistrar {
  explicit CommandRegistrar(AddCommandsFn fn);
};

// Registers the action of a subcommand: runs after parsing, returns the exit code.
void SetAction(CLI::App* sub, std::function<int()> action);

// True when stdout is a terminal and NO_COLOR is unset (colour only goes to a TTY).
bool ColorStdout();

// Rejects an empty value: `--type ""` names nothing, it must not mean "no filter".
const CLI::Validator& NonEmpty();

// Prints "mmsb: error: <message>" to stderr and returns 1.
int Fail(const std::string& message);

}  // namespace mmsb::cli
