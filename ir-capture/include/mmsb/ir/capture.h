// The capture passes: at pipeline start (`pre`) and at optimizer last (`post`), every defined
// function of the module is normalised and recorded with its structural hash, counts, linkage,
// source location and the page types it writes. Both passes are required (they run at -O0) and
// never change the module.
//
// A CaptureSession belongs to one compile: the passes fill it while the compile runs, and the
// host (the plugin) takes the records afterwards and writes them to the store. The session is
// shared between the pass builder callbacks and the host through a shared_ptr.
//
// Thread-safety: one compile at a time per session (LLVM runs a module pipeline on one thread).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "mmsb/ir/record.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/IR/Module.h"
#include "llvm/Passes/PassBuilder.h"

namespace mmsb::ir {

struct SourceLocation {
  std::string file;  // "" when unknown
  unsigned line = 0;
};

struct CaptureConfig {
  // [[mmsb::page]] types each function writes, keyed by mangled name (the rewriter's analysis).
  std::map<std::string, std::set<std::string>> page_writes;
  // Where a function without debug info is defined; may be empty. Called during the passes.
  std::function<SourceLocation(llvm::StringRef mangled)> locate;
  // Write the unit note into the module after `post` (ELF targets only), naming the TU
  // `unit_source` (the main file as the compiler was given it).
  bool unit_note = false;
  std::string unit_source;
  // Hashed before the IR: what else decides the object code (the compiler's version).
  std::string unit_salt;
};

class CaptureSession {
 public:
  explicit CaptureSession(CaptureConfig config);

  CaptureConfig& config() { return config_; }

  // Captures every defined function of `module` at `stage`, replacing an earlier capture of the
  // same stage. At `post`, a function's page types also include those of the functions it
  // called at `pre` and no longer calls (they were inlined into it).
  void CaptureModule(const llvm::Module& module, Stage stage);

  bool captured(Stage stage) const { return captured_[static_cast<int>(stage)]; }

  // The TU's content hash, computed when `post` is captured (0 before): XXH3-64 of the salt, the
  // module's target, its inline asm, the normalised text of every defined function at `pre` and
  // at `post` (the instrumentation's own functions too, at `post`), and every defined global
  // variable and alias as `post` leaves them. A function of the input alone (never of the store,
  // the time or the output's name), so the same input gives the same hash and the same object.
  std::uint64_t unit_hash() const { return unit_hash_; }

  // The records of both stages (pre first); the session is empty afterwards.
  std::vector<FunctionRecord> TakeRecords();

 private:
  CaptureConfig config_;
  std::vector<FunctionRecord> records_[2];
  bool captured_[2] = {false, false};
  std::uint64_t unit_hash_ = 0;
  std::map<std::string, std::set<std::string>> pre_callees_;  // defined callees at `pre`
};

// Adds the capture passes to `pb`: `pre` at PipelineStart, `post` at OptimizerLast. Call it from
// a clang::CodeGenOptions::PassBuilderCallbacks entry of the compile that generates code.
void RegisterCapturePasses(llvm::PassBuilder& pb, const std::shared_ptr<CaptureSession>& session);

}  // namespace mmsb::ir
