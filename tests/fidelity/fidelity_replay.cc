// fidelity_replay LOG_DIR NAME...: replays a log epoch by epoch and prints, for each committed
// epoch, the bytes of the named static pages in the format of fidelity_support.h's Dump(), so
// that fidelity.py can compare a normal run's log with the plain build's state at every commit.
#include <cstdio>
#include <string>
#include <vector>

#include "mmsb/replay.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: fidelity_replay LOG_DIR PAGE_NAME...\n");
    return 2;
  }
  auto replayer = mmsb::Replayer::Open(argv[1]);
  if (!replayer.ok()) {
    std::fprintf(stderr, "fidelity_replay: %s\n", replayer.status().ToString().c_str());
    return 1;
  }
  const std::vector<std::string> names(argv + 2, argv + argc);
  while (true) {
    auto more = (*replayer)->Step();
    if (!more.ok()) {
      std::fprintf(stderr, "fidelity_replay: %s\n", more.status().ToString().c_str());
      return 1;
    }
    if (!*more) break;
    const mmsb::LogState& state = (*replayer)->state();
    std::printf("epoch %llu\n", static_cast<unsigned long long>(state.epoch));
    for (const std::string& name : names) {
      std::printf("%s ", name.c_str());
      if (const mmsb::ReplayedPage* page = state.FindPageByName(name)) {
        for (unsigned char b : page->bytes) std::printf("%02x", b);
      } else {
        std::printf("(missing)");
      }
      std::printf("\n");
    }
  }
  return 0;
}
