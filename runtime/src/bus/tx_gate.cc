#include "bus/tx_gate.h"

#include <dlfcn.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mutex>

#include "core/clock.h"

namespace mmsb {
namespace {

// One per thread that has run a transaction. Never freed: a commit walks the list without a lock.
struct alignas(64) TxSlot {
  std::atomic<std::uint32_t> active{0};   // 1 while the thread is inside a transaction
  std::atomic<std::uint32_t> claimed{0};  // 1 while a thread owns the slot
  std::atomic<const void*> where{nullptr};
  std::atomic<long> tid{0};
  TxSlot* next = nullptr;  // set before the slot is published, then immutable
  // The exiting transaction's provenance, handed to the commit it joins (g_join_mu).
  enum : std::uint8_t { kNoNote, kPublished, kTaken };
  std::uint8_t note_state = kNoNote;
  std::uint64_t taken_by = 0;  // the commit that took the note
  CommitProvenance note;
};

// Guards every slot's note fields, and makes a commit's hand-over of joined notes one step with
// its reopening of the gate. Never destroyed (static destructors may run transactions).
std::mutex& JoinMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}

std::atomic<TxSlot*> g_slots{nullptr};
// 0 while open; otherwise the sequence number of the commit holding it closed.
std::atomic<std::uint64_t> g_gate{0};
// The last commit sequence that finished (logged, durable as its sinks make it); only committing
// threads write it.
std::atomic<std::uint64_t> g_finished{0};
std::uint64_t g_next_seq = 0;  // the committing thread's, under the bus's commit lock
std::atomic<std::uint64_t> g_watchdog_ns{TxGate::kWatchdogNanos};
std::atomic<std::uint64_t> g_watchdog_reports{0};

TxSlot* ClaimSlot() {
  for (TxSlot* s = g_slots.load(std::memory_order_acquire); s != nullptr; s = s->next) {
    std::uint32_t free = 0;
    if (s->claimed.load(std::memory_order_relaxed) == 0 &&
        s->claimed.compare_exchange_strong(free, 1, std::memory_order_acq_rel)) {
      return s;
    }
  }
  auto* s = new TxSlot;
  s->claimed.store(1, std::memory_order_relaxed);
  TxSlot* head = g_slots.load(std::memory_order_relaxed);
  do {
    s->next = head;
  } while (!g_slots.compare_exchange_weak(head, s, std::memory_order_release,
                                          std::memory_order_relaxed));
  return s;
}

// The thread's slot, claimed on its first transaction and released when the thread exits.
struct SlotHolder {
  TxSlot* slot = nullptr;
  ~SlotHolder() {
    if (slot != nullptr) {
      slot->active.store(0, std::memory_order_release);
      slot->claimed.store(0, std::memory_order_release);
      // A transaction later on this thread (the main thread's static destructors run after its
      // thread_locals are destroyed) claims a slot of its own instead of sharing this one.
      slot = nullptr;
    }
  }
  TxSlot* Get() {
    if (slot == nullptr) {
      slot = ClaimSlot();
      slot->tid.store(static_cast<long>(::syscall(SYS_gettid)), std::memory_order_relaxed);
    }
    return slot;
  }
};

thread_local SlotHolder t_slot;
thread_local std::uint64_t t_joined = 0;

// Spins briefly, then yields: the waits here last about one transaction or one collection.
void Pause(unsigned& spins) {
  if (++spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  } else {
    sched_yield();
  }
}

void ReportBlocker(const TxSlot& s, std::uint64_t waited_ns) {
  g_watchdog_reports.fetch_add(1, std::memory_order_relaxed);
  const void* where = s.where.load(std::memory_order_relaxed);
  Dl_info info{};
  const char* name = nullptr;
  if (where != nullptr && dladdr(where, &info) != 0) name = info.dli_sname;
  std::fprintf(stderr,
               "mmsb: watchdog: a commit has waited %llu ms for the transaction in %s (code %p) on "
               "thread %ld; a transaction must never wait on another thread that may commit\n",
               static_cast<unsigned long long>(waited_ns / 1'000'000),
               name != nullptr ? name : "an unknown function", where,
               s.tid.load(std::memory_order_relaxed));
}

}  // namespace

std::atomic<std::uint32_t> TxGate::schedule_seed_{0};

void TxGate::SetWatchdogNanos(std::uint64_t ns) noexcept {
  g_watchdog_ns.store(ns, std::memory_order_relaxed);
}

std::uint64_t TxGate::WatchdogReports() noexcept {
  return g_watchdog_reports.load(std::memory_order_relaxed);
}

void TxGate::SetScheduleSeed(std::uint32_t seed) noexcept {
  schedule_seed_.store(seed, std::memory_order_relaxed);
}

void TxGate::YieldSometimes() noexcept {
  // xorshift32, seeded per thread from the global seed and the thread's slot.
  thread_local std::uint32_t state = 0;
  thread_local std::uint32_t seeded_with = 0;
  const std::uint32_t seed = schedule_seed_.load(std::memory_order_relaxed);
  if (seeded_with != seed) {
    seeded_with = seed;
    state = seed ^ (0x9e3779b9u *
                    static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(&state) >> 6));
    if (state == 0) state = 1;
  }
  state ^= state << 13;
  state ^= state >> 17;
  state ^= state << 5;
  if ((state & 3) == 0) sched_yield();
}

void TxGate::Enter(const void* where) noexcept {
  RacePoint();
  TxSlot* s = t_slot.Get();
  s->where.store(where, std::memory_order_relaxed);
  for (;;) {
    s->active.store(1, std::memory_order_relaxed);
    // Dekker with Close(): either this load sees the gate closed, or the commit's scan sees this
    // slot active and waits for it.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (g_gate.load(std::memory_order_acquire) == 0) return;
    s->active.store(0, std::memory_order_release);
    unsigned spins = 0;
    while (g_gate.load(std::memory_order_acquire) != 0) Pause(spins);
  }
}

bool TxGate::Exit(const CommitProvenance& note) noexcept {
  TxSlot* s = t_slot.Get();
  {
    // Published while still inside the transaction: a commit that waits for it takes the note
    // only after the transaction's end (below), in Open().
    std::lock_guard<std::mutex> lock(JoinMutex());
    s->note = note;
    s->note_state = TxSlot::kPublished;
  }
  RacePoint();
  s->active.store(0, std::memory_order_seq_cst);
  RacePoint();
  std::lock_guard<std::mutex> lock(JoinMutex());
  if (s->note_state == TxSlot::kTaken) {
    // A commit whose cut came after this transaction's end (it waited for it, or scanned after
    // it) took the note: its collection holds the stores.
    s->note_state = TxSlot::kNoNote;
    t_joined = s->taken_by;
    return true;
  }
  // A commit that holds the gate now closed it after this transaction began (a transaction never
  // begins while the gate is closed), so its cut comes after this transaction's stores; it has
  // not reopened (that takes this lock), so its Open() will take the note.
  const std::uint64_t g = g_gate.load(std::memory_order_seq_cst);
  if (g != 0) {
    t_joined = g;
    return true;
  }
  s->note_state = TxSlot::kNoNote;
  return false;
}

void TxGate::JoinPending() noexcept {
  unsigned spins = 0;
  while (g_finished.load(std::memory_order_acquire) < t_joined) Pause(spins);
}

bool TxGate::InTransaction() noexcept {
  return t_slot.slot != nullptr && t_slot.slot->active.load(std::memory_order_relaxed) != 0;
}

std::uint64_t TxGate::Close(std::uint64_t* seq) noexcept {
  *seq = ++g_next_seq;
  g_gate.store(*seq, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  RacePoint();
  std::uint64_t reports = 0;
  for (TxSlot* s = g_slots.load(std::memory_order_acquire); s != nullptr; s = s->next) {
    if (s->active.load(std::memory_order_acquire) == 0) continue;
    const std::uint64_t t0 = MonotonicNanos();
    bool reported = false;
    unsigned spins = 0;
    while (s->active.load(std::memory_order_acquire) != 0) {
      Pause(spins);
      if (!reported && (spins & 255) == 0) {
        const std::uint64_t waited = MonotonicNanos() - t0;
        if (waited >= g_watchdog_ns.load(std::memory_order_relaxed)) {
          ReportBlocker(*s, waited);
          reported = true;
          ++reports;
        }
      }
    }
  }
  return reports;
}

void TxGate::Open(std::vector<CommitProvenance>* joined) noexcept {
  std::lock_guard<std::mutex> lock(JoinMutex());
  const std::uint64_t seq = g_gate.load(std::memory_order_relaxed);
  for (TxSlot* s = g_slots.load(std::memory_order_acquire); s != nullptr; s = s->next) {
    if (s->note_state != TxSlot::kPublished) continue;
    // Published and no longer inside the transaction: it ended before this commit's cut was
    // complete and joins it. Still inside: it began after the cut and is not this commit's.
    if (s->active.load(std::memory_order_acquire) != 0) continue;
    s->note_state = TxSlot::kTaken;
    s->taken_by = seq;
    if (joined != nullptr) joined->push_back(s->note);
  }
  g_gate.store(0, std::memory_order_release);
}

void TxGate::Finish(std::uint64_t seq) noexcept {
  // Commits finish out of order (their sinks' waits run outside the commit lock): keep the max.
  std::uint64_t cur = g_finished.load(std::memory_order_relaxed);
  while (cur < seq && !g_finished.compare_exchange_weak(cur, seq, std::memory_order_release,
                                                        std::memory_order_relaxed)) {
  }
}

}  // namespace mmsb
