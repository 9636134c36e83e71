// PageAnalyzer: finds the [[mmsb::page]] state of a translation unit and turns it into source
// edits (write barriers, escape marks, arena operator new/delete, layout descriptors, static page
// registration, transaction scopes) plus diagnostics (Finding).
//
// Rewrite rules are in docs/PluginGuide.md. Every edit keeps the line structure of the file:
// inserted text never contains a newline, except the trailing block appended after a #line
// directive at the end of a file, so diagnostics and debug info keep the user's line numbers.
//
// Ownership: the analyzer borrows the ASTContext; it must outlive the analyzer.
// Thread-safety: none; one analyzer per translation unit.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "mmsb/rewriter/diagnostics.h"

#include "clang/AST/ASTContext.h"
#include "clang/Basic/SourceManager.h"
#include "llvm/Support/Error.h"

namespace mmsb::rewriter {

struct AnalyzerOptions {
  // Only collect findings; record no edits (the checker of the in-process compile).
  bool report_only = false;
};

// The rewritten contents of every file that changed. The main file comes first when it changed.
struct RewriteOutput {
  struct File {
    std::string path;      // as the SourceManager names it
    std::string contents;  // full new contents
    bool is_main = false;
  };
  std::vector<File> files;
};

class PageAnalyzer {
 public:
  PageAnalyzer(clang::ASTContext& ctx, AnalyzerOptions options);
  ~PageAnalyzer();
  PageAnalyzer(const PageAnalyzer&) = delete;
  PageAnalyzer& operator=(const PageAnalyzer&) = delete;

  // Analyses the whole translation unit. Call once.
  void Run();
  // Run() under llvm::CrashRecoveryContext: returns false (and leaves no edits or findings) if
  // the analysis crashed, so that the caller can report an error instead of taking the
  // compiler down. Without crash recovery enabled in the process it is Run().
  bool RunProtected();

  const std::vector<Finding>& findings() const { return findings_; }
  bool has_edits() const { return !edits_.empty() || !trailers_.empty(); }
  size_t edit_count() const { return edits_.size(); }

  // The [[mmsb::page]] types each function writes (stores and non-const member calls on page
  // storage), keyed by the function's mangled name (constructors and destructors under every
  // variant), types fully qualified. Filled by Run(); the IR capture records it.
  using PageWrites = std::map<std::string, std::set<std::string>>;
  const PageWrites& page_writes() const { return page_writes_; }

  // Applies the edits and returns the new contents of every changed file. Fails when an edit
  // cannot be applied (a location outside any file), never partially.
  llvm::Expected<RewriteOutput> Apply() const;

  // Implementation details shared with the traversal (page_visitor.h).
  // Where an insertion goes among the others at its offset (docs/PluginGuide.md, "Edits at the
  // same offset"): whatever the order the traversal records them in, the text that ends an
  // expression ending here comes first, then statements of their own (an escape before the
  // statement that starts here), then the text that opens an expression starting here.
  enum class Slot : std::uint8_t {
    kClose,      // before earlier closes at this offset: the innermost expression closes first
    kStatement,  // after the closes, before the opens
    kOpen,       // after earlier opens: the outermost expression opens first
  };
  struct Edit {
    clang::FileID fid;
    unsigned offset;
    std::string text;
    Slot slot;
  };

 private:
  friend class PageVisitor;

  clang::ASTContext& ctx_;
  AnalyzerOptions options_;
  std::vector<Finding> findings_;
  std::vector<Edit> edits_;
  std::map<clang::FileID, std::string> trailers_;  // code appended at the end of a file
  std::set<std::tuple<clang::FileID, unsigned, unsigned, int>> sites_;  // dedup of edit sites
  std::set<std::pair<clang::SourceLocation, int>> reported_;            // dedup of findings
  PageWrites page_writes_;
};

// Text to put before the rewritten main file so that it builds on its own (mmsb-rewrite output):
// the runtime include, then a #line that restores the user's numbering.
std::string StandalonePrologue(llvm::StringRef main_path);

}  // namespace mmsb::rewriter
