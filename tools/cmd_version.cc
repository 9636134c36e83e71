// `mmsb version`: prints the versions of the CLI and the runtime library it links.
#include <cstdio>

#include "mmsb/mmsb.h"

#include "command.h"

namespace mmsb::cli {
namespace {

void AddVersion(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("version", "print the version of mmsb and its runtime");
  SetAction(sub, [] {
    std::printf("mmsb %s (runtime delta SIMD target: %s)\n", MMSB_VERSION, DiffTargetName());
    return 0;
  });
}

const CommandRegistrar kRegistrar(AddVersion);

}  // namespace
}  // namespace mmsb::cli
