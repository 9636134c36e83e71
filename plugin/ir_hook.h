// IR capture in the plugin: the glue between the Clang compile and ir-capture.
//
// The plugin owns one IrCaptureHook per compile. It learns the page types each function writes
// from the rewriter's analysis (SetPageWrites), installs the capture passes on the
// CompilerInstance that generates code (Install), and after that compile writes the capture into
// the IR store (Finish). Source lines of functions without debug info come from the AST of the
// plugin's own parse (the code-generating instance frees its AST before the backend runs).
// Capture is on by default; -fplugin-arg-mmsb-no-ir or MMSB_IR_CAPTURE=0 turn it off.
//
// A capture problem (a corrupt or foreign store, a full disk, a lock held too long) never fails
// or crashes the compile: it is reported as a warning and the capture is skipped.
//
// Ownership: the CompilerInstances given to Install must outlive the compile; Finish forgets
// them. Thread-safety: one compile at a time.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>

#include "clang/Basic/Diagnostic.h"
#include "clang/CodeGen/CodeGenAction.h"
#include "clang/Frontend/CompilerInstance.h"
#include "llvm/ADT/StringRef.h"

namespace mmsb::ir {
class CaptureSession;
}

namespace mmsb::plugin {

class DeclLocator;

// Whether `action` generates code: assembly, bitcode, IR, an object, or code generation for its
// diagnostics alone (-emit-codegen-only). The one list of those actions in the plugin.
bool IsCodeGenAction(clang::frontend::ActionKind action);

// Whether `action`, created by clang::CreateFrontendAction on `ci`, is clang's code-generating
// action itself (a clang::CodeGenAction, not wrapped): without RTTI, this is read from the
// options that make clang 19's CreateFrontendAction pick that action or wrap it.
bool IsUnwrappedCodeGenAction(const clang::CompilerInstance& ci);

class IrCaptureHook {
 public:
  IrCaptureHook();
  ~IrCaptureHook();

  // Consumes the hook's plugin arguments ("no-ir"); false for any other argument.
  bool ParseArg(llvm::StringRef arg);
  void set_verbose(bool verbose) { verbose_ = verbose; }
  bool enabled() const { return enabled_; }
  // Whether the next Install also writes the TU's unit note into the object (mmsb/formats/
  // unit_note.h). Only rewritten TUs get one: a TU the plugin does not rewrite compiles to
  // exactly plain clang's object.
  void set_unit_note(bool on) { unit_note_ = on; }

  // The page types each function writes, keyed by mangled name.
  void SetPageWrites(const std::map<std::string, std::set<std::string>>& writes);

  // Registers the capture passes on `codegen`, the instance that runs the backend. `parsed` is
  // the instance whose AST (if it has one) names the functions' source locations.
  void Install(clang::CompilerInstance& codegen, clang::CompilerInstance& parsed);

  // The action `codegen` runs (created by clang::CreateFrontendAction on it). When it is clang's
  // code-generating action, the capture asks its CodeGenerator which declaration each function
  // came from instead of indexing the whole AST of `parsed`. Call after Install, before the
  // action runs.
  void SetCodeGenAction(clang::FrontendAction& action, const clang::CompilerInstance& codegen);

  // After the compile: when it succeeded, writes what the passes captured into the store.
  // `outer` is the compile's original instance; warnings go to `client`.
  void Finish(const clang::CompilerInstance& outer, bool compile_ok,
              clang::DiagnosticConsumer* client);

 private:
  bool enabled_ = true;
  bool verbose_ = false;
  bool unit_note_ = false;
  std::map<std::string, std::set<std::string>> page_writes_;
  std::shared_ptr<ir::CaptureSession> session_;
  clang::CompilerInstance* parsed_ = nullptr;  // between Install and Finish
  std::unique_ptr<DeclLocator> locator_;
  clang::CodeGenAction* codegen_action_ = nullptr;  // between SetCodeGenAction and Finish
};

}  // namespace mmsb::plugin
