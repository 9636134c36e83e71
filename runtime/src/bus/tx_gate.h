// TxGate: keeps commits from splitting transactions that run on other threads.
//
// Each thread that runs a transaction owns a TxSlot and publishes in it whether it is inside one
// (the outermost TransactionScope, see mmsb/instrument.h). A commit closes the gate, waits until
// every transaction that began before it closed has ended, takes its cut (collects every page),
// and reopens the gate. A transaction that begins while the gate is closed waits for it to
// reopen, so its stores all land after the cut; a transaction that ends while a commit waits for
// it joins that commit instead of committing on its own (combined commits), and hands it its
// provenance note, so the commit record names every transaction it carries. This is an RCU grace
// period with transactions as the read-side critical sections (McKenney, "RCU Usage In the Linux
// Kernel"), and the same Dekker handshake as a GC safepoint.
//
// The fast path of Enter()/Exit() is a store to the thread's own slot, one full fence and one
// load of the gate word: no lock, no shared read-modify-write. Slots are never freed (a thread
// that exits leaves its slot for the next one), so a commit can scan them without a lock.
//
// Deadlock rule: a transaction must never wait on another thread (a lock, a join, a condition)
// that may be committing, because that commit waits for the transaction. The watchdog names a
// transaction that holds a commit back longer than TxGate::kWatchdogNanos.
//
// Thread-safety: Enter/Exit/InTransaction on any thread; Close/Open by the committing thread only,
// one at a time (the bus's commit lock serialises them).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "mmsb/provenance.h"

namespace mmsb {

class TxGate {
 public:
  // A commit that waits this long for one transaction prints a report naming it (once per
  // transaction and commit); see SetWatchdogNanos.
  static constexpr std::uint64_t kWatchdogNanos = 1'000'000'000;

  // Outermost transaction entry on this thread: waits while a commit holds the gate closed.
  // `where` names the transaction for the watchdog (a code address inside it).
  static void Enter(const void* where) noexcept;
  // Outermost transaction exit. True when a commit was waiting for this transaction and will
  // include its stores: the caller then waits with JoinPending() instead of committing, and that
  // commit lists `note` among its transactions (Open()). False: `note` is the caller's to commit.
  static bool Exit(const CommitProvenance& note) noexcept;
  // Waits until the commit this thread's last Exit() joined has finished (Finish()), as a commit
  // of its own would have.
  static void JoinPending() noexcept;
  // Whether this thread is inside a transaction.
  static bool InTransaction() noexcept;

  // The committing side. Close() shuts the gate, stores the commit's sequence number in `*seq`
  // and waits until no transaction that began before it runs; it returns the number of watchdog
  // reports printed while waiting. Open() reopens the gate once the commit has collected every
  // page (its cut is complete). Finish(seq) releases the transactions that joined commit `seq`;
  // every Close() is followed by one Open() and one Finish().
  static std::uint64_t Close(std::uint64_t* seq) noexcept;
  // Also appends to `joined` (when not null; else drops them) the notes of the transactions that
  // joined this commit; the hand-over and the reopening are one step for Exit().
  static void Open(std::vector<CommitProvenance>* joined) noexcept;
  static void Finish(std::uint64_t seq) noexcept;

  // The watchdog's threshold (tests shorten it) and the reports printed so far in the process.
  static void SetWatchdogNanos(std::uint64_t ns) noexcept;
  static std::uint64_t WatchdogReports() noexcept;

  // Schedule exploration (tests): with a non-zero seed, the gate and the collector yield the CPU
  // at their race points with probability 1/4, drawn from a per-thread generator seeded from
  // `seed`, so an interleaving found once can be searched for again. 0 turns it off.
  static void SetScheduleSeed(std::uint32_t seed) noexcept;
  // A race point: yields when schedule exploration is on (one relaxed load when off).
  static void RacePoint() noexcept {
    if (schedule_seed_.load(std::memory_order_relaxed) != 0) YieldSometimes();
  }

 private:
  static void YieldSometimes() noexcept;
  static std::atomic<std::uint32_t> schedule_seed_;
};

}  // namespace mmsb
