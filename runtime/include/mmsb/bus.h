// The process-wide state bus: its lifecycle (start, stop) and its epochs (commit).
//
// mmsb::start(options) reserves the arena and shadow maps; mmsb::stop() frees every page and
// releases them. mmsb::commit() ends an epoch: every byte changed in any page since the previous
// commit becomes part of an exact delta, which is handed to the registered stages and sinks.
//
// Thread-safety: start/stop must not race with any other MMSB call. commit() may be called from
// any thread at any time, while other threads store to pages and run transactions; concurrent
// commits serialise. The contract (docs/API.md, "Threads"): a commit's cut is the start of its
// diff. A store is logged no later than the first commit whose cut it happens-before, and never in
// a commit that happens-before it; a store concurrent with a commit may be in it (the next epoch
// then holds the final bytes). A transaction's stores share one epoch whatever thread commits
// (mmsb/instrument.h, TransactionScope); commit() inside a transaction is FailedPrecondition.
#pragma once

#include <cstddef>
#include <functional>
#include <source_location>

#include "mmsb/commit.h"
#include "mmsb/status.h"
#include "mmsb/types.h"

namespace mmsb {

struct Options {
  // Address space reserved for heap pages (virtual; backed lazily by the OS). The twin images
  // and shadow map reserve proportionally more.
  std::size_t arena_bytes = std::size_t{16} << 30;
  // Verify mode: fully diff every page at every commit and report bytes the tracked path missed.
  // Also enabled by the environment variable MMSB_VERIFY=1.
  bool verify = false;
  // Called for each verify miss (under the commit lock), from verify mode or sampled
  // verification. Default: print one line to stderr.
  std::function<void(const VerifyMiss&)> on_verify_miss;
  // Sampled verification in normal runs (docs/Runtime.md, "Sampled verification"): every page is
  // diffed in full against its twin at least once every `sample_verify` commits (each commit
  // checks a rotating slice of at least 1/sample_verify of the live page bytes), and a byte that
  // changed without a mark is reported like a verify miss. 0 turns it off. -1 (the default)
  // takes the environment variable MMSB_SAMPLE_VERIFY, or kDefaultSampleVerify without it.
  // Verify mode checks every page at every commit and makes sampling moot.
  static constexpr int kDefaultSampleVerify = 32;
  int sample_verify = -1;
  // Threads that may recompute independent graph nodes at once: 0 picks one per hardware thread
  // (at most 8), 1 keeps propagation serial.
  unsigned propagation_threads = 0;
};

// Starts the process-wide bus. FailedPrecondition if already started; OutOfMemory if the address
// space cannot be reserved.
Status start(const Options& options = {});
// Stops the bus: frees every page, drops sinks and stages. No-op when not started.
void stop();
bool started();

// Ends the epoch and returns the new epoch number. `site` is recorded in the log as what
// committed (mmsb/provenance.h); leave it defaulted.
Expected<Epoch> commit(std::source_location site = std::source_location::current());

// The last committed epoch (0 before the first commit).
Epoch current_epoch();

}  // namespace mmsb
