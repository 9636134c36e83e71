// The IR normaliser: per defined function, a text that changes only when the function does.
// Rules (docs/IRStore.md, "Normalisation"):
//   - debug records, debug intrinsics, !dbg and other debug-info attachments, !srcloc and the
//     "; Function Attrs:" comment are dropped;
//   - locals (arguments, blocks, values) are renumbered %0, %1, ... by position, names ignored;
//   - attribute groups and metadata are numbered locally (#0, !0, ... by first use) and their
//     contents are listed after the body, so module-wide numbering cannot leak in;
//   - private and unnamed global variables (@.str.N, @__const.f.x, ...) are renamed by content
//     (@.str.<hash>) and their definitions listed after the body; so are uniqued or anonymous
//     struct types (%class.anon.N, %struct.S.N).
// Printing uses one ModuleSlotTracker per module, not one per function.
//
// Ownership: a ModuleNormalizer borrows the module, which must outlive it and stay unchanged
// while it is used. Thread-safety: none.
#pragma once

#include <memory>
#include <string>

#include "llvm/IR/Function.h"
#include "llvm/IR/Module.h"

namespace mmsb::ir {

class ModuleNormalizer {
 public:
  explicit ModuleNormalizer(const llvm::Module& module);
  ~ModuleNormalizer();
  ModuleNormalizer(const ModuleNormalizer&) = delete;
  ModuleNormalizer& operator=(const ModuleNormalizer&) = delete;

  // The normalised text of a defined function of the module.
  std::string Normalize(const llvm::Function& function);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// "external", "internal", "linkonce_odr", ... as LLVM IR spells the linkage.
const char* LinkageName(const llvm::GlobalValue& gv);

}  // namespace mmsb::ir
