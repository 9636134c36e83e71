#include "mmsb/rewriter/inner_compile.h"

#include <memory>

#include "mmsb/rewriter/attributes.h"
#include "mmsb/rewriter/diagnostics.h"

#include "clang/AST/ASTConsumer.h"
#include "clang/AST/ASTContext.h"
#include "clang/Basic/DiagnosticIDs.h"
#include "clang/Frontend/CompilerInvocation.h"
#include "clang/Frontend/FrontendAction.h"
#include "clang/Frontend/MultiplexConsumer.h"
#include "clang/Frontend/Utils.h"
#include "clang/FrontendTool/Utils.h"
#include "clang/Lex/PreprocessorOptions.h"
#include "llvm/Support/MemoryBuffer.h"

namespace mmsb::rewriter {
namespace {

// Reports MMSB's findings for the translation unit as compiled.
class CheckerConsumer : public clang::ASTConsumer {
 public:
  CheckerConsumer(clang::CompilerInstance& ci, std::vector<std::string> warnings, bool ignore,
                  std::vector<std::string> remarks)
      : ci_(ci), warnings_(std::move(warnings)), ignore_(ignore), remarks_(std::move(remarks)) {}

  void HandleTranslationUnit(clang::ASTContext& ctx) override {
    if (AttributeUseCount() == 0) return;
    PageAnalyzer analyzer(ctx, AnalyzerOptions{/*report_only=*/true});
    if (!analyzer.RunProtected()) {
      clang::DiagnosticsEngine& d = ci_.getDiagnostics();
      d.Report(d.getCustomDiagID(clang::DiagnosticsEngine::Error,
                                 "mmsb: internal error: the analysis of this file crashed"));
      return;
    }
    Reporter(&ci_.getDiagnostics(), warnings_, ignore_, remarks_).ReportAll(analyzer.findings());
  }

 private:
  clang::CompilerInstance& ci_;
  std::vector<std::string> warnings_;
  bool ignore_;
  std::vector<std::string> remarks_;
};

class CheckingAction : public clang::WrapperFrontendAction {
 public:
  CheckingAction(std::unique_ptr<clang::FrontendAction> wrapped, bool run_checker,
                 std::vector<std::string> warnings, bool ignore, std::vector<std::string> remarks)
      : WrapperFrontendAction(std::move(wrapped)),
        run_checker_(run_checker),
        warnings_(std::move(warnings)),
        ignore_(ignore),
        remarks_(std::move(remarks)) {}

 protected:
  std::unique_ptr<clang::ASTConsumer> CreateASTConsumer(clang::CompilerInstance& ci,
                                                        llvm::StringRef in_file) override {
    std::unique_ptr<clang::ASTConsumer> real =
        WrapperFrontendAction::CreateASTConsumer(ci, in_file);
    if (real == nullptr || !run_checker_) return real;
    std::vector<std::unique_ptr<clang::ASTConsumer>> consumers;
    consumers.push_back(std::make_unique<CheckerConsumer>(ci, warnings_, ignore_, remarks_));
    consumers.push_back(std::move(real));
    return std::make_unique<clang::MultiplexConsumer>(std::move(consumers));
  }

 private:
  bool run_checker_;
  std::vector<std::string> warnings_;
  bool ignore_;
  std::vector<std::string> remarks_;
};

// Forwards the inner compile's diagnostics except what the user's compile reported already.
class FrontendWarningFilter : public clang::DiagnosticConsumer {
 public:
  explicit FrontendWarningFilter(clang::DiagnosticConsumer* next) : next_(next) {}

  // The user's source file is still open in `next_` (the second pass runs inside the first):
  // the second pass's begin and end are not forwarded.

  void HandleDiagnostic(clang::DiagnosticsEngine::Level level,
                        const clang::Diagnostic& info) override {
    if (level == clang::DiagnosticsEngine::Note) {
      if (!last_dropped_) next_->HandleDiagnostic(level, info);
      return;
    }
    const unsigned id = info.getID();
    last_dropped_ = level < clang::DiagnosticsEngine::Error && id >= clang::diag::DIAG_START_LEX &&
                    id < clang::diag::DIAG_START_ANALYSIS;
    if (!last_dropped_) next_->HandleDiagnostic(level, info);
  }

 private:
  clang::DiagnosticConsumer* next_;
  bool last_dropped_ = false;
};

// Hands every diagnostic on to `next` unchanged (Begin/EndSourceFile and finish included, so it
// can stand in front of any consumer) and notes where the first error was.
class FirstErrorRecorder : public clang::DiagnosticConsumer {
 public:
  FirstErrorRecorder(clang::DiagnosticConsumer* next, SourceLine* first_error)
      : next_(next), first_error_(first_error) {}

  void BeginSourceFile(const clang::LangOptions& lo, const clang::Preprocessor* pp) override {
    next_->BeginSourceFile(lo, pp);
  }
  void EndSourceFile() override { next_->EndSourceFile(); }
  void finish() override { next_->finish(); }
  bool IncludeInDiagnosticCounts() const override { return next_->IncludeInDiagnosticCounts(); }

  // Counts as `next` does (the compile's success is its count: -verify's consumer does not count
  // the errors it expected).
  void HandleDiagnostic(clang::DiagnosticsEngine::Level level,
                        const clang::Diagnostic& info) override {
    // Lexer, parser and Sema errors: the ones a broken rewrite makes (a back end's error, or one
    // of a plugin's, could come from the original code too).
    const unsigned id = info.getID();
    if (level >= clang::DiagnosticsEngine::Error && id >= clang::diag::DIAG_START_LEX &&
        id < clang::diag::DIAG_START_ANALYSIS && first_error_ != nullptr &&
        first_error_->file.empty() && info.hasSourceManager() && info.getLocation().isValid()) {
      const clang::SourceManager& sm = info.getSourceManager();
      const clang::PresumedLoc p = sm.getPresumedLoc(sm.getFileLoc(info.getLocation()));
      if (p.isValid()) *first_error_ = SourceLine{p.getFilename(), p.getLine()};
    }
    next_->HandleDiagnostic(level, info);
    NumErrors = next_->getNumErrors();
    NumWarnings = next_->getNumWarnings();
  }

 private:
  clang::DiagnosticConsumer* next_;
  SourceLine* first_error_;
};

// Hands the inner compile's diagnostics to `next` located in the outer compile's SourceManager
// (see inner_compile.h: for consumers bound to it, the SARIF printer). The same file (by name)
// and line; the column is clamped to the line's end by translateLineCol; a file the outer
// compile never read (the runtime's headers) gives no location. Macro backtraces, ranges and
// fix-its, which point into the inner SourceManager, are dropped. Begin/EndSourceFile are not
// forwarded: `next` stays open on the user's file, as for FrontendWarningFilter.
class RelocatingConsumer : public clang::DiagnosticConsumer {
 public:
  // `outer_sm` null: the consumer is not used.
  RelocatingConsumer(clang::DiagnosticConsumer* next, clang::SourceManager* outer_sm)
      : next_(next), outer_sm_(outer_sm) {}

  void HandleDiagnostic(clang::DiagnosticsEngine::Level level,
                        const clang::Diagnostic& info) override {
    DiagnosticConsumer::HandleDiagnostic(level, info);
    if (relay_ == nullptr) {
      // The inner compile's diagnostic IDs (its custom ones included) name this diagnostic.
      relay_ = std::make_unique<clang::DiagnosticsEngine>(
          info.getDiags()->getDiagnosticIDs(), &info.getDiags()->getDiagnosticOptions(), next_,
          /*ShouldOwnClient=*/false);
      relay_->setSourceManager(outer_sm_);
    }
    llvm::SmallString<256> message;
    info.FormatDiagnostic(message);
    relay_->Report(clang::StoredDiagnostic(level, info.getID(), message, Relocate(info),
                                           /*Ranges=*/{}, /*Fixits=*/{}));
  }

 private:
  clang::FullSourceLoc Relocate(const clang::Diagnostic& info) const {
    if (!info.hasSourceManager() || info.getLocation().isInvalid()) return {};
    const clang::SourceManager& sm = info.getSourceManager();
    const clang::SourceLocation loc = sm.getFileLoc(info.getLocation());
    const auto [fid, offset] = sm.getDecomposedLoc(loc);
    const clang::OptionalFileEntryRef fe = sm.getFileEntryRefForID(fid);
    if (!fe) return {};
    bool invalid = false;
    const unsigned line = sm.getLineNumber(fid, offset, &invalid);
    if (invalid) return {};
    const unsigned column = sm.getColumnNumber(fid, offset, &invalid);
    if (invalid) return {};
    clang::OptionalFileEntryRef outer_fe =
        outer_sm_->getFileManager().getOptionalFileRef(fe->getName(), /*OpenFile=*/false);
    if (!outer_fe) return {};
    const clang::FileID outer_fid = outer_sm_->translateFile(*outer_fe);
    if (outer_fid.isInvalid()) return {};
    const clang::SourceLocation out = outer_sm_->translateLineCol(outer_fid, line, column);
    if (out.isInvalid()) {
      return clang::FullSourceLoc(outer_sm_->getLocForStartOfFile(outer_fid), *outer_sm_);
    }
    return clang::FullSourceLoc(out, *outer_sm_);
  }

  clang::DiagnosticConsumer* next_;
  clang::SourceManager* outer_sm_;
  std::unique_ptr<clang::DiagnosticsEngine> relay_;
};

}  // namespace

std::vector<std::string> ClangWarningFlags(const std::vector<std::string>& warnings) {
  std::vector<std::string> out;
  for (const std::string& w : warnings) {
    if (!IsMmsbWarningFlag(w)) out.push_back(w);
  }
  return out;
}

llvm::Expected<std::shared_ptr<clang::CompilerInvocation>> OriginalInvocation(
    const clang::CompilerInstance& outer) {
  const clang::CodeGenOptions& cg = outer.getCodeGenOpts();
  if (cg.CommandLineArgs.empty()) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "mmsb: the compile command is not available to the plugin");
  }
  std::vector<const char*> args;
  for (const std::string& a : cg.CommandLineArgs) args.push_back(a.c_str());
  auto inv = std::make_shared<clang::CompilerInvocation>();
  // Parse quietly: the outer compile already reported any problem with the command line.
  auto ids = llvm::makeIntrusiveRefCnt<clang::DiagnosticIDs>();
  auto opts = llvm::makeIntrusiveRefCnt<clang::DiagnosticOptions>();
  clang::IgnoringDiagConsumer ignore;
  clang::DiagnosticsEngine quiet(ids, opts, &ignore, /*ShouldOwnClient=*/false);
  const char* argv0 = cg.Argv0 != nullptr ? cg.Argv0 : "clang";
  if (!clang::CompilerInvocation::CreateFromArgs(*inv, args, quiet, argv0)) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "mmsb: cannot re-parse the compile command");
  }
  return inv;
}

llvm::Expected<bool> RunInnerCompile(clang::CompilerInstance& outer,
                                     const InnerCompileRequest& request) {
  llvm::Expected<std::shared_ptr<clang::CompilerInvocation>> original = OriginalInvocation(outer);
  if (!original) return original.takeError();
  std::shared_ptr<clang::CompilerInvocation> inv = std::move(*original);

  clang::FrontendOptions& fe = inv->getFrontendOpts();
  fe.Plugins.clear();
  fe.ActionName.clear();
  if (fe.ProgramAction == clang::frontend::PluginAction)
    fe.ProgramAction = clang::frontend::ParseSyntaxOnly;

  clang::DiagnosticOptions& dopts = inv->getDiagnosticOpts();
  std::vector<std::string> all_warnings = dopts.Warnings;
  all_warnings.insert(all_warnings.end(), request.extra_warnings.begin(),
                      request.extra_warnings.end());
  const bool ignore_warnings = dopts.IgnoreWarnings;
  dopts.Warnings = ClangWarningFlags(dopts.Warnings);
  std::vector<std::string> all_remarks = dopts.Remarks;
  all_remarks.insert(all_remarks.end(), request.extra_remarks.begin(), request.extra_remarks.end());
  // The outer compile's consumer chain (-verify, --serialize-diagnostics, the printer) receives
  // everything; the outer compile prints the totals once.
  dopts.VerifyDiagnostics = false;
  dopts.DiagnosticLogFile.clear();
  dopts.DiagnosticSerializationFile.clear();
  dopts.ShowCarets = false;  // only gates the "N warnings generated" summary of this instance
  // The outer compile's consumer formats the diagnostics. Under SARIF, clang's BeginSourceFile
  // casts the compile's consumer to a SARIF printer unchecked and binds it to this compile's
  // SourceManager; here the consumer is one of ours, or the outer's printer, already bound.
  const bool relocate = outer.hasSourceManager() &&
                        outer.getDiagnosticOpts().getFormat() == clang::DiagnosticOptions::SARIF;
  dopts.setFormat(clang::DiagnosticOptions::Clang);

  // Actions that write source files back (-fixit, -rewrite-macros) must see the user's code.
  bool writes_sources_back = false;
  switch (fe.ProgramAction) {
    case clang::frontend::FixIt:
    case clang::frontend::RewriteMacros:
    case clang::frontend::RewriteTest:
    case clang::frontend::RewriteObjC:
    case clang::frontend::EmitHTML:
      writes_sources_back = true;
      break;
    default:
      break;
  }
  const RewriteOutput* rewrite = writes_sources_back ? nullptr : request.rewrite;
  // The first pass wrote the dependency file (as without the plugin).
  if (request.drop_frontend_warnings)
    inv->getDependencyOutputOpts() = clang::DependencyOutputOptions();
  if (rewrite != nullptr) {
    clang::PreprocessorOptions& pp = inv->getPreprocessorOpts();
    pp.RetainRemappedFileBuffers = false;
    pp.Includes.insert(pp.Includes.begin(), "mmsb/held_marks.h");  // includes instrument.h
    if (!request.runtime_include_dir.empty()) {
      inv->getHeaderSearchOpts().AddPath(request.runtime_include_dir, clang::frontend::System,
                                         /*IsFramework=*/false, /*IgnoreSysRoot=*/true);
    }
  }

  clang::CompilerInstance inner(outer.getPCHContainerOperations());
  inner.setInvocation(inv);
  RelocatingConsumer relocating(request.client, relocate ? &outer.getSourceManager() : nullptr);
  clang::DiagnosticConsumer* const user =
      relocate ? static_cast<clang::DiagnosticConsumer*>(&relocating) : request.client;
  FrontendWarningFilter filter(user);
  FirstErrorRecorder recorder(
      request.drop_frontend_warnings ? static_cast<clang::DiagnosticConsumer*>(&filter) : user,
      request.first_error);
  clang::DiagnosticConsumer* client = &recorder;
  auto diags = llvm::makeIntrusiveRefCnt<clang::DiagnosticsEngine>(
      llvm::makeIntrusiveRefCnt<clang::DiagnosticIDs>(), &inv->getDiagnosticOpts(), client,
      /*ShouldOwnClient=*/false);
  clang::ProcessWarningOptions(*diags, inv->getDiagnosticOpts(), /*ReportDiags=*/false);
  inner.setDiagnostics(diags.get());
  std::vector<const RewriteOutput::File*> replaced;
  // The first pass's preamble, where the rewrite left it valid (shared_preamble.h).
  llvm::IntrusiveRefCntPtr<llvm::vfs::FileSystem> preamble_vfs;
  if (request.preamble != nullptr && fe.Inputs.size() == 1 && fe.Inputs[0].isFile() &&
      (rewrite == nullptr || request.preamble->StillValidFor(*rewrite, fe.Inputs[0].getFile()))) {
    preamble_vfs = request.preamble->Apply(*inv);
  }
  if (request.used_preamble != nullptr) *request.used_preamble = preamble_vfs != nullptr;
  if (preamble_vfs != nullptr && rewrite == nullptr) {
    inner.createFileManager(preamble_vfs);
    inner.createSourceManager(inner.getFileManager());
  }
  if (rewrite != nullptr) {
    for (const RewriteOutput::File& f : rewrite->files) replaced.push_back(&f);
  }
  if (!writes_sources_back) {
    for (const RewriteOutput::File& f : request.overrides) replaced.push_back(&f);
  }
  if (!replaced.empty()) {
    // The new contents replace each file's under the file's own entry (its size and time on
    // disk), not as a remapped virtual file: a PCH built from a rewritten header then records
    // the header as the file on disk, so a later #include of that file finds it already included
    // (#pragma once; a virtual file's size is the rewritten one, and never matches). The PCH
    // holds the new contents (clang embeds an overridden file's buffer), and a TU that loads it
    // sees those.
    inner.createFileManager(preamble_vfs);
    inner.createSourceManager(inner.getFileManager());
    for (const RewriteOutput::File* fp : replaced) {
      const RewriteOutput::File& f = *fp;
      auto buffer = llvm::MemoryBuffer::getMemBufferCopy(f.contents, f.path);
      llvm::Expected<clang::FileEntryRef> file = inner.getFileManager().getFileRef(f.path);
      if (file) {
        inner.getSourceManager().overrideFileContents(*file, std::move(buffer));
      } else {
        llvm::consumeError(file.takeError());
        inv->getPreprocessorOpts().addRemappedFile(f.path, buffer.release());
      }
    }
  }

  std::unique_ptr<clang::FrontendAction> real = clang::CreateFrontendAction(inner);
  if (real == nullptr) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "mmsb: cannot create the compile's frontend action");
  }
  clang::FrontendAction& requested = *real;
  CheckingAction action(std::move(real), request.run_checker, all_warnings, ignore_warnings,
                        all_remarks);
  ResetAttributeUseCount();
  if (request.before_execute) request.before_execute(inner, requested);
  const unsigned errors_before = request.client->getNumErrors();
  const bool ok = inner.ExecuteAction(action);
  return ok && request.client->getNumErrors() == errors_before;
}

}  // namespace mmsb::rewriter
