// mmsb-plugin.so: the MMSB Clang 19 plugin.
//
// Pipeline (docs/PluginGuide.md): the plugin replaces the compile's action (ReplaceAction).
//   - Compiles that parse C or C++ source into an AST (-c, -S, -emit-llvm, -fsyntax-only) run in
//     one pass: the plugin's action creates the action the command line asked for and puts the
//     analysis in front of its AST consumer. A translation unit that needs no rewrite is compiled
//     exactly once, by that consumer, as plain clang would. When the analysis finds something to
//     rewrite, the consumer's back end is not run; the compile the command line asked for runs
//     again in a second CompilerInstance over the rewritten files, writing the outputs.
//     Diagnostics of the user's code come from the first pass (at the user's lines and
//     columns); the second adds only errors and back-end diagnostics. The dependency file is the
//     first pass's, as without the plugin. Under -verify the two-pass mode is used.
//   - Other compiles (-E, -M) run in two passes: a silent parse for the analysis, then the
//     compile the command line asked for over the rewritten (or original) files, which reports
//     every diagnostic once.
//
// Options: -fplugin-arg-mmsb-verbose, -fplugin-arg-mmsb-dump-rewrite, -fplugin-arg-mmsb-disable,
// -fplugin-arg-mmsb-no-preamble (both passes parse every header),
// -fplugin-arg-mmsb-include-dir=<dir with mmsb/instrument.h>, -fplugin-arg-mmsb-W<group flag>
// (e.g. -fplugin-arg-mmsb-Wno-mmsb-untracked: like -Wno-mmsb-untracked, without clang's
// "unknown warning option" warning), -fplugin-arg-mmsb-R<remark flag> (-Rmmsb the same way),
// -fplugin-arg-mmsb-no-ir (no IR capture, see ir_hook.h).
#include <dlfcn.h>

#include <memory>
#include <optional>
#include <string>

#include "mmsb/rewriter/analyzer.h"
#include "mmsb/rewriter/attributes.h"
#include "mmsb/rewriter/inner_compile.h"
#include "mmsb/rewriter/pch_wrapper.h"
#include "mmsb/rewriter/shared_preamble.h"

#include "clang/AST/ASTConsumer.h"
#include "clang/AST/ASTContext.h"
#include "clang/Basic/Diagnostic.h"
#include "clang/Frontend/CompilerInstance.h"
#include "clang/Frontend/FrontendAction.h"
#include "clang/Frontend/FrontendPluginRegistry.h"
#include "clang/Frontend/MultiplexConsumer.h"
#include "clang/FrontendTool/Utils.h"
#include "clang/Lex/PreprocessorOptions.h"
#include "ir_hook.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

namespace mmsb::plugin {
namespace {

// The runtime headers the rewritten code includes (<mmsb/instrument.h>): next to an installed
// plugin (<prefix>/lib/mmsb/mmsb-plugin.so -> <prefix>/include), else the source tree it was
// built from. -fplugin-arg-mmsb-include-dir=<dir> overrides both.
std::string DefaultIncludeDir() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&DefaultIncludeDir), &info) != 0 &&
      info.dli_fname != nullptr) {
    llvm::SmallString<256> dir(info.dli_fname);
    llvm::sys::path::remove_filename(dir);  // lib/mmsb
    llvm::sys::path::append(dir, "..", "..", "include");
    llvm::SmallString<256> probe(dir);
    llvm::sys::path::append(probe, "mmsb", "instrument.h");
    if (llvm::sys::fs::exists(probe)) {
      llvm::sys::path::remove_dots(dir, /*remove_dot_dot=*/true);
      return std::string(dir);
    }
  }
  return MMSB_RUNTIME_INCLUDE_DIR;
}

struct Options {
  bool verbose = false;
  bool dump_rewrite = false;
  bool disable = false;
  bool no_preamble = false;
  // Test only (tests/lit/broken-rewrite.cpp), not documented as an option: the first barrier of
  // the rewritten main file is made not to compile, so the tests can check what a user sees
  // when a rewrite breaks the code (-fplugin-arg-mmsb-test-break-rewrite).
  bool test_break_rewrite = false;
  std::string include_dir = DefaultIncludeDir();
  std::vector<std::string> warnings;  // MMSB group flags without "-W"
  std::vector<std::string> remarks;   // MMSB remark flags without "-R"
};

// The outer compile's diagnostics sink in two-pass mode. Diagnostics with a location are
// dropped: the inner compile parses the same code and reports them. Diagnostics without one
// (setup failures) go to the original consumer. At the end the totals are copied from the
// original consumer, so the exit status and the "N errors generated" line describe the inner
// compile.
class SilentConsumer : public clang::DiagnosticConsumer {
 public:
  SilentConsumer(clang::DiagnosticConsumer* original,
                 std::unique_ptr<clang::DiagnosticConsumer> owned)
      : original_(original), owned_(std::move(owned)) {}

  void HandleDiagnostic(clang::DiagnosticsEngine::Level level,
                        const clang::Diagnostic& info) override {
    if (level >= clang::DiagnosticsEngine::Error) saw_error_ = true;
    if (!info.getLocation().isValid() && level >= clang::DiagnosticsEngine::Error) {
      original_->HandleDiagnostic(level, info);
      SyncCounts(0);
    }
  }

  void SyncCounts(unsigned extra_errors) {
    NumErrors = original_->getNumErrors() + extra_errors;
    NumWarnings = original_->getNumWarnings();
  }

  bool saw_error() const { return saw_error_; }
  clang::DiagnosticConsumer* original() const { return original_; }

 private:
  clang::DiagnosticConsumer* original_;
  std::unique_ptr<clang::DiagnosticConsumer> owned_;
  bool saw_error_ = false;
};

// The action the command line asked for, driven by the plugin's action in one-pass mode
// (WrapperFrontendAction may create its AST consumer).
class RealAction : public clang::WrapperFrontendAction {
 public:
  using WrapperFrontendAction::WrapperFrontendAction;
  std::unique_ptr<clang::ASTConsumer> Consumer(clang::CompilerInstance& ci, llvm::StringRef file) {
    return CreateASTConsumer(ci, file);
  }
};

class MmsbAction;

// Two-pass mode: the analysis parse's only consumer.
class AnalysisConsumer : public clang::ASTConsumer {
 public:
  explicit AnalysisConsumer(MmsbAction& action) : action_(action) {}
  void HandleTranslationUnit(clang::ASTContext& ctx) override;

 private:
  MmsbAction& action_;
};

// One-pass mode: forwards everything to the real action's consumer, except that the end of the
// translation unit (where the back end runs) is forwarded only when nothing needs a rewrite.
// Once the TU has mentioned MMSB (it will most likely be rewritten), the notifications that make
// the real consumer generate code are held back, so a rewritten TU does not pay for code
// generation twice; if nothing is rewritten after all, the second pass compiles the original
// files. A TU that never mentions MMSB is forwarded as it is parsed, exactly as without the
// plugin.
class GateConsumer : public clang::MultiplexConsumer {
 public:
  GateConsumer(MmsbAction& action, std::vector<std::unique_ptr<clang::ASTConsumer>> real)
      : MultiplexConsumer(std::move(real)), action_(action) {}
  void HandleTranslationUnit(clang::ASTContext& ctx) override;

  bool HandleTopLevelDecl(clang::DeclGroupRef d) override {
    return Holding() || MultiplexConsumer::HandleTopLevelDecl(d);
  }
  void HandleInlineFunctionDefinition(clang::FunctionDecl* d) override {
    if (!Holding()) MultiplexConsumer::HandleInlineFunctionDefinition(d);
  }
  void HandleInterestingDecl(clang::DeclGroupRef d) override {
    if (!Holding()) MultiplexConsumer::HandleInterestingDecl(d);
  }
  void HandleTagDeclDefinition(clang::TagDecl* d) override {
    if (!Holding()) MultiplexConsumer::HandleTagDeclDefinition(d);
  }
  void HandleTagDeclRequiredDefinition(const clang::TagDecl* d) override {
    if (!Holding()) MultiplexConsumer::HandleTagDeclRequiredDefinition(d);
  }
  void HandleCXXImplicitFunctionInstantiation(clang::FunctionDecl* d) override {
    if (!Holding()) MultiplexConsumer::HandleCXXImplicitFunctionInstantiation(d);
  }
  void HandleTopLevelDeclInObjCContainer(clang::DeclGroupRef d) override {
    if (!Holding()) MultiplexConsumer::HandleTopLevelDeclInObjCContainer(d);
  }
  void HandleImplicitImportDecl(clang::ImportDecl* d) override {
    if (!Holding()) MultiplexConsumer::HandleImplicitImportDecl(d);
  }
  void CompleteTentativeDefinition(clang::VarDecl* d) override {
    if (!Holding()) MultiplexConsumer::CompleteTentativeDefinition(d);
  }
  void CompleteExternalDeclaration(clang::DeclaratorDecl* d) override {
    if (!Holding()) MultiplexConsumer::CompleteExternalDeclaration(d);
  }
  void AssignInheritanceModel(clang::CXXRecordDecl* d) override {
    if (!Holding()) MultiplexConsumer::AssignInheritanceModel(d);
  }
  void HandleCXXStaticMemberVarInstantiation(clang::VarDecl* d) override {
    if (!Holding()) MultiplexConsumer::HandleCXXStaticMemberVarInstantiation(d);
  }
  void HandleVTable(clang::CXXRecordDecl* d) override {
    if (!Holding()) MultiplexConsumer::HandleVTable(d);
  }

 private:
  // Code generation is held back from now on. Nothing held is replayed: the TU is compiled by
  // the second pass (or has errors, and code generation stops anyway).
  bool Holding();

  MmsbAction& action_;
  bool holding_ = false;
};

class MmsbAction : public clang::PluginASTAction {
 public:
  // The analysis may rewrite this TU (it is C++ source and the plugin is enabled).
  bool MayRewrite() const { return !options_.disable && analyse_input_; }

  // This TU may use MMSB: its source names an MMSB attribute, or it loads a PCH, whose
  // declarations (page types among them) were parsed when the PCH was built and are not counted.
  bool MentionsMmsb() {
    return rewriter::AttributeUseCount() != 0 ||
           !getCompilerInstance().getPreprocessorOpts().ImplicitPCHInclude.empty();
  }

  // Analyses the TU; true when it was rewritten (rewrite_ holds the new files).
  bool Analyse(clang::ASTContext& ctx) {
    if (options_.disable || !analyse_input_ || ctx.getDiagnostics().hasErrorOccurred())
      return false;
    if (silent_ != nullptr && silent_->saw_error()) return false;
    if (!MentionsMmsb()) return false;
    rewriter::PageAnalyzer analyzer(ctx, rewriter::AnalyzerOptions{});
    if (!analyzer.RunProtected()) {
      setup_error_ =
          "mmsb: internal error: the analysis of this file crashed; please report it "
          "(-fplugin-arg-mmsb-disable compiles the file without tracking)";
      return false;
    }
    ir_.SetPageWrites(analyzer.page_writes());
    if (one_pass_) {
      // The user's code is this pass's: MMSB's diagnostics come from here.
      clang::CompilerInstance& ci = getCompilerInstance();
      std::vector<std::string> warnings = ci.getDiagnosticOpts().Warnings;
      warnings.insert(warnings.end(), options_.warnings.begin(), options_.warnings.end());
      std::vector<std::string> remarks = ci.getDiagnosticOpts().Remarks;
      remarks.insert(remarks.end(), options_.remarks.begin(), options_.remarks.end());
      rewriter::Reporter(&ci.getDiagnostics(), warnings, ci.getDiagnosticOpts().IgnoreWarnings,
                         remarks)
          .ReportAll(analyzer.findings());
      if (ci.getDiagnostics().hasErrorOccurred()) return false;
    } else if (!ParsesSource(original_action_)) {
      if (ReportToUser(analyzer.findings())) return false;  // compile the original, which fails
    }
    if (!analyzer.has_edits()) return false;
    llvm::Expected<rewriter::RewriteOutput> out = analyzer.Apply();
    if (!out) {
      setup_error_ = llvm::toString(out.takeError());
      return false;
    }
    rewrite_ = std::move(*out);
    if (options_.test_break_rewrite) BreakRewriteForTest(*rewrite_);
    if (options_.verbose) {
      llvm::errs() << "mmsb: " << analyzer.edit_count() << " edits in " << rewrite_->files.size()
                   << " file(s)\n";
    }
    if (options_.dump_rewrite) {
      for (const auto& f : rewrite_->files)
        llvm::errs() << "// ---- mmsb rewrite of " << f.path << "\n" << f.contents;
    }
    return true;
  }

  // One-pass mode, at the end of the translation unit: true when the second pass compiled it
  // (or the analysis failed), so that this pass's back end must not run.
  // `held`: the gate held back code generation (the TU mentioned MMSB).
  bool FinishOnePass(clang::ASTContext& ctx, bool held) {
    const bool rewritten = Analyse(ctx);
    clang::CompilerInstance& ci = getCompilerInstance();
    if (!setup_error_.empty()) {
      clang::DiagnosticsEngine& d = ci.getDiagnostics();
      d.Report(d.getCustomDiagID(clang::DiagnosticsEngine::Error, "%0")) << setup_error_;
      return true;
    }
    // Nothing to rewrite after all: compiled as it is, by this pass unless code generation was
    // held back. Then the second pass compiles the original files, so that the output is exactly
    // plain clang's (replaying the held notifications would reorder what code generation emits).
    if (!rewritten && (!held || ci.getDiagnostics().hasErrorOccurred())) return false;
    // This pass's back end does not run: drop its outputs, the second pass writes them. Its
    // diagnostics reach the client while this source file is still open in it.
    ci.clearOutputFiles(/*EraseFiles=*/true);
    RunInner(ci, ci.getDiagnostics().getClient(), /*drop_frontend_warnings=*/true);
    return true;
  }

 protected:
  ActionType getActionType() override { return ReplaceAction; }

  bool ParseArgs(const clang::CompilerInstance& ci, const std::vector<std::string>& args) override {
    for (const std::string& a : args) {
      llvm::StringRef arg = a;
      if (arg == "verbose") {
        options_.verbose = true;
      } else if (arg == "dump-rewrite") {
        options_.dump_rewrite = true;
      } else if (arg == "disable") {
        options_.disable = true;
      } else if (arg == "no-preamble") {
        options_.no_preamble = true;
      } else if (arg == "test-break-rewrite") {
        options_.test_break_rewrite = true;
      } else if (arg.consume_front("W")) {
        options_.warnings.push_back(arg.str());  // -fplugin-arg-mmsb-Wno-mmsb-untracked
      } else if (arg.consume_front("R")) {
        options_.remarks.push_back(arg.str());  // -fplugin-arg-mmsb-Rmmsb
      } else if (arg.consume_front("include-dir=")) {
        options_.include_dir = arg.str();
      } else if (ir_.ParseArg(arg)) {
      } else {
        clang::DiagnosticsEngine& d = ci.getDiagnostics();
        d.Report(d.getCustomDiagID(
            clang::DiagnosticsEngine::Warning,
            "unknown mmsb plugin argument '%0' (known: verbose, "
            "dump-rewrite, disable, no-preamble, include-dir=<dir>, no-ir, W<flag>, "
            "R<flag>)"))
            << a;
      }
    }
    return true;
  }

  bool BeginInvocation(clang::CompilerInstance& ci) override {
    rewriter::ResetAttributeUseCount();
    const clang::InputKind kind = getCurrentInput().getKind();
    const bool source = kind.getFormat() == clang::InputKind::Source &&
                        kind.getLanguage() != clang::Language::LLVM_IR &&
                        kind.getLanguage() != clang::Language::Asm &&
                        kind.getLanguage() != clang::Language::Unknown;
    // Preprocessed input (-save-temps, distributed builds) was rewritten when it was
    // preprocessed with the plugin: compile it as it is.
    analyse_input_ =
        source && !kind.isPreprocessed() &&
        (kind.getLanguage() == clang::Language::CXX ||
         kind.getLanguage() == clang::Language::ObjCXX ||
         kind.getLanguage() == clang::Language::CUDA || kind.getLanguage() == clang::Language::HIP);
    if (auto inv = rewriter::OriginalInvocation(ci)) {
      original_action_ = (*inv)->getFrontendOpts().ProgramAction;
      if (IsCodeGenAction(original_action_) ||
          original_action_ == clang::frontend::ParseSyntaxOnly) {
        one_pass_ = source;
      }
    } else {
      llvm::consumeError(inv.takeError());
    }
    // A PCH built through CMake's wrapper (target_precompile_headers): the wrapper's
    // "#pragma clang system_header" would make the user's headers system headers, which are
    // not rewritten (mmsb/rewriter/pch_wrapper.h). A TU that loads a PCH gets the wrapper's
    // contents from it.
    if (analyse_input_ && !options_.disable && original_action_ == clang::frontend::GeneratePCH &&
        ci.getPreprocessorOpts().ImplicitPCHInclude.empty()) {
      pch_wrapper_ = rewriter::FindCMakePchWrapper(ci.getPreprocessorOpts());
    }
    // -verify checks the diagnostics of one source file once: the two-pass mode gives it the
    // second pass's, all of them.
    if (ci.getDiagnosticOpts().VerifyDiagnostics) one_pass_ = false;
    ir_.set_verbose(options_.verbose);
    if (one_pass_) {
      // Diagnostics, dependency file and outputs as usual. Code is generated here unless the TU
      // is rewritten: capture its IR here too. (The capture names functions' source lines from
      // the AST after the back end ran: keep it.)
      ci.getCodeGenOpts().ClearASTBeforeBackend = false;
      ir_.Install(ci, ci);
      SharePreamble(ci);
      return true;
    }

    if (ci.getDiagnosticOpts().getFormat() == clang::DiagnosticOptions::SARIF) {
      // Clang binds the compile's consumer to its SourceManager as a SARIF printer, unchecked
      // (the silent consumer below is none), and the second pass's diagnostics would reach the
      // printer from another SourceManager: that took the compiler down.
      llvm::errs() << "error: mmsb: -fdiagnostics-format=sarif works with the plugin only in "
                      "compiles that parse the source (-c, -S, -emit-llvm, -fsyntax-only) "
                      "without -verify; drop the SARIF format for this one, or compile it "
                      "without the plugin (-fplugin-arg-mmsb-disable does not suffice)\n";
      // The SARIF printer has no writer yet and cannot take a diagnostic: a plain consumer
      // counts the error, which fails the command.
      clang::DiagnosticsEngine& diags = ci.getDiagnostics();
      diags.setClient(new clang::DiagnosticConsumer(), /*ShouldOwnClient=*/true);
      diags.Report(diags.getCustomDiagID(clang::DiagnosticsEngine::Error, "mmsb: SARIF"));
      return false;
    }
    clang::DiagnosticsEngine& diags = ci.getDiagnostics();
    clang::DiagnosticConsumer* original = diags.getClient();
    std::unique_ptr<clang::DiagnosticConsumer> owned = diags.takeClient();
    silent_ = new SilentConsumer(original, std::move(owned));
    diags.setClient(silent_, /*ShouldOwnClient=*/true);
    diags.setIgnoreAllWarnings(true);
    // The inner compile writes the dependency file (and -H output); the outer must not.
    ci.getDependencyOutputOpts() = clang::DependencyOutputOptions();
    return true;
  }

  // The analysis parse reads CMake's PCH wrapper without its system_header pragma, replaced the
  // same way as in the second pass (under the file's own entry). Nothing here is loaded yet:
  // the -include is read when the main file is entered.
  bool BeginSourceFileAction(clang::CompilerInstance& ci) override {
    if (!pch_wrapper_) return true;
    llvm::Expected<clang::FileEntryRef> file = ci.getFileManager().getFileRef(pch_wrapper_->path);
    if (!file) {
      llvm::consumeError(file.takeError());
      pch_wrapper_.reset();  // the compile reports the missing file
      return true;
    }
    ci.getSourceManager().overrideFileContents(
        *file, llvm::MemoryBuffer::getMemBufferCopy(pch_wrapper_->contents, pch_wrapper_->path));
    if (options_.verbose) {
      llvm::errs() << "mmsb: " << pch_wrapper_->path
                   << " is CMake's precompiled-header wrapper: its system_header pragma is "
                      "blanked, so the headers it includes are instrumented\n";
    }
    return true;
  }

  bool hasIRSupport() const override { return true; }

  void ExecuteAction() override {
    const clang::InputKind kind = getCurrentFileKind();
    if (!one_pass_ && (options_.disable || !analyse_input_)) return;  // compiled once, below
    if (kind.getFormat() != clang::InputKind::Source ||
        kind.getLanguage() == clang::Language::LLVM_IR)
      return;
    PluginASTAction::ExecuteAction();
  }

  std::unique_ptr<clang::ASTConsumer> CreateASTConsumer(clang::CompilerInstance& ci,
                                                        llvm::StringRef file) override {
    if (!one_pass_) return std::make_unique<AnalysisConsumer>(*this);
    // The action the command line asked for, created as clang would have.
    clang::FrontendOptions& fe = ci.getFrontendOpts();
    const clang::frontend::ActionKind saved = fe.ProgramAction;
    fe.ProgramAction = original_action_;
    std::unique_ptr<clang::FrontendAction> real = clang::CreateFrontendAction(ci);
    if (real != nullptr) ir_.SetCodeGenAction(*real, ci);
    fe.ProgramAction = saved;
    if (real == nullptr) return nullptr;
    real->setCompilerInstance(&ci);
    real->setCurrentInput(getCurrentInput());
    real_ = std::make_unique<RealAction>(std::move(real));
    std::vector<std::unique_ptr<clang::ASTConsumer>> consumers;
    std::unique_ptr<clang::ASTConsumer> consumer = real_->Consumer(ci, file);
    if (consumer == nullptr) return nullptr;
    consumers.push_back(std::move(consumer));
    return std::make_unique<GateConsumer>(*this, std::move(consumers));
  }

  void EndSourceFileAction() override {
    clang::CompilerInstance& ci = getCompilerInstance();
    if (one_pass_) {
      // Compiled by this pass (a rewritten TU's capture was finished by the second pass's).
      if (!second_pass_ran_)
        ir_.Finish(ci, !ci.getDiagnostics().hasErrorOccurred(), ci.getDiagnostics().getClient());
      return;
    }
    if (silent_ == nullptr) return;
    unsigned extra_errors = 0;
    if (!setup_error_.empty()) {
      llvm::errs() << "error: " << setup_error_ << "\n";
      ++extra_errors;
    } else {
      extra_errors = RunInner(ci, silent_->original(), /*drop_frontend_warnings=*/false);
    }
    silent_->SyncCounts(extra_errors);
  }

 private:
  // True when the compile `action` parses the source into an AST, where the inner compile's
  // checker reports MMSB's diagnostics. The others only preprocess.
  static bool ParsesSource(clang::frontend::ActionKind action) {
    switch (action) {
      case clang::frontend::PrintPreprocessedInput:
      case clang::frontend::RunPreprocessorOnly:
      case clang::frontend::DumpTokens:
      case clang::frontend::DumpRawTokens:
      case clang::frontend::PrintPreamble:
      case clang::frontend::PrintDependencyDirectivesSourceMinimizerOutput:
      case clang::frontend::InitOnly:
        return false;
      default:
        return true;
    }
  }

  // One-pass mode, before the parse: a TU that spells an MMSB attribute will almost surely be
  // rewritten and parsed twice; its leading system headers are precompiled once, in memory, and
  // both passes load them (rewriter/shared_preamble.h). Anything unusual keeps today's two full
  // parses.
  void SharePreamble(clang::CompilerInstance& ci) {
    if (options_.no_preamble || !MayRewrite() || ci.hasFileManager()) return;
    const clang::FrontendOptions& fe = ci.getFrontendOpts();
    if (fe.Inputs.size() != 1 || !fe.Inputs[0].isFile()) return;
    llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> main =
        llvm::MemoryBuffer::getFile(fe.Inputs[0].getFile(), /*IsText=*/true);
    if (!main || !SpellsMmsbAttribute((*main)->getBuffer())) return;
    std::string why;
    std::optional<rewriter::SharedPreamble> built = rewriter::SharedPreamble::Build(
        ci.getInvocation(), **main, ci.getPCHContainerOperations(), &why);
    if (!built) {
      if (options_.verbose) llvm::errs() << "mmsb: no shared preamble: " << why << "\n";
      return;
    }
    preamble_ = std::make_unique<rewriter::SharedPreamble>(std::move(*built));
    ci.createFileManager(preamble_->Apply(ci.getInvocation()));
    if (options_.verbose) {
      llvm::errs() << "mmsb: shared preamble: " << preamble_->PrefixSize()
                   << " bytes of the main file\n";
    }
  }

  // The main file contains `mmsb::page` or `mmsb::transaction` (a cheap test on its text, before
  // the parse: a comment that names them only costs this TU a preamble).
  static bool SpellsMmsbAttribute(llvm::StringRef text) {
    for (size_t at = text.find("mmsb"); at != llvm::StringRef::npos;
         at = text.find("mmsb", at + 4)) {
      llvm::StringRef rest = text.drop_front(at + 4).ltrim();
      if (!rest.consume_front("::")) continue;
      rest = rest.ltrim();
      if (rest.starts_with("page") || rest.starts_with("transaction")) return true;
    }
    return false;
  }

  // -fplugin-arg-mmsb-test-break-rewrite: the first store barrier in the rewritten main file
  // gets a long comment and an undeclared name in front, so the second pass fails at a column
  // past the end of the user's line, as a bad rewrite would.
  static void BreakRewriteForTest(rewriter::RewriteOutput& out) {
    if (out.files.empty() || !out.files[0].is_main) return;
    std::string& text = out.files[0].contents;
    const size_t at = text.find("::mmsb::rt::ws(");
    if (at == std::string::npos) return;
    text.insert(at, " /*" + std::string(200, '-') + "*/ mmsb_test_broken_rewrite + ");
  }

  // Two-pass mode for a compile that only preprocesses (-E, -save-temps' first step, -M): no
  // AST reaches the inner compile's checker, so MMSB's diagnostics come from the analysis, as a
  // compile reports them. Otherwise -E would pass where -c fails, and the preprocessed file (a
  // distributed build's, or -save-temps' .ii, which is compiled without analysis) would build
  // untracked. Returns true when an error was reported.
  bool ReportToUser(const std::vector<rewriter::Finding>& findings) {
    if (findings.empty() || silent_ == nullptr) return false;
    clang::CompilerInstance& ci = getCompilerInstance();
    clang::DiagnosticsEngine& diags = ci.getDiagnostics();
    clang::DiagnosticConsumer* user = silent_->original();
    // The outer engine's client is the silent one, which drops located diagnostics: report
    // through the user's client meanwhile (takeClient keeps the silent one alive).
    std::unique_ptr<clang::DiagnosticConsumer> silent = diags.takeClient();
    diags.setClient(user, /*ShouldOwnClient=*/false);
    const bool ignore_all = diags.getIgnoreAllWarnings();
    diags.setIgnoreAllWarnings(ci.getDiagnosticOpts().IgnoreWarnings);
    const unsigned errors_before = user->getNumErrors();
    user->BeginSourceFile(ci.getLangOpts(), &ci.getPreprocessor());
    std::vector<std::string> warnings = ci.getDiagnosticOpts().Warnings;
    warnings.insert(warnings.end(), options_.warnings.begin(), options_.warnings.end());
    rewriter::Reporter(&diags, warnings, ci.getDiagnosticOpts().IgnoreWarnings).ReportAll(findings);
    user->EndSourceFile();
    diags.setIgnoreAllWarnings(ignore_all);
    diags.setClient(silent.release(), /*ShouldOwnClient=*/true);
    return user->getNumErrors() > errors_before;
  }

  // The compile the command line asked for, over the rewritten files (or the original ones).
  // Returns the number of errors it added beyond those `client` counted.
  unsigned RunInner(clang::CompilerInstance& ci, clang::DiagnosticConsumer* client,
                    bool drop_frontend_warnings) {
    rewriter::InnerCompileRequest request;
    request.rewrite = rewrite_ ? &*rewrite_ : nullptr;
    request.client = client;
    request.runtime_include_dir = options_.include_dir;
    request.run_checker = !options_.disable && !one_pass_;
    request.extra_warnings = options_.warnings;
    request.extra_remarks = options_.remarks;
    request.drop_frontend_warnings = drop_frontend_warnings;
    // The PCH holds the headers as the analysis saw them, without the wrapper's pragma, when
    // they use MMSB; a PCH that never mentions MMSB is compiled exactly as without the plugin.
    if (pch_wrapper_ && MentionsMmsb()) request.overrides.push_back(*pch_wrapper_);
    request.preamble = preamble_.get();
    bool used_preamble = false;
    request.used_preamble = &used_preamble;
    rewriter::SourceLine first_error;
    request.first_error = &first_error;
    if (options_.verbose) {
      llvm::errs() << "mmsb: compiling " << (rewrite_ ? "the rewritten" : "the original")
                   << " source\n";
    }
    // The second pass generates the code: the IR capture moves there. A rewritten TU's object
    // names the TU in a unit note; an unrewritten one stays exactly plain clang's.
    second_pass_ran_ = true;
    ir_.set_unit_note(rewrite_.has_value());
    request.before_execute = [this, &ci](clang::CompilerInstance& inner,
                                         clang::FrontendAction& action) {
      ir_.Install(inner, ci);
      ir_.SetCodeGenAction(action, inner);
    };
    llvm::Expected<bool> ok = rewriter::RunInnerCompile(ci, request);
    if (options_.verbose && preamble_ != nullptr) {
      llvm::errs() << "mmsb: the second pass " << (used_preamble ? "loaded" : "did not load")
                   << " the shared preamble\n";
    }
    ir_.Finish(ci, ok && *ok, client);
    if (!ok) return ReportError(ci, llvm::toString(ok.takeError()));
    if (*ok) return 0;
    if (client->getNumErrors() == 0)
      return ReportError(ci, "mmsb: the instrumented compile failed");
    if (rewrite_ && !first_error.file.empty()) {
      // The user's code parsed without errors in the first pass: the rewrite broke it. The
      // errors above are at the user's lines, in the rewritten code; this one is at the start
      // of the first one's line, in the user's file.
      return ReportError(
          ci,
          "mmsb: the plugin's rewrite of this line does not compile, though the file compiles "
          "without it: this is an MMSB bug; please report it with the rewritten code "
          "(-fplugin-arg-mmsb-dump-rewrite, or mmsb-rewrite). To build meanwhile, compile this "
          "file with -fplugin-arg-mmsb-disable: its stores are then not tracked",
          &first_error);
    }
    return 0;
  }

  // An error of the plugin's own, at the start of `line` when given. One-pass mode: through the
  // compile's diagnostics (the user's consumer, whatever its format, counts it). Two-pass mode:
  // on stderr, and the caller adds the returned 1 to the totals. Returns 1.
  unsigned ReportError(clang::CompilerInstance& ci, const std::string& message,
                       const rewriter::SourceLine* line = nullptr) {
    if (one_pass_) {
      clang::DiagnosticsEngine& d = ci.getDiagnostics();
      clang::SourceLocation loc;
      if (line != nullptr && ci.hasSourceManager()) {
        clang::SourceManager& sm = ci.getSourceManager();
        if (clang::OptionalFileEntryRef fe =
                sm.getFileManager().getOptionalFileRef(line->file, /*OpenFile=*/false)) {
          const clang::FileID fid = sm.translateFile(*fe);
          if (fid.isValid()) loc = sm.translateLineCol(fid, line->line, 1);
        }
      }
      d.Report(loc, d.getCustomDiagID(clang::DiagnosticsEngine::Error, "%0")) << message;
    } else {
      llvm::errs() << (line != nullptr ? line->file + ":" + std::to_string(line->line) + ": " : "")
                   << "error: " << message << "\n";
    }
    return 1;
  }

  Options options_;
  // Outlives both passes: the first pass's AST reads from it until the action ends.
  std::unique_ptr<rewriter::SharedPreamble> preamble_;
  bool one_pass_ = false;       // see the file comment
  bool analyse_input_ = false;  // C++ source that is not preprocessed yet
  clang::frontend::ActionKind original_action_ = clang::frontend::ParseSyntaxOnly;
  std::unique_ptr<RealAction> real_;  // one-pass mode; owns the real consumer's action state
  SilentConsumer* silent_ = nullptr;  // two-pass mode; owned by the outer DiagnosticsEngine
  std::optional<rewriter::RewriteOutput> rewrite_;
  std::optional<rewriter::RewriteOutput::File> pch_wrapper_;  // CMake's, its pragma blanked
  std::string setup_error_;
  IrCaptureHook ir_;
  bool second_pass_ran_ = false;
};

void AnalysisConsumer::HandleTranslationUnit(clang::ASTContext& ctx) { action_.Analyse(ctx); }

bool GateConsumer::Holding() {
  if (!holding_ && action_.MayRewrite() && action_.MentionsMmsb()) holding_ = true;
  return holding_;
}

void GateConsumer::HandleTranslationUnit(clang::ASTContext& ctx) {
  if (action_.FinishOnePass(ctx, holding_)) return;  // the second pass compiled it
  MultiplexConsumer::HandleTranslationUnit(ctx);
}

clang::FrontendPluginRegistry::Add<MmsbAction> g_plugin(
    "mmsb", "MMSB: rewrite [[mmsb::page]] state into tracked pages");

}  // namespace
}  // namespace mmsb::plugin
