// PageAnalyzer: runs the traversal (PageVisitor, page_visitor.h) over a translation unit, guarded
// against crashes, and applies the recorded edits and trailers to the rewritten files.
#include "mmsb/rewriter/analyzer.h"

#include <algorithm>
#include <string>

#include "clang/Rewrite/Core/Rewriter.h"
#include "llvm/Support/CrashRecoveryContext.h"
#include "llvm/Support/raw_ostream.h"
#include "page_visitor.h"

namespace mmsb::rewriter {

PageAnalyzer::PageAnalyzer(clang::ASTContext& ctx, AnalyzerOptions options)
    : ctx_(ctx), options_(options) {}

PageAnalyzer::~PageAnalyzer() = default;

void PageAnalyzer::Run() {
  if (!ctx_.getLangOpts().CPlusPlus) return;
  PageVisitor v(*this);
  v.TraverseDecl(ctx_.getTranslationUnitDecl());
}

bool PageAnalyzer::RunProtected() {
  llvm::CrashRecoveryContext crc;
  if (crc.RunSafely([this] { Run(); })) return true;
  findings_.clear();
  edits_.clear();
  trailers_.clear();
  return false;
}

llvm::Expected<RewriteOutput> PageAnalyzer::Apply() const {
  clang::SourceManager& sm = ctx_.getSourceManager();
  clang::Rewriter rw(sm, ctx_.getLangOpts());
  std::set<clang::FileID> changed;
  // Slot order at one offset (Edit::Slot): opens append after earlier opens; then statements and
  // closes are put in front of what is there. Statements go in reverse so that they keep the
  // order they were recorded in; closes go in front one by one, as each closes an expression
  // inside the one recorded before it.
  auto insert = [&](const Edit& e, bool after) -> llvm::Error {
    clang::SourceLocation loc = sm.getComposedLoc(e.fid, e.offset);
    if (loc.isInvalid() || rw.InsertText(loc, e.text, /*InsertAfter=*/after)) {
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "mmsb: cannot apply an edit at offset %u", e.offset);
    }
    changed.insert(e.fid);
    return llvm::Error::success();
  };
  for (const Edit& e : edits_) {
    if (e.slot == Slot::kOpen) {
      if (llvm::Error err = insert(e, /*after=*/true)) return std::move(err);
    }
  }
  for (auto it = edits_.rbegin(); it != edits_.rend(); ++it) {
    if (it->slot == Slot::kStatement) {
      if (llvm::Error err = insert(*it, /*after=*/false)) return std::move(err);
    }
  }
  for (const Edit& e : edits_) {
    if (e.slot == Slot::kClose) {
      if (llvm::Error err = insert(e, /*after=*/false)) return std::move(err);
    }
  }
  for (const auto& [fid, code] : trailers_) changed.insert(fid);

  RewriteOutput out;
  for (clang::FileID fid : changed) {
    clang::OptionalFileEntryRef fe = sm.getFileEntryRefForID(fid);
    if (!fe) {
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "mmsb: an edited location is not in a file");
    }
    RewriteOutput::File file;
    file.path = fe->getName().str();
    file.is_main = fid == sm.getMainFileID();
    if (const clang::RewriteBuffer* rb = rw.getRewriteBufferFor(fid)) {
      file.contents.assign(rb->begin(), rb->end());
    } else {
      file.contents = sm.getBufferData(fid).str();
    }
    if (auto it = trailers_.find(fid); it != trailers_.end()) {
      const llvm::StringRef original = sm.getBufferData(fid);
      unsigned last_line =
          static_cast<unsigned>(std::count(original.begin(), original.end(), '\n'));
      if (!original.ends_with("\n")) ++last_line;
      if (!file.contents.empty() && file.contents.back() != '\n') file.contents += '\n';
      std::string presumed = file.path;
      clang::PresumedLoc ploc = sm.getPresumedLoc(sm.getLocForStartOfFile(fid));
      if (ploc.isValid()) presumed = ploc.getFilename();
      file.contents += "#line " + std::to_string(std::max(1u, last_line)) + " " +
                       CxxStringLiteral(presumed) + "\n" + it->second;
    }
    out.files.push_back(std::move(file));
  }
  for (size_t i = 1; i < out.files.size(); ++i) {
    if (out.files[i].is_main) std::swap(out.files[0], out.files[i]);
  }
  return out;
}

std::string StandalonePrologue(llvm::StringRef main_path) {
  return "#include <mmsb/held_marks.h>\n#line 1 " + CxxStringLiteral(main_path) + "\n";
}

}  // namespace mmsb::rewriter
