// fidelity_replay LOG_DIR PAGE...: replays a log epoch by epoch and prints, for each committed
// epoch, the bytes of the named pages in the format of fidelity_support.h's Dump(), so that
// fidelity.py can compare a normal run's log with the plain build's state at every commit.
// PAGE is a static page's name, or NAME=ID+OFFSET:SIZE for an object on the heap (the log knows
// a heap page by its id only): SIZE bytes at OFFSET of page ID, printed under NAME.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mmsb/replay.h"

namespace {

struct Wanted {
  std::string name;
  bool by_id = false;
  mmsb::PageId id = mmsb::kInvalidPageId;
  std::size_t offset = 0;
  std::size_t size = 0;
};

bool Parse(const std::string& arg, Wanted* out) {
  out->name = arg;
  const auto eq = arg.find('=');
  if (eq == std::string::npos) return true;
  out->name = arg.substr(0, eq);
  unsigned long long id = 0;
  std::size_t offset = 0, size = 0;
  int used = 0;
  if (std::sscanf(arg.c_str() + eq + 1, "%llu+%zu:%zu%n", &id, &offset, &size, &used) != 3 ||
      static_cast<std::size_t>(used) != arg.size() - eq - 1) {
    return false;
  }
  out->by_id = true;
  out->id = id;
  out->offset = offset;
  out->size = size;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: fidelity_replay LOG_DIR PAGE_NAME|NAME=ID+OFFSET:SIZE...\n");
    return 2;
  }
  std::vector<Wanted> wanted(static_cast<std::size_t>(argc - 2));
  for (int i = 2; i < argc; ++i) {
    if (!Parse(argv[i], &wanted[static_cast<std::size_t>(i - 2)])) {
      std::fprintf(stderr, "fidelity_replay: '%s' is neither a page name nor NAME=ID+OFFSET:SIZE\n",
                   argv[i]);
      return 2;
    }
  }
  auto replayer = mmsb::Replayer::Open(argv[1]);
  if (!replayer.ok()) {
    std::fprintf(stderr, "fidelity_replay: %s\n", replayer.status().ToString().c_str());
    return 1;
  }
  while (true) {
    auto more = (*replayer)->Step();
    if (!more.ok()) {
      std::fprintf(stderr, "fidelity_replay: %s\n", more.status().ToString().c_str());
      return 1;
    }
    if (!*more) break;
    const mmsb::LogState& state = (*replayer)->state();
    std::printf("epoch %llu\n", static_cast<unsigned long long>(state.epoch));
    for (const Wanted& w : wanted) {
      std::printf("%s ", w.name.c_str());
      const mmsb::ReplayedPage* page =
          w.by_id ? state.FindPage(w.id) : state.FindPageByName(w.name);
      if (page == nullptr) {
        std::printf("(missing)");
      } else if (!w.by_id) {
        for (unsigned char b : page->bytes) std::printf("%02x", b);
      } else if (w.offset + w.size > page->bytes.size()) {
        std::printf("(page %llu has %zu bytes, not %zu+%zu)", static_cast<unsigned long long>(w.id),
                    page->bytes.size(), w.offset, w.size);
      } else {
        for (std::size_t k = 0; k < w.size; ++k) std::printf("%02x", page->bytes[w.offset + k]);
      }
      std::printf("\n");
    }
  }
  return 0;
}
