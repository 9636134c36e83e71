// Support for the programs tests/fidelity/fidelity.py generates. A generated program is built
// twice from one source: with the MMSB plugin (commit points are mmsb::commit(), the run writes a
// log), and plain with FIDELITY_PLAIN defined (commit points print the bytes of every page: the
// ground truth). fidelity.py replays the log and compares the state at every epoch with the
// plain build's.
//
// The generator may include this header as a system header (-isystem), the way the installed
// package's mmsb_instrument() sees MMSB's headers: a loop mark must not assume that a call into
// it cannot commit. Generated functions may start threads: threads that commit at a quiescent
// point, threads that each run their own transactions on their own page, threads that write a
// shared page under a std::mutex. A worker thread declares a fid::Worker: its transactions'
// commits are not dumps of the plain build (their order between threads is not deterministic),
// and fidelity.py compares such programs at the main thread's commits only (see Dump).
//
// FIDELITY_SELF_DUMP: the instrumented build also prints the live bytes of every page at each
// of its commit points (before committing), so that one compile gives both the ground truth and
// the log (fidelity.py --oracle self); the plain build still checks the rewrite's semantics.
#pragma once

#include <cstddef>
#include <cstdio>
#include <span>

#ifndef FIDELITY_PLAIN
#include <mmsb/log.h>
#include <mmsb/mmsb.h>
#endif

namespace fid {

struct TrackedPage {
  const char* name;
  const void* addr;
  std::size_t size;
};
inline TrackedPage g_pages[32];
inline int g_page_count = 0;
inline thread_local int g_tx_depth = 0;
inline thread_local bool g_worker = false;

// Declared first in a function that worker threads run (the main thread may run it too).
struct Worker {
  Worker() : was_(g_worker) { g_worker = true; }
  ~Worker() { g_worker = was_; }
  bool was_;
};

// `addr` is a static page named `name` (its mangled name: the name it has in the log).
inline void Track(const char* name, const void* addr, std::size_t size) {
  g_pages[g_page_count++] = {name, addr, size};
}

// `addr` is a page object on the heap (`new S()`), tracked under `name`. A heap page has no name
// in the log, only an id: the instrumented build says where the object lies, on standard error,
// as "fid-heap NAME PAGE_ID OFFSET SIZE" ("fid-heap NAME none" when no page holds it, which
// fidelity.py reports as a failure), and fidelity.py hands that to fidelity_replay.
inline void TrackHeap(const char* name, const void* addr, std::size_t size) {
  Track(name, addr, size);
#ifndef FIDELITY_PLAIN
  const mmsb::Page* page = mmsb::PageOf(addr);
  if (page == nullptr) {
    std::fprintf(stderr, "fid-heap %s none\n", name);
    return;
  }
  std::fprintf(
      stderr, "fid-heap %s %llu %zu %zu\n", name, static_cast<unsigned long long>(page->id()),
      static_cast<std::size_t>(static_cast<const unsigned char*>(addr) - page->data()), size);
#endif
}

#if defined(FIDELITY_PLAIN) || defined(FIDELITY_SELF_DUMP)
inline unsigned long g_epoch = 0;
// The format fidelity_replay prints for each epoch of a log. Only the main thread dumps.
inline void Dump() {
  if (g_worker) return;
  std::printf("epoch %lu\n", ++g_epoch);
  for (int i = 0; i < g_page_count; ++i) {
    std::printf("%s ", g_pages[i].name);
    const auto* b = static_cast<const unsigned char*>(g_pages[i].addr);
    for (std::size_t k = 0; k < g_pages[i].size; ++k) std::printf("%02x", b[k]);
    std::printf("\n");
  }
  std::fflush(stdout);
}
#else
inline void Dump() {}
#endif

#ifdef FIDELITY_PLAIN
inline void CommitPoint() { Dump(); }
// A commit while other threads run: no state of the plain build corresponds to it.
inline void ConcurrentCommit() {}
// Declared first in every [[mmsb::transaction]] function: the plain build's commit at its exit.
// (In the instrumented build its destructor runs before the transaction's commit.)
struct Tx {
  Tx() { ++g_tx_depth; }
  ~Tx() {
    if (--g_tx_depth == 0) Dump();
  }
};
inline int Start(const char*) { return 0; }
inline int Finish() { return 0; }
#else
inline void CommitPoint() {
  Dump();
  (void)mmsb::commit();
}
inline void ConcurrentCommit() { (void)mmsb::commit(); }
struct Tx {
  Tx() { ++g_tx_depth; }
  ~Tx() {
    if (--g_tx_depth == 0) Dump();
  }
};
inline int Start(const char* log_dir) {
  auto log = mmsb::AttachLog(log_dir);
  if (!log.ok()) {
    std::fprintf(stderr, "fidelity: cannot open the log: %s\n", log.status().ToString().c_str());
    return 1;
  }
  static auto keep = *log;
  return 0;
}
inline int Finish() {
  mmsb::stop();
  return 0;
}
#endif

// Storage outside the pages that generated code calls into: not instrumented when this header
// is a system header.
struct Acc {
  long sum;
  int count;
  void Add(int v) {
    sum += v;
    ++count;
  }
};

// A third-party type (in a system header when this header is one, as a library installed under
// -isystem is): some member functions keep the object's address, or a member's, beyond the call,
// and generated code writes through it later. A held mark covers the call only, so the rewriter
// must see that from the body and escape the page (PluginGuide, "Held marks"); a system header
// is no proof that a callee keeps nothing.
struct Hook;
inline Hook* g_hook = nullptr;
inline int* g_cursor = nullptr;
inline std::span<int> g_view;
inline void* g_ring = nullptr;
struct Hook {
  int v[4];
  void Attach() { g_hook = this; }
  void Expose() { g_cursor = v + 1; }
  void View() { g_view = std::span<int>(v); }
  // Keeps nothing: a held mark suffices.
  void Set(int k, int x) { v[k & 3] = x; }
};
template <class T>
struct Ring {
  T buf[8];
  int head;
  void Push(T x) {
    buf[head & 7] = x;
    ++head;
  }
  void Share() { g_ring = this; }
};

}  // namespace fid
