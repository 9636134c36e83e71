// mmsb-plugin.so: the MMSB Clang 19 plugin.
//
// Pipeline (docs/PluginGuide.md): the plugin replaces the compile's action (ReplaceAction). Its
// own parse is silent and only analyses the translation unit. Then the compile the command line
// asked for runs in a second CompilerInstance, over the rewritten files when there was anything
// to rewrite and over the original files otherwise. Every diagnostic the user sees, clang's and
// MMSB's, comes from that second compile, once, at the user's lines.
//
// Options: -fplugin-arg-mmsb-verbose, -fplugin-arg-mmsb-dump-rewrite, -fplugin-arg-mmsb-disable,
// -fplugin-arg-mmsb-include-dir=<dir with mmsb/instrument.h>, -fplugin-arg-mmsb-W<group flag>
// (e.g. -fplugin-arg-mmsb-Wno-mmsb-untracked: like -Wno-mmsb-untracked, without clang's
// "unknown warning option" warning).
#include <memory>
#include <optional>
#include <string>

#include <dlfcn.h>

#include "clang/AST/ASTConsumer.h"
#include "clang/AST/ASTContext.h"
#include "clang/Basic/Diagnostic.h"
#include "clang/Frontend/CompilerInstance.h"
#include "clang/Frontend/FrontendAction.h"
#include "clang/Frontend/FrontendPluginRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"
#include "mmsb/rewriter/analyzer.h"
#include "mmsb/rewriter/attributes.h"
#include "mmsb/rewriter/inner_compile.h"

namespace mmsb::plugin {
namespace {

// The runtime headers the rewritten code includes (<mmsb/instrument.h>): next to an installed
// plugin (<prefix>/lib/mmsb/mmsb-plugin.so -> <prefix>/include), else the source tree it was
// built from. -fplugin-arg-mmsb-include-dir=<dir> overrides both.
std::string DefaultIncludeDir() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&DefaultIncludeDir), &info) != 0 && info.dli_fname != nullptr) {
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
  std::string include_dir = DefaultIncludeDir();
  std::vector<std::string> warnings;  // MMSB group flags without "-W"
};

// The outer compile's diagnostics sink. Diagnostics with a location are dropped: the inner
// compile parses the same code and reports them. Diagnostics without one (setup failures) go
// to the original consumer. At the end the totals are copied from the original consumer, so the
// exit status and the "N errors generated" line describe the inner compile.
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

class MmsbAction;

class AnalysisConsumer : public clang::ASTConsumer {
 public:
  explicit AnalysisConsumer(MmsbAction& action) : action_(action) {}
  void HandleTranslationUnit(clang::ASTContext& ctx) override;

 private:
  MmsbAction& action_;
};

class MmsbAction : public clang::PluginASTAction {
 public:
  void Analyse(clang::ASTContext& ctx) {
    if (options_.disable || silent_ == nullptr || silent_->saw_error()) return;
    if (rewriter::AttributeUseCount() == 0) return;  // nothing in this TU mentions MMSB
    rewriter::PageAnalyzer analyzer(ctx, rewriter::AnalyzerOptions{});
    if (!analyzer.RunProtected()) {
      setup_error_ = "mmsb: internal error: the analysis of this file crashed; please report it "
                     "(-fplugin-arg-mmsb-disable compiles the file without tracking)";
      return;
    }
    if (!analyzer.has_edits()) return;
    llvm::Expected<rewriter::RewriteOutput> out = analyzer.Apply();
    if (!out) {
      setup_error_ = llvm::toString(out.takeError());
      return;
    }
    rewrite_ = std::move(*out);
    if (options_.verbose) {
      llvm::errs() << "mmsb: " << analyzer.edit_count() << " edits in " << rewrite_->files.size()
                   << " file(s)\n";
    }
    if (options_.dump_rewrite) {
      for (const auto& f : rewrite_->files)
        llvm::errs() << "// ---- mmsb rewrite of " << f.path << "\n" << f.contents;
    }
  }

 protected:
  ActionType getActionType() override { return ReplaceAction; }

  bool ParseArgs(const clang::CompilerInstance& ci,
                 const std::vector<std::string>& args) override {
    for (const std::string& a : args) {
      llvm::StringRef arg = a;
      if (arg == "verbose") {
        options_.verbose = true;
      } else if (arg == "dump-rewrite") {
        options_.dump_rewrite = true;
      } else if (arg == "disable") {
        options_.disable = true;
      } else if (arg.consume_front("W")) {
        options_.warnings.push_back(arg.str());  // -fplugin-arg-mmsb-Wno-mmsb-untracked
      } else if (arg.consume_front("include-dir=")) {
        options_.include_dir = arg.str();
      } else {
        clang::DiagnosticsEngine& d = ci.getDiagnostics();
        d.Report(d.getCustomDiagID(clang::DiagnosticsEngine::Warning,
                                   "unknown mmsb plugin argument '%0' (known: verbose, "
                                   "dump-rewrite, disable, include-dir=<dir>)"))
            << a;
      }
    }
    return true;
  }

  bool BeginInvocation(clang::CompilerInstance& ci) override {
    clang::DiagnosticsEngine& diags = ci.getDiagnostics();
    clang::DiagnosticConsumer* original = diags.getClient();
    std::unique_ptr<clang::DiagnosticConsumer> owned = diags.takeClient();
    silent_ = new SilentConsumer(original, std::move(owned));
    diags.setClient(silent_, /*ShouldOwnClient=*/true);
    diags.setIgnoreAllWarnings(true);
    // The inner compile writes the dependency file (and -H output); the outer must not.
    ci.getDependencyOutputOpts() = clang::DependencyOutputOptions();
    rewriter::ResetAttributeUseCount();
    return true;
  }

  bool hasIRSupport() const override { return true; }

  void ExecuteAction() override {
    const clang::InputKind kind = getCurrentFileKind();
    // Preprocessed input (-save-temps, distributed builds) was rewritten when it was
    // preprocessed with the plugin: compile it as it is.
    const bool cxx_source = kind.getFormat() == clang::InputKind::Source &&
                            !kind.isPreprocessed() &&
                            (kind.getLanguage() == clang::Language::CXX ||
                             kind.getLanguage() == clang::Language::ObjCXX ||
                             kind.getLanguage() == clang::Language::CUDA ||
                             kind.getLanguage() == clang::Language::HIP);
    if (options_.disable || !cxx_source) return;  // compile the original once, below
    PluginASTAction::ExecuteAction();
  }

  std::unique_ptr<clang::ASTConsumer> CreateASTConsumer(clang::CompilerInstance&,
                                                        llvm::StringRef) override {
    return std::make_unique<AnalysisConsumer>(*this);
  }

  void EndSourceFileAction() override {
    if (silent_ == nullptr) return;
    clang::CompilerInstance& ci = getCompilerInstance();
    unsigned extra_errors = 0;
    if (!setup_error_.empty()) {
      llvm::errs() << "error: " << setup_error_ << "\n";
      ++extra_errors;
    } else {
      rewriter::InnerCompileRequest request;
      request.rewrite = rewrite_ ? &*rewrite_ : nullptr;
      request.client = silent_->original();
      request.runtime_include_dir = options_.include_dir;
      request.run_checker = !options_.disable;
      request.extra_warnings = options_.warnings;
      if (options_.verbose) {
        llvm::errs() << "mmsb: compiling " << (rewrite_ ? "the rewritten" : "the original")
                     << " source\n";
      }
      llvm::Expected<bool> ok = rewriter::RunInnerCompile(ci, request);
      if (!ok) {
        llvm::errs() << "error: " << llvm::toString(ok.takeError()) << "\n";
        ++extra_errors;
      } else if (!*ok && silent_->original()->getNumErrors() == 0) {
        llvm::errs() << "error: mmsb: the instrumented compile failed\n";
        ++extra_errors;
      } else if (!*ok && rewrite_ && !silent_->saw_error()) {
        // The user's code compiled in the analysis parse: the rewrite broke it.
        llvm::errs() << "note: mmsb: the source compiles without the plugin's rewrite; see the "
                        "rewritten code with -fplugin-arg-mmsb-dump-rewrite (or mmsb-rewrite) and "
                        "please report it\n";
      }
    }
    silent_->SyncCounts(extra_errors);
  }

 private:
  Options options_;
  SilentConsumer* silent_ = nullptr;  // owned by the outer DiagnosticsEngine
  std::optional<rewriter::RewriteOutput> rewrite_;
  std::string setup_error_;
};

void AnalysisConsumer::HandleTranslationUnit(clang::ASTContext& ctx) { action_.Analyse(ctx); }

clang::FrontendPluginRegistry::Add<MmsbAction> g_plugin(
    "mmsb", "MMSB: rewrite [[mmsb::page]] state into tracked pages");

}  // namespace
}  // namespace mmsb::plugin
