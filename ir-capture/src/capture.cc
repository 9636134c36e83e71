#include "mmsb/ir/capture.h"

#include <algorithm>

#include "mmsb/ir/normalize.h"

#include "llvm/IR/DebugInfoMetadata.h"
#include "llvm/IR/InstrTypes.h"
#include "llvm/IR/IntrinsicInst.h"
#include "llvm/IR/PassManager.h"
#include "llvm/IR/StructuralHash.h"
#include "llvm/Support/Path.h"

namespace mmsb::ir {

namespace {

// Names of the functions defined in `f`'s module that `f` calls directly.
std::set<std::string> DefinedCallees(const llvm::Function& f) {
  std::set<std::string> out;
  for (const llvm::BasicBlock& bb : f) {
    for (const llvm::Instruction& inst : bb) {
      const auto* call = llvm::dyn_cast<llvm::CallBase>(&inst);
      if (call == nullptr) continue;
      const llvm::Function* callee = call->getCalledFunction();
      if (callee != nullptr && !callee->isDeclaration() && callee->hasName())
        out.insert(callee->getName().str());
    }
  }
  return out;
}

SourceLocation FromDebugInfo(const llvm::DISubprogram& sp) {
  SourceLocation loc;
  llvm::SmallString<256> path;
  const llvm::StringRef file = sp.getFilename();
  if (!file.empty() && !llvm::sys::path::is_absolute(file)) path = sp.getDirectory();
  llvm::sys::path::append(path, file);
  llvm::sys::path::remove_dots(path, /*remove_dot_dot=*/true);
  loc.file = path.str().str();
  loc.line = sp.getLine();
  return loc;
}

class CapturePass : public llvm::PassInfoMixin<CapturePass> {
 public:
  CapturePass(std::shared_ptr<CaptureSession> session, Stage stage)
      : session_(std::move(session)), stage_(stage) {}

  llvm::PreservedAnalyses run(llvm::Module& m, llvm::ModuleAnalysisManager&) {
    session_->CaptureModule(m, stage_);
    return llvm::PreservedAnalyses::all();
  }

  // Runs at -O0 and on optnone functions too.
  static bool isRequired() { return true; }

 private:
  std::shared_ptr<CaptureSession> session_;
  Stage stage_;
};

// A function of the barrier ABI that plugin-generated code instantiates in the user's TU
// (mmsb::rt::StoreRef's operators, the held marks, their lambdas): MMSB's code, not the user's,
// so it is not captured and never shows up in `mmsb ir diff` as a change of the program.
// Mangled names: _Z, an optional Z (a local entity such as a lambda), N, cv/ref qualifiers,
// then the mmsb::rt scope.
bool IsInstrumentationAbi(llvm::StringRef name) {
  if (!name.consume_front("_Z")) return false;
  name.consume_front("Z");
  if (!name.consume_front("N")) return false;
  name = name.ltrim("rVKRO");
  return name.starts_with("4mmsb2rt");
}

}  // namespace

CaptureSession::CaptureSession(CaptureConfig config) : config_(std::move(config)) {}

void CaptureSession::CaptureModule(const llvm::Module& m, Stage stage) {
  const int s = static_cast<int>(stage);
  std::vector<FunctionRecord>& out = records_[s];
  out.clear();
  captured_[s] = true;
  if (stage == Stage::kPre) pre_callees_.clear();
  ModuleNormalizer normalizer(m);
  for (const llvm::Function& f : m) {
    if (f.isDeclaration() || !f.hasName() || IsInstrumentationAbi(f.getName())) continue;
    FunctionRecord r;
    r.name = f.getName().str();
    r.stage = stage;
    r.text = normalizer.Normalize(f);
    r.structural_hash = llvm::StructuralHash(f, /*DetailedHash=*/true);
    r.blocks = static_cast<std::uint32_t>(f.size());
    for (const llvm::BasicBlock& bb : f) {
      for (const llvm::Instruction& inst : bb) {
        if (!llvm::isa<llvm::DbgInfoIntrinsic>(inst)) ++r.instructions;
      }
    }
    r.linkage = LinkageName(f);
    SourceLocation loc;
    if (const llvm::DISubprogram* sp = f.getSubprogram()) {
      loc = FromDebugInfo(*sp);
    } else if (config_.locate) {
      loc = config_.locate(r.name);
    }
    r.file = std::move(loc.file);
    r.line = loc.line;

    std::set<std::string> pages;
    if (auto it = config_.page_writes.find(r.name); it != config_.page_writes.end())
      pages = it->second;
    if (stage == Stage::kPre) {
      pre_callees_[r.name] = DefinedCallees(f);
    } else if (!config_.page_writes.empty()) {
      // Pages written by code inlined into this function: walk the `pre` call graph from it
      // through the callees it no longer calls.
      const std::set<std::string> now = DefinedCallees(f);
      std::vector<std::string> work;
      std::set<std::string> seen;
      auto push_gone = [&](const std::string& caller) {
        auto it = pre_callees_.find(caller);
        if (it == pre_callees_.end()) return;
        for (const std::string& callee : it->second) {
          if (now.count(callee) == 0 && seen.insert(callee).second) work.push_back(callee);
        }
      };
      push_gone(r.name);
      while (!work.empty() && seen.size() < 4096) {
        const std::string callee = work.back();
        work.pop_back();
        if (auto it = config_.page_writes.find(callee); it != config_.page_writes.end())
          pages.insert(it->second.begin(), it->second.end());
        push_gone(callee);
      }
    }
    r.page_types.assign(pages.begin(), pages.end());
    out.push_back(std::move(r));
  }
}

std::vector<FunctionRecord> CaptureSession::TakeRecords() {
  std::vector<FunctionRecord> all = std::move(records_[0]);
  all.insert(all.end(), std::make_move_iterator(records_[1].begin()),
             std::make_move_iterator(records_[1].end()));
  records_[0].clear();
  records_[1].clear();
  captured_[0] = captured_[1] = false;
  pre_callees_.clear();
  return all;
}

void RegisterCapturePasses(llvm::PassBuilder& pb, std::shared_ptr<CaptureSession> session) {
  pb.registerPipelineStartEPCallback(
      [session](llvm::ModulePassManager& mpm, llvm::OptimizationLevel) {
        mpm.addPass(CapturePass(session, Stage::kPre));
      });
  pb.registerOptimizerLastEPCallback(
      [session](llvm::ModulePassManager& mpm, llvm::OptimizationLevel) {
        mpm.addPass(CapturePass(session, Stage::kPost));
      });
}

}  // namespace mmsb::ir
