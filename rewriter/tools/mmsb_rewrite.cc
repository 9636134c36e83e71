// mmsb-rewrite: prints (or writes) the source the MMSB plugin compiles.
//
//   mmsb-rewrite file.cpp -- <compile flags>          rewritten main file on stdout
//   mmsb-rewrite file.cpp -o out.cpp -- <flags>        written to out.cpp
//   mmsb-rewrite --all file.cpp -- <flags>             every changed file, headers included
//
// The output is self-contained: it includes <mmsb/instrument.h> and restores the user's line
// numbers with #line. Diagnostics are the plugin's. Exit status 1 on errors.
#include <string>

#include "mmsb/rewriter/analyzer.h"
#include "mmsb/rewriter/attributes.h"
#include "mmsb/rewriter/diagnostics.h"

#include "clang/AST/ASTConsumer.h"
#include "clang/Frontend/CompilerInstance.h"
#include "clang/Frontend/FrontendAction.h"
#include "clang/Tooling/CommonOptionsParser.h"
#include "clang/Tooling/Tooling.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

namespace {

llvm::cl::OptionCategory g_category("mmsb-rewrite options");
llvm::cl::opt<std::string> g_output("o", llvm::cl::desc("Write the rewritten main file here"),
                                    llvm::cl::value_desc("file"), llvm::cl::cat(g_category));
llvm::cl::opt<bool> g_all("all",
                          llvm::cl::desc("Print every changed file (headers too), each after a "
                                         "'// mmsb-rewrite: <path>' line"),
                          llvm::cl::cat(g_category));

class RewriteConsumer : public clang::ASTConsumer {
 public:
  explicit RewriteConsumer(clang::CompilerInstance& ci) : ci_(ci) {}

  void HandleTranslationUnit(clang::ASTContext& ctx) override {
    mmsb::rewriter::PageAnalyzer analyzer(ctx, mmsb::rewriter::AnalyzerOptions{});
    analyzer.Run();
    mmsb::rewriter::Reporter(&ci_.getDiagnostics(), ci_.getDiagnosticOpts())
        .ReportAll(analyzer.findings());
    llvm::Expected<mmsb::rewriter::RewriteOutput> out = analyzer.Apply();
    if (!out) {
      llvm::errs() << "error: " << llvm::toString(out.takeError()) << "\n";
      failed_ = true;
      return;
    }
    const clang::SourceManager& sm = ctx.getSourceManager();
    const std::string main_path = sm.getFileEntryRefForID(sm.getMainFileID())->getName().str();
    std::string main_text = sm.getBufferData(sm.getMainFileID()).str();
    for (const auto& f : out->files) {
      if (f.is_main) main_text = f.contents;
    }
    main_text = mmsb::rewriter::StandalonePrologue(main_path) + main_text;

    if (!g_output.empty()) {
      std::error_code ec;
      llvm::raw_fd_ostream os(g_output, ec, llvm::sys::fs::OF_Text);
      if (ec) {
        llvm::errs() << "error: cannot write " << g_output << ": " << ec.message() << "\n";
        failed_ = true;
        return;
      }
      os << main_text;
    } else if (g_all) {
      llvm::outs() << "// mmsb-rewrite: " << main_path << "\n" << main_text;
      for (const auto& f : out->files) {
        if (!f.is_main) llvm::outs() << "// mmsb-rewrite: " << f.path << "\n" << f.contents;
      }
    } else {
      llvm::outs() << main_text;
    }
  }

  bool failed() const { return failed_; }

 private:
  clang::CompilerInstance& ci_;
  bool failed_ = false;
};

bool g_failed = false;

class RewriteAction : public clang::ASTFrontendAction {
 protected:
  std::unique_ptr<clang::ASTConsumer> CreateASTConsumer(clang::CompilerInstance& ci,
                                                        llvm::StringRef) override {
    mmsb::rewriter::ResetAttributeUseCount();
    auto c = std::make_unique<RewriteConsumer>(ci);
    consumer_ = c.get();
    return c;
  }
  void EndSourceFileAction() override {
    if (consumer_ != nullptr && consumer_->failed()) g_failed = true;
  }

 private:
  RewriteConsumer* consumer_ = nullptr;
};

}  // namespace

int main(int argc, const char** argv) {
  auto parser =
      clang::tooling::CommonOptionsParser::create(argc, argv, g_category, llvm::cl::OneOrMore);
  if (!parser) {
    llvm::errs() << llvm::toString(parser.takeError()) << "\n";
    return 2;
  }
  if (parser->getSourcePathList().size() != 1 && !g_output.empty()) {
    llvm::errs() << "error: -o needs exactly one source file\n";
    return 2;
  }
  clang::tooling::ClangTool tool(parser->getCompilations(), parser->getSourcePathList());
  // Diagnostics must be the plugin's: strip MMSB's emulated -W groups from what clang parses.
  tool.appendArgumentsAdjuster(
      [](const clang::tooling::CommandLineArguments& args, llvm::StringRef) {
        clang::tooling::CommandLineArguments out;
        for (const std::string& a : args) {
          llvm::StringRef s = a;
          if ((s.consume_front("-W") && mmsb::rewriter::IsMmsbWarningFlag(s)) ||
              (s.consume_front("-R") && mmsb::rewriter::IsMmsbRemarkFlag(s))) {
            out.push_back("-Wno-unknown-warning-option");
          }
          out.push_back(a);
        }
        return out;
      });
  // Headers such as <stddef.h> come from clang 19's resource directory, not from next to us.
  tool.appendArgumentsAdjuster(clang::tooling::getInsertArgumentAdjuster(
      "-resource-dir=" MMSB_CLANG_RESOURCE_DIR, clang::tooling::ArgumentInsertPosition::BEGIN));
  const int rc = tool.run(clang::tooling::newFrontendActionFactory<RewriteAction>().get());
  return (rc != 0 || g_failed) ? 1 : 0;
}
