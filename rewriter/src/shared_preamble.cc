#include "mmsb/rewriter/shared_preamble.h"

#include <algorithm>
#include <utility>

#include "clang/Basic/Diagnostic.h"
#include "clang/Basic/SourceManager.h"
#include "clang/Frontend/CompilerInvocation.h"
#include "clang/Lex/HeaderSearchOptions.h"
#include "clang/Lex/PPCallbacks.h"
#include "clang/Lex/PreprocessorOptions.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"

namespace mmsb::rewriter {
namespace {

// Counts every diagnostic the preamble's build reports (none may be reported for it to be used).
class CountingConsumer : public clang::DiagnosticConsumer {
 public:
  void HandleDiagnostic(clang::DiagnosticsEngine::Level level,
                        const clang::Diagnostic& info) override {
    DiagnosticConsumer::HandleDiagnostic(level, info);
    ++seen_;
  }
  unsigned seen() const { return seen_; }

 private:
  unsigned seen_ = 0;
};

// Records every file the preamble enters, and whether one of them is not a system header.
class FileWatcher : public clang::PreambleCallbacks {
 public:
  void BeforeExecute(clang::CompilerInstance& ci) override { sm_ = &ci.getSourceManager(); }

  std::unique_ptr<clang::PPCallbacks> createPPCallbacks() override {
    return std::make_unique<Callbacks>(*this);
  }

  bool user_header() const { return user_header_; }
  std::vector<llvm::sys::fs::UniqueID> TakeFiles() { return std::move(files_); }

 private:
  class Callbacks : public clang::PPCallbacks {
   public:
    explicit Callbacks(FileWatcher& w) : w_(w) {}
    void FileChanged(clang::SourceLocation loc, FileChangeReason reason,
                     clang::SrcMgr::CharacteristicKind kind, clang::FileID) override {
      if (reason != EnterFile || w_.sm_ == nullptr) return;
      const clang::FileID fid = w_.sm_->getFileID(loc);
      if (fid == w_.sm_->getMainFileID()) return;
      clang::OptionalFileEntryRef file = w_.sm_->getFileEntryRefForID(fid);
      if (!file) return;  // the predefines buffer
      if (!clang::SrcMgr::isSystem(kind)) w_.user_header_ = true;
      w_.files_.push_back(file->getUniqueID());
    }

   private:
    FileWatcher& w_;
  };

  const clang::SourceManager* sm_ = nullptr;
  bool user_header_ = false;
  std::vector<llvm::sys::fs::UniqueID> files_;
};

// Why the compile `inv` describes cannot share a preamble soundly, or null.
const char* Unsupported(const clang::CompilerInvocation& inv) {
  if (inv.getCodeGenOpts().getDebugInfo() != llvm::codegenoptions::NoDebugInfo)
    return "debug information (a PCH changes the debug info clang emits)";
  const clang::DependencyOutputOptions& dep = inv.getDependencyOutputOpts();
  if (!dep.OutputFile.empty() || dep.ShowHeaderIncludes || !dep.HeaderIncludeOutputFile.empty() ||
      dep.ShowIncludesDest != clang::ShowIncludesDestination::None || !dep.DOTOutputFile.empty() ||
      !dep.ModuleDependencyOutputDir.empty())
    return "dependency or header-include output";
  const clang::PreprocessorOptions& pp = inv.getPreprocessorOpts();
  if (!pp.ImplicitPCHInclude.empty() || pp.PrecompiledPreambleBytes.first != 0 ||
      !pp.RemappedFiles.empty() || !pp.RemappedFileBuffers.empty())
    return "a PCH, preamble or remapped file of its own";
  const clang::LangOptions& lang = inv.getLangOpts();
  // (C++20 sets LangOptions::Modules: what is refused is -fmodules and module files.)
  const clang::HeaderSearchOptions& hs = inv.getHeaderSearchOpts();
  if (lang.ImplicitModules || hs.ImplicitModuleMaps || !lang.CurrentModule.empty() ||
      !inv.getFrontendOpts().ModuleFiles.empty() || !hs.PrebuiltModuleFiles.empty() ||
      !hs.PrebuiltModulePaths.empty())
    return "modules";
  if (lang.CUDA || lang.HIP || lang.ObjC || !lang.CPlusPlus) return "a language other than C++";
  if (!inv.getHeaderSearchOpts().VFSOverlayFiles.empty()) return "a VFS overlay";
  if (inv.getFrontendOpts().Inputs.size() != 1 || !inv.getFrontendOpts().Inputs[0].isFile())
    return "no single input file";
  return nullptr;
}

}  // namespace

std::size_t SystemIncludePrefix(llvm::StringRef text) {
  std::size_t end = 0;  // after the last #include line taken
  bool in_block_comment = false;
  for (std::size_t at = 0; at < text.size();) {
    std::size_t eol = text.find('\n', at);
    const std::size_t next = eol == llvm::StringRef::npos ? text.size() : eol + 1;
    llvm::StringRef line = text.slice(at, eol == llvm::StringRef::npos ? text.size() : eol);
    if (line.ends_with("\r")) line = line.drop_back();
    if (line.ends_with("\\")) break;  // a continued line: leave it to the parser
    llvm::StringRef rest = line.trim();
    if (in_block_comment) {
      const std::size_t close = rest.find("*/");
      if (close == llvm::StringRef::npos) {
        at = next;
        continue;
      }
      in_block_comment = false;
      rest = rest.drop_front(close + 2).trim();
    }
    if (rest.starts_with("/*")) {
      const std::size_t close = rest.find("*/", 2);
      if (close == llvm::StringRef::npos) {
        in_block_comment = true;
        at = next;
        continue;
      }
      rest = rest.drop_front(close + 2).trim();
    }
    if (rest.empty() || rest.starts_with("//")) {
      at = next;
      continue;
    }
    if (!rest.consume_front("#")) break;
    rest = rest.ltrim();
    if (!rest.consume_front("include")) break;
    rest = rest.ltrim();
    if (!rest.consume_front("<")) break;  // a quoted include may be a user header: stop
    const std::size_t close = rest.find('>');
    if (close == llvm::StringRef::npos) break;
    rest = rest.drop_front(close + 1).trim();
    if (!rest.empty() && !rest.starts_with("//")) break;
    if (eol == llvm::StringRef::npos) break;  // the line must end: the prefix ends at a line start
    end = next;
    at = next;
  }
  return end;
}

std::optional<SharedPreamble> SharedPreamble::Build(
    const clang::CompilerInvocation& inv, const llvm::MemoryBuffer& main,
    std::shared_ptr<clang::PCHContainerOperations> pch_ops, std::string* why) {
  auto fail = [why](const char* reason) -> std::optional<SharedPreamble> {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  if (const char* reason = Unsupported(inv)) return fail(reason);
  const std::size_t size = SystemIncludePrefix(main.getBuffer());
  if (size == 0) return fail("the main file does not start with #include <...> lines");

  // The preamble's own compile: the command's options, without its outputs and the plugin.
  clang::CompilerInvocation copy(inv);
  copy.getFrontendOpts().Plugins.clear();
  copy.getFrontendOpts().ActionName.clear();
  copy.getFrontendOpts().AddPluginActions.clear();
  copy.getDependencyOutputOpts() = clang::DependencyOutputOptions();
  // The templates the headers use are instantiated once, here, instead of at the end of each
  // pass (-fpch-instantiate-templates; a benign language option, so the passes load the PCH
  // unchanged). Sound: every file the preamble enters is a system header, so each of these
  // instantiations has only system-header arguments (the main file's code comes after the
  // preamble), the analysis never enters a system-header declaration, and the end of the
  // preamble is a point of instantiation of each of them ([temp.point]: a valid program means the
  // same there and at the end of the TU). A diagnostic in one of them is counted below and turns
  // the preamble off.
  copy.getLangOpts().PCHInstantiateTemplates = true;
  CountingConsumer counter;
  auto diags = llvm::makeIntrusiveRefCnt<clang::DiagnosticsEngine>(
      llvm::makeIntrusiveRefCnt<clang::DiagnosticIDs>(), &copy.getDiagnosticOpts(), &counter,
      /*ShouldOwnClient=*/false);
  FileWatcher watcher;
  llvm::ErrorOr<clang::PrecompiledPreamble> built = clang::PrecompiledPreamble::Build(
      copy, &main, clang::PreambleBounds(static_cast<unsigned>(size), true), *diags,
      llvm::vfs::getRealFileSystem(), std::move(pch_ops), /*StoreInMemory=*/true,
      /*StoragePath=*/"", watcher);
  if (!built) return fail("the preamble's build failed");
  if (counter.seen() != 0) return fail("the preamble's headers report diagnostics");
  if (watcher.user_header()) return fail("the preamble includes a header that is not a system one");
  return SharedPreamble(std::make_unique<clang::PrecompiledPreamble>(std::move(*built)),
                        watcher.TakeFiles());
}

llvm::IntrusiveRefCntPtr<llvm::vfs::FileSystem> SharedPreamble::Apply(
    clang::CompilerInvocation& inv) const {
  llvm::IntrusiveRefCntPtr<llvm::vfs::FileSystem> vfs = llvm::vfs::getRealFileSystem();
  // AddImplicitPreamble also remaps the main file to a buffer; the compile reads its own (the
  // file on disk, or the rewrite's override), so that remapping is dropped again.
  std::unique_ptr<llvm::MemoryBuffer> unused = llvm::MemoryBuffer::getMemBuffer("");
  clang::PreprocessorOptions& pp = inv.getPreprocessorOpts();
  const std::size_t remapped = pp.RemappedFileBuffers.size();
  pch_->AddImplicitPreamble(inv, vfs, unused.get());
  pp.RemappedFileBuffers.resize(remapped);
  return vfs;
}

bool SharedPreamble::StillValidFor(const RewriteOutput& rewrite, llvm::StringRef main_file) const {
  llvm::sys::fs::UniqueID main_id;
  if (llvm::sys::fs::getUniqueID(main_file, main_id)) return false;
  for (const RewriteOutput::File& f : rewrite.files) {
    llvm::sys::fs::UniqueID id;
    if (llvm::sys::fs::getUniqueID(f.path, id)) return false;
    if (id == main_id) {
      if (!llvm::StringRef(f.contents).starts_with(pch_->getContents())) return false;
    } else if (std::find(files_.begin(), files_.end(), id) != files_.end()) {
      return false;
    }
  }
  return true;
}

}  // namespace mmsb::rewriter
