// A precompiled preamble shared by the plugin's two passes, so that a rewritten translation unit
// parses its leading system headers once instead of twice (docs/PluginGuide.md, "The shared
// preamble").
//
// The preamble is the main file's leading run of `#include <...>` lines (with blank lines and
// comments between them). It is built once, in memory, before the first pass parses the file; the
// first pass and the second (the compile of the rewritten files) both load it instead of parsing
// those headers. It is built only where loading it cannot change what either pass produces:
//   - every file it enters is a system header (no user header: the rewrite may edit those, and
//     their warnings would be reported at a different time);
//   - building it reports no diagnostic at all (else the passes parse the headers as before, and
//     report exactly what they reported before);
//   - the compile has no debug information (a PCH changes the debug info clang emits), no
//     dependency or header-include output (a PCH lists its inputs in another order), no PCH,
//     preamble or modules of its own.
// The preamble instantiates the templates its headers use (-fpch-instantiate-templates), so the
// passes do not instantiate them again: all of them have system-header arguments only.
// The second pass uses it only when the rewritten main file starts with the preamble's bytes and
// no rewritten file is one of the preamble's files; otherwise it parses everything, as before.
//
// Ownership: a SharedPreamble owns the PCH bytes; it must outlive both passes' compiles.
// Thread-safety: none (one compile at a time).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mmsb/rewriter/analyzer.h"

#include "clang/Frontend/CompilerInstance.h"
#include "clang/Frontend/PrecompiledPreamble.h"
#include "llvm/ADT/IntrusiveRefCntPtr.h"
#include "llvm/Support/FileSystem/UniqueID.h"
#include "llvm/Support/VirtualFileSystem.h"

namespace mmsb::rewriter {

class SharedPreamble {
 public:
  // Builds the preamble for `inv`'s main file, whose contents are `main`, or returns nullopt
  // where one cannot be used soundly (see the file comment) or would hold nothing. `why`, when
  // given, receives the reason for a nullopt (for -fplugin-arg-mmsb-verbose).
  static std::optional<SharedPreamble> Build(const clang::CompilerInvocation& inv,
                                             const llvm::MemoryBuffer& main,
                                             std::shared_ptr<clang::PCHContainerOperations> pch_ops,
                                             std::string* why = nullptr);

  // The size in bytes of the main file's prefix the preamble covers.
  std::size_t PrefixSize() const { return pch_->getBounds().Size; }

  // Makes `inv` load the preamble instead of parsing the prefix; returns the file system the
  // compile must use (the real one, with the in-memory PCH overlaid).
  llvm::IntrusiveRefCntPtr<llvm::vfs::FileSystem> Apply(clang::CompilerInvocation& inv) const;

  // The rewritten files leave the preamble valid: the main file (`main_file`) still starts with
  // the preamble's bytes and no other rewritten file is one of the preamble's.
  bool StillValidFor(const RewriteOutput& rewrite, llvm::StringRef main_file) const;

 private:
  explicit SharedPreamble(std::unique_ptr<clang::PrecompiledPreamble> pch,
                          std::vector<llvm::sys::fs::UniqueID> files)
      : pch_(std::move(pch)), files_(std::move(files)) {}

  std::unique_ptr<clang::PrecompiledPreamble> pch_;
  std::vector<llvm::sys::fs::UniqueID> files_;  // every file the preamble entered
};

// The length of `text`'s leading run of lines that are blank, comments or `#include <...>`,
// ending at the end of the last `#include` line (0 when there is none). A line that continues
// with a backslash, a quoted include, any other directive or code ends the run.
std::size_t SystemIncludePrefix(llvm::StringRef text);

}  // namespace mmsb::rewriter
