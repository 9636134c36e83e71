// mmsb: the command-line front end. Subcommands register themselves (see command.h).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

#include "command.h"

namespace mmsb::cli {
namespace {

std::vector<AddCommandsFn>& Registry() {
  static std::vector<AddCommandsFn> fns;
  return fns;
}

std::map<CLI::App*, std::function<int()>>& Actions() {
  static std::map<CLI::App*, std::function<int()>> actions;
  return actions;
}

// The deepest parsed subcommand with an action.
int RunParsed(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands()) {
    if (int rc = RunParsed(*sub); rc >= 0) return rc;
  }
  auto it = Actions().find(&app);
  if (it != Actions().end()) return it->second();
  return -1;
}

}  // namespace

CommandRegistrar::CommandRegistrar(AddCommandsFn fn) { Registry().push_back(fn); }

void SetAction(CLI::App* sub, std::function<int()> action) { Actions()[sub] = std::move(action); }

bool ColorStdout() {
  const char* no_color = std::getenv("NO_COLOR");
  return isatty(STDOUT_FILENO) && (no_color == nullptr || no_color[0] == '\0');
}

const CLI::Validator& NonEmpty() {
  static const CLI::Validator kNonEmpty(
      [](std::string& s) { return s.empty() ? std::string("an empty value names nothing") : ""; },
      "NONEMPTY");
  return kNonEmpty;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "mmsb: error: %s\n", message.c_str());
  return 1;
}

}  // namespace mmsb::cli

int main(int argc, char** argv) {
  CLI::App app{"mmsb: inspect MMSB transaction logs, replay epochs, and diff IR between builds"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("mmsb " MMSB_VERSION));
  for (auto fn : mmsb::cli::Registry()) fn(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, like every other error: what was wrong, and where the usage is.
    std::fprintf(stderr, "mmsb: error: %s (see mmsb --help)\n", e.what());
    return 2;
  }
  const int rc = mmsb::cli::RunParsed(app);
  return rc < 0 ? 2 : rc;
}
