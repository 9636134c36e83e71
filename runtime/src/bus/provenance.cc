// Per-thread commit provenance (mmsb/provenance.h).
#include "mmsb/provenance.h"

#include <atomic>

namespace mmsb::rt {
namespace {

std::atomic<std::uint32_t> g_threads{0};
std::atomic<std::uint64_t> g_sequence{0};

thread_local CommitProvenance t_note;
thread_local std::uint32_t t_thread = 0;

}  // namespace

void NoteCommitSite(CommitProvenance::Kind kind, const std::source_location& site) noexcept {
  // TransactionScope notes its site, then calls commit(), whose own note must not replace it.
  if (kind == CommitProvenance::Kind::kCommitCall &&
      t_note.kind == CommitProvenance::Kind::kTransaction) {
    return;
  }
  t_note.kind = kind;
  t_note.function = site.function_name();
  t_note.file = site.file_name();
  t_note.line = site.line();
}

CommitProvenance TakeCommitProvenance() noexcept {
  CommitProvenance p = t_note;
  t_note = {};
  if (t_thread == 0) t_thread = g_threads.fetch_add(1, std::memory_order_relaxed) + 1;
  p.thread = t_thread;
  if (p.sequence == 0) p.sequence = g_sequence.fetch_add(1, std::memory_order_relaxed) + 1;
  return p;
}

void RestoreCommitProvenance(const CommitProvenance& note) noexcept { t_note = note; }

}  // namespace mmsb::rt
