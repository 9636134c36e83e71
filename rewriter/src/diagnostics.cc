#include "mmsb/rewriter/diagnostics.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSwitch.h"

namespace mmsb::rewriter {
namespace {

struct KindInfo {
  DiagKind kind;
  clang::DiagnosticsEngine::Level default_level;
  const char* group;  // "" when not in a group
  const char* format;
};

constexpr KindInfo kKinds[] = {
    {DiagKind::kNotTriviallyCopyable, clang::DiagnosticsEngine::Error, "",
     "page type %0 is not trivially copyable; [[mmsb::page]] types must be, so that a byte diff "
     "describes every change"},
    {DiagKind::kNotTriviallyCopyableWhy, clang::DiagnosticsEngine::Note, "", "%0"},
    {DiagKind::kUntrackedAutomatic, clang::DiagnosticsEngine::Warning, "mmsb-untracked",
     "%0 of page type %1 has automatic storage duration; its changes are not tracked"},
    {DiagKind::kUntrackedMember, clang::DiagnosticsEngine::Warning, "mmsb-untracked",
     "member %0 of page type %1 is inside %2, which is not a page type; its changes are not "
     "tracked"},
    {DiagKind::kUntrackedContainer, clang::DiagnosticsEngine::Warning, "mmsb-untracked",
     "elements of page type %0 in standard container %1 are not tracked"},
    {DiagKind::kUntrackedArrayNew, clang::DiagnosticsEngine::Warning, "mmsb-untracked",
     "array new of page type %0 does not allocate pages; its changes are not tracked"},
    {DiagKind::kUntrackedThreadLocal, clang::DiagnosticsEngine::Warning, "mmsb-untracked",
     "thread_local %0 of page type %1 is not tracked"},
    {DiagKind::kUntrackedSharedAlloc, clang::DiagnosticsEngine::Warning, "mmsb-untracked",
     "%0 of page type %1 allocates through an allocator, not from the page arena; its changes "
     "are not tracked (use std::shared_ptr<T>(new T) instead)"},
    {DiagKind::kPointerMember, clang::DiagnosticsEngine::Note, "mmsb-pointer",
     "pointer member %0 of page type %1 is logged as raw addresses"},
    {DiagKind::kUnrewritableStore, clang::DiagnosticsEngine::Warning, "mmsb-unrewritable",
     "store into page storage cannot be rewritten (%0); the page is marked escaped and diffed in "
     "full at every commit"},
    {DiagKind::kUnrewritableDecl, clang::DiagnosticsEngine::Warning, "mmsb-unrewritable",
     "%0 cannot be instrumented (%1); its changes are not tracked"},
    {DiagKind::kUnrewritableUntracked, clang::DiagnosticsEngine::Warning, "mmsb-unrewritable",
     "store into page storage cannot be rewritten (%0) and its page cannot be named here to mark "
     "it escaped; this store is not tracked"},
    {DiagKind::kUnalignedTemplateStore, clang::DiagnosticsEngine::Error, "",
     "store to %0 in template code cannot be tracked: its destination is less aligned than its "
     "type (a member of a packed struct), and template code is shared by every instantiation; "
     "store it outside the template, or through a helper that is not a template"},
    {DiagKind::kAsmStore, clang::DiagnosticsEngine::Warning, "mmsb-asm",
     "inline asm %0 page storage; the page is marked escaped and diffed in full at every commit"},
    {DiagKind::kRemarkBarrier, clang::DiagnosticsEngine::Remark, "mmsb-barrier",
     "store to %0 gets a write barrier (%1)"},
    {DiagKind::kRemarkLoopMark, clang::DiagnosticsEngine::Remark, "mmsb-mark",
     "loop writes %0 under a range mark made at loop entry and at every exit, instead of a "
     "barrier per store (loop mark)"},
    {DiagKind::kRemarkLoopCovered, clang::DiagnosticsEngine::Remark, "mmsb-mark",
     "store to %0 has no barrier: the loop's range mark covers it (loop mark)"},
    {DiagKind::kRemarkCallMark, clang::DiagnosticsEngine::Remark, "mmsb-mark",
     "%0 may write %1: the object is marked when the call's operands are evaluated and again at "
     "the end of the full-expression (call mark)"},
    {DiagKind::kRemarkLibraryMark, clang::DiagnosticsEngine::Remark, "mmsb-mark",
     "%0 writes through %1: %2 is marked when the call's operands are evaluated and again at the "
     "end of the full-expression (library mark)"},
    {DiagKind::kRemarkNoMark, clang::DiagnosticsEngine::Remark, "mmsb-mark",
     "%0 writes %1 with no mark here: %2"},
    {DiagKind::kRemarkEscape, clang::DiagnosticsEngine::Remark, "mmsb-escape",
     "page of %0 is marked escaped and diffed in full at every commit: %1"},
};

const KindInfo& Info(DiagKind kind) {
  for (const KindInfo& k : kKinds) {
    if (k.kind == kind) return k;
  }
  return kKinds[0];
}

}  // namespace

const char* GroupOf(DiagKind kind) { return Info(kind).group; }

bool IsMmsbWarningFlag(llvm::StringRef flag) {
  flag.consume_front("no-");
  flag.consume_front("error=");
  return flag == "mmsb" || flag.starts_with("mmsb-");
}

bool IsMmsbRemarkFlag(llvm::StringRef flag) {
  flag.consume_front("no-");
  return flag == "mmsb" || flag.starts_with("mmsb-");
}

Reporter::Reporter(clang::DiagnosticsEngine* diags, const clang::DiagnosticOptions& opts)
    : diags_(diags),
      warnings_(opts.Warnings),
      remarks_(opts.Remarks),
      ignore_warnings_(opts.IgnoreWarnings) {}

Reporter::Reporter(clang::DiagnosticsEngine* diags, std::vector<std::string> warnings,
                   bool ignore_warnings, std::vector<std::string> remarks)
    : diags_(diags),
      warnings_(std::move(warnings)),
      remarks_(std::move(remarks)),
      ignore_warnings_(ignore_warnings) {}

clang::DiagnosticsEngine::Level Reporter::LevelFor(DiagKind kind) const {
  const KindInfo& info = Info(kind);
  llvm::StringRef group = info.group;
  if (group.empty()) return info.default_level;
  if (info.default_level == clang::DiagnosticsEngine::Remark) {
    // Off by default; the last matching -R flag wins, as for clang's own remark groups.
    bool enabled = false;
    for (llvm::StringRef r : remarks_) {
      const bool negative = r.consume_front("no-");
      if (r == group || r == "mmsb" || r == "everything") enabled = !negative;
    }
    return enabled ? clang::DiagnosticsEngine::Remark : clang::DiagnosticsEngine::Ignored;
  }
  if (info.default_level == clang::DiagnosticsEngine::Note) {
    // Standalone notes follow their group's on/off state, and -w.
    if (ignore_warnings_) return clang::DiagnosticsEngine::Ignored;
  }
  bool enabled = true;
  bool as_error = false;
  bool error_pinned_off = false;
  for (llvm::StringRef w : warnings_) {
    bool matches_group = false;
    llvm::StringRef rest = w;
    const bool negative = rest.consume_front("no-");
    const bool error_form = rest.consume_front("error");
    if (error_form) {
      if (rest.empty()) {  // -Werror / -Wno-error
        as_error = !negative;
        continue;
      }
      if (!rest.consume_front("=")) continue;
    }
    matches_group = rest == group || rest == "mmsb" || rest == "everything";
    if (!matches_group) continue;
    if (error_form) {
      if (negative) {
        error_pinned_off = true;
      } else {
        enabled = true;
        as_error = true;
        error_pinned_off = false;
      }
    } else {
      enabled = !negative;
    }
  }
  if (!enabled) return clang::DiagnosticsEngine::Ignored;
  if (info.default_level == clang::DiagnosticsEngine::Note) return clang::DiagnosticsEngine::Note;
  if (ignore_warnings_) return clang::DiagnosticsEngine::Ignored;
  if (as_error && !error_pinned_off) return clang::DiagnosticsEngine::Error;
  return clang::DiagnosticsEngine::Warning;
}

void Reporter::Report(const Finding& f) {
  const KindInfo& info = Info(f.kind);
  clang::DiagnosticsEngine::Level level = LevelFor(f.kind);
  const bool attached_note =
      info.default_level == clang::DiagnosticsEngine::Note && llvm::StringRef(info.group).empty();
  if (attached_note) {
    if (last_warning_ignored_) return;
  } else {
    last_warning_ignored_ = level == clang::DiagnosticsEngine::Ignored;
    if (last_warning_ignored_) return;
    // A standalone note must not inherit "ignored" from an unrelated earlier diagnostic.
    diags_->setLastDiagnosticIgnored(false);
  }
  std::string format = info.format;
  if (level == clang::DiagnosticsEngine::Remark) format += std::string(" [-R") + info.group + "]";
  if (level == clang::DiagnosticsEngine::Warning || level == clang::DiagnosticsEngine::Error ||
      level == clang::DiagnosticsEngine::Note) {
    if (*info.group != '\0' && level != clang::DiagnosticsEngine::Note)
      format += std::string(" [-W") + (level == clang::DiagnosticsEngine::Error ? "error=" : "") +
                info.group + "]";
  }
  unsigned id = diags_->getDiagnosticIDs()->getCustomDiagID(
      static_cast<clang::DiagnosticIDs::Level>(level), format);
  auto builder = diags_->Report(f.loc, id);
  for (const std::string& a : f.args) builder << a;
}

void Reporter::ReportAll(const std::vector<Finding>& findings) {
  for (const Finding& f : findings) Report(f);
}

}  // namespace mmsb::rewriter
