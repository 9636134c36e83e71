// Provenance: what committed an epoch.
//
// Every commit carries the place that asked for it: the [[mmsb::transaction]] function whose
// outermost scope exited (TransactionScope records where the rewriter put it, which is the
// function's body, and the function's name) or the call site of an explicit mmsb::commit()
// (std::source_location), plus the committing thread's number and a sequence number. The log
// sink interns each site once per run (a site record) and writes one commit-info record per
// epoch (docs/SerializationSpec.md, "Provenance").
//
// A CommitProvenance points at static strings (std::source_location's), so recording one costs
// a few stores; nothing is formatted on the commit path.
//
// Thread-safety: the rt:: functions act on the calling thread's state only.
#pragma once

#include <cstdint>
#include <source_location>

namespace mmsb {

struct CommitProvenance {
  enum class Kind : std::uint8_t { kUnknown = 0, kTransaction = 1, kCommitCall = 2 };
  Kind kind = Kind::kUnknown;
  const char* function = nullptr;  // static; the enclosing function, as the compiler names it
  const char* file = nullptr;      // static
  std::uint32_t line = 0;
  std::uint32_t thread = 0;    // the process's thread number, from 1 in order of first commit
  std::uint64_t sequence = 0;  // the process's commit sequence number, from 1
};

namespace rt {

// The calling thread's next commit was asked for at `site` (kind: transaction exit or an
// explicit commit() call). A transaction note is not replaced by the commit() call that acts
// on it.
void NoteCommitSite(CommitProvenance::Kind kind, const std::source_location& site) noexcept;
// Consumes the calling thread's note (Kind::kUnknown when there is none) and numbers it (a note
// numbered before keeps its numbers).
CommitProvenance TakeCommitProvenance() noexcept;
// Puts a taken note back as the calling thread's next (a transaction exit that did not join a
// commit and commits itself).
void RestoreCommitProvenance(const CommitProvenance& note) noexcept;

}  // namespace rt
}  // namespace mmsb
