// MMSB's own diagnostics: stable kinds, their text, and their warning groups.
//
// Clang 19 custom diagnostic IDs cannot belong to a warning group, and -W flags do not reach
// them. Reporter emulates groups: it reads the -W flags of the compile (-w, -Werror,
// -W[no-][error=]mmsb-<group>, -Wno-mmsb for all of them) and picks the level of each custom ID
// accordingly. Every warning names its group as clang does ("[-Wmmsb-untracked]").
//
// Remarks (-Rmmsb, in the style of -Rpass) say what the rewriter did with each store into page
// storage: a barrier, a loop/call/library mark, or an escape (a page diffed in full), and why.
// Clang 19 cannot add a remark group from a plugin either (its groups are a static table, and
// getCustomDiagID takes no group), so the same emulation reads the -R flags: -Rmmsb,
// -Rmmsb-barrier, -Rmmsb-mark, -Rmmsb-escape, their -Rno- forms and -R[no-]everything. Remarks
// are off unless asked for.
//
// Thread-safety: a Reporter belongs to one compiler instance.
#pragma once

#include <string>
#include <vector>

#include "clang/Basic/Diagnostic.h"
#include "clang/Basic/DiagnosticOptions.h"
#include "clang/Basic/SourceLocation.h"

namespace mmsb::rewriter {

enum class DiagKind {
  kNotTriviallyCopyable,     // error: page type '%0' is not trivially copyable
  kNotTriviallyCopyableWhy,  // note: %0
  kUntrackedAutomatic,       // warning -Wmmsb-untracked
  kUntrackedMember,          // warning -Wmmsb-untracked
  kUntrackedContainer,       // warning -Wmmsb-untracked
  kUntrackedArrayNew,        // warning -Wmmsb-untracked
  kUntrackedThreadLocal,     // warning -Wmmsb-untracked
  kUntrackedSharedAlloc,     // warning -Wmmsb-untracked
  kPointerMember,            // note -Wmmsb-pointer (standalone)
  kUnrewritableStore,        // warning -Wmmsb-unrewritable
  kUnrewritableDecl,         // warning -Wmmsb-unrewritable
  kUnrewritableUntracked,    // warning -Wmmsb-unrewritable: no escape could be emitted either
  kUnalignedTemplateStore,   // error: a member with reduced alignment stored in template code
  kAsmStore,                 // warning -Wmmsb-asm
  kRemarkBarrier,            // remark -Rmmsb-barrier: a per-store barrier, and why no mark
  kRemarkLoopMark,           // remark -Rmmsb-mark: a loop range mark (at the loop)
  kRemarkLoopCovered,        // remark -Rmmsb-mark: a store the loop's range mark covers
  kRemarkCallMark,           // remark -Rmmsb-mark: a held mark for a member call
  kRemarkLibraryMark,        // remark -Rmmsb-mark: a held mark for a library function
  kRemarkNoMark,             // remark -Rmmsb-mark: a call that needs no mark
  kRemarkEscape,             // remark -Rmmsb-escape: the page is diffed in full, and why
};

// One diagnostic found by the analysis, with its arguments already formatted.
struct Finding {
  DiagKind kind;
  clang::SourceLocation loc;
  std::vector<std::string> args;
};

// The emulated group of a kind ("mmsb-untracked"), or "" for errors and attached notes.
const char* GroupOf(DiagKind kind);

// Returns true when `group` is one of MMSB's emulated warning groups (with or without the
// "no-", "error=" and "no-error=" prefixes): such -W flags must not reach clang's own parser.
bool IsMmsbWarningFlag(llvm::StringRef flag);
// The same for -R flags without the "-R" ("mmsb", "no-mmsb-mark").
bool IsMmsbRemarkFlag(llvm::StringRef flag);

class Reporter {
 public:
  // "*diags" must outlive the Reporter.
  Reporter(clang::DiagnosticsEngine* diags, const clang::DiagnosticOptions& opts);
  // `warnings` are the -W flags without the "-W" (DiagnosticOptions::Warnings).
  Reporter(clang::DiagnosticsEngine* diags, std::vector<std::string> warnings, bool ignore_warnings,
           std::vector<std::string> remarks = {});

  void Report(const Finding& f);
  void ReportAll(const std::vector<Finding>& findings);

 private:
  clang::DiagnosticsEngine::Level LevelFor(DiagKind kind) const;

  clang::DiagnosticsEngine* diags_;
  std::vector<std::string> warnings_;  // the -W flags, in command-line order
  std::vector<std::string> remarks_;   // the -R flags, in command-line order
  bool ignore_warnings_;
  bool last_warning_ignored_ = false;
};

}  // namespace mmsb::rewriter
