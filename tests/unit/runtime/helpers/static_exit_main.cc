// A program that uses MMSB from static destructors and atexit handlers, on both sides of the
// runtime's own exit handler (registered by start()). Run by static_destruction_test.cc, which
// checks its exit status and replays its log.
//
//   static_exit_main DIR flush   every late commit lands in the log: bytes 0..4 = 1..5
//   static_exit_main DIR close   a global destructor closes the log first; later commits still
//                                work, unlogged
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "mmsb/mmsb.h"

namespace {

alignas(64) std::uint8_t g_state[256];  // a static page once registered
mmsb::Page* g_page = nullptr;

void Write(int index, std::uint8_t value, const char* who) {
  mmsb::rt::ws(&g_state[index]) = value;  // store, then mark
  auto e = mmsb::commit();
  if (!e.ok()) {
    std::fprintf(stderr, "%s: commit failed: %s\n", who, e.status().ToString().c_str());
    std::_Exit(3);
  }
}

struct Guard {
  int index;
  std::uint8_t value;
  const char* who;
  ~Guard() { Write(index, value, who); }
};

// Constructed before main (before start()): destroyed after the runtime's exit handler ran.
Guard g_early_guard{3, 4, "global destructor after the exit handler"};

struct SinkCloser {
  std::shared_ptr<mmsb::LogSink> sink;
  ~SinkCloser() {
    if (sink) {
      if (mmsb::Status s = sink->Close(); !s.ok()) {
        std::fprintf(stderr, "close failed: %s\n", s.ToString().c_str());
        std::_Exit(4);
      }
    }
  }
};
// Declared after g_early_guard: destroyed before it.
SinkCloser g_closer;

struct EarlyHandler {
  EarlyHandler() {
    std::atexit([] { Write(4, 5, "atexit handler registered before start()"); });
  }
} g_early_handler;

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: static_exit_main DIR flush|close\n");
    return 2;
  }
  if (mmsb::Status s = mmsb::start(); !s.ok()) return 5;
  mmsb::LogOptions lo;
  lo.durability = mmsb::Durability::kNone;  // nothing reaches the file unless flushed
  auto sink = mmsb::AttachLog(argv[1], lo);
  if (!sink.ok()) {
    std::fprintf(stderr, "%s\n", sink.status().ToString().c_str());
    return 6;
  }
  if (std::strcmp(argv[2], "close") == 0) g_closer.sink = *sink;
  mmsb::PageOptions po;
  po.name = "g_state";
  auto page = mmsb::RegisterStaticPage(g_state, sizeof g_state, po);
  if (!page.ok()) return 7;
  g_page = *page;
  Write(0, 1, "main");
  std::atexit([] { Write(1, 2, "atexit handler registered after start()"); });
  // Constructed after start(): destroyed before the runtime's exit handler.
  static Guard late_guard{2, 3, "function-local static destructor"};
  return 0;
}
