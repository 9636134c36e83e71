// The in-process compile of a (rewritten) translation unit.
//
// With the plugin loaded, clang runs the plugin's action instead of the one the command asked
// for. RunInnerCompile re-derives the original cc1 invocation from the command line
// (CodeGenOptions::CommandLineArgs), remaps the rewritten files over the originals and runs the
// original action (-c, -S, -emit-llvm, -E, -fsyntax-only, ...) in a second CompilerInstance, with
// all its outputs (-o, -MD/-MF) as the command line says. A checker runs beside the real AST
// consumer and reports MMSB's diagnostics for the code as the user wrote it.
//
// Diagnostics reach `client` located in the compile's own SourceManager (its snippets show the
// rewritten line), except where the outer compile's diagnostics format is SARIF: clang 19's SARIF
// printer reads every location through the SourceManager its writer was made with, the outer
// compile's, so each diagnostic is handed over located there instead, at the same file and line
// and at its column clamped to the line (or without a location, in a file the outer compile did
// not read). A location of one SourceManager never reaches a reader of the other. Under SARIF the
// outer compile must have begun `client` on its source file, and the inner compile does not
// begin or end it (the plugin's one-pass mode; the two-pass mode refuses SARIF).
//
// Ownership: `client` is borrowed; it must outlive the call. Thread-safety: one call at a time
// per process (the attribute use counter is process-wide).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "mmsb/rewriter/analyzer.h"
#include "mmsb/rewriter/shared_preamble.h"

#include "clang/Basic/Diagnostic.h"
#include "clang/Frontend/CompilerInstance.h"
#include "llvm/Support/Error.h"

namespace mmsb::rewriter {

// A line of a file, as the compile names them.
struct SourceLine {
  std::string file;  // empty: none
  unsigned line = 0;
};

struct InnerCompileRequest {
  const RewriteOutput* rewrite = nullptr;  // null: compile the original files
  // Files whose contents replace those on disk whether or not anything was rewritten, the same
  // way as the rewritten files (CMake's PCH wrapper without its system_header pragma,
  // mmsb/rewriter/pch_wrapper.h).
  std::vector<RewriteOutput::File> overrides;
  clang::DiagnosticConsumer* client = nullptr;  // receives every diagnostic of the compile
  std::string runtime_include_dir;              // where <mmsb/instrument.h> lives
  bool run_checker = true;
  // Extra -W flags for MMSB's groups (from -fplugin-arg-mmsb-W...), after the command line's.
  std::vector<std::string> extra_warnings;
  // Extra -R flags for MMSB's remarks (from -fplugin-arg-mmsb-R...), after the command line's.
  std::vector<std::string> extra_remarks;
  // The user's compile already parsed the original source and reported its diagnostics: drop the
  // warnings, remarks and notes of the lexer, parser and Sema (errors and back-end diagnostics
  // still pass).
  bool drop_frontend_warnings = false;
  // Called with the inner CompilerInstance (the one that generates code) and the action the
  // command line asked for (e.g. a CodeGenAction) before it runs, e.g. to add
  // CodeGenOptions::PassBuilderCallbacks (the IR capture). Both live until the call ends.
  std::function<void(clang::CompilerInstance&, clang::FrontendAction&)> before_execute;
  // The preamble the first pass loaded (shared_preamble.h), or null. The compile loads it too
  // when the rewrite left it valid, and parses everything otherwise. Borrowed.
  const SharedPreamble* preamble = nullptr;
  // Set by the call: the compile loaded `preamble`.
  bool* used_preamble = nullptr;
  // Set by the call: the line of the compile's first lexer, parser or Sema error (the user's
  // line: the rewrite keeps the line structure); its file stays empty when there was none.
  SourceLine* first_error = nullptr;
};

// The invocation the command line asked for, re-derived from CodeGenOptions::CommandLineArgs
// (with the plugin loaded, the compile's own invocation runs the plugin's action instead).
llvm::Expected<std::shared_ptr<clang::CompilerInvocation>> OriginalInvocation(
    const clang::CompilerInstance& outer);

// Returns true when the compile succeeded, false when it reported errors (through `client`), and
// an error when the compile could not be set up at all.
llvm::Expected<bool> RunInnerCompile(clang::CompilerInstance& outer,
                                     const InnerCompileRequest& request);

// The -W flags of `outer` with MMSB's emulated groups removed (clang would call them unknown).
std::vector<std::string> ClangWarningFlags(const std::vector<std::string>& warnings);

}  // namespace mmsb::rewriter
