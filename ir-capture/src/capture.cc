#include "mmsb/ir/capture.h"

#include <xxhash.h>

#include <algorithm>

#include "mmsb/formats/unit_note.h"
#include "mmsb/ir/normalize.h"

#include "llvm/IR/DebugInfoMetadata.h"
#include "llvm/IR/InstrTypes.h"
#include "llvm/IR/IntrinsicInst.h"
#include "llvm/IR/ModuleSlotTracker.h"
#include "llvm/IR/PassManager.h"
#include "llvm/IR/StructuralHash.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Triple.h"
#include "llvm/Transforms/Utils/ModuleUtils.h"

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
  // NOLINTNEXTLINE(readability-identifier-naming): the name LLVM's pass manager looks up.
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

// The unit note's global (never captured, never hashed).
constexpr char kUnitNoteGlobal[] = "__mmsb_unit_note";

// XXH3-64 over length-prefixed fields, so that no two different field lists hash alike by
// concatenation.
class FieldHash {
 public:
  FieldHash() : state_(XXH3_createState()) { XXH3_64bits_reset(state_); }
  ~FieldHash() { XXH3_freeState(state_); }
  FieldHash(const FieldHash&) = delete;
  FieldHash& operator=(const FieldHash&) = delete;

  void Add(llvm::StringRef field) {
    const std::uint64_t n = field.size();
    XXH3_64bits_update(state_, &n, sizeof n);
    XXH3_64bits_update(state_, field.data(), field.size());
  }
  void Add(std::uint64_t v) { XXH3_64bits_update(state_, &v, sizeof v); }
  std::uint64_t Digest() const { return XXH3_64bits_digest(state_); }

 private:
  XXH3_state_t* state_;
};

// Module-level content the function texts do not hold: defined global variables (with their
// initialisers, as LLVM prints them) and aliases, in module order.
void HashGlobals(const llvm::Module& m, FieldHash& h) {
  llvm::ModuleSlotTracker mst(&m, /*ShouldInitializeAllMetadata=*/false);
  std::string text;
  for (const llvm::GlobalVariable& gv : m.globals()) {
    if (gv.isDeclaration() || gv.getName() == kUnitNoteGlobal) continue;
    text.clear();
    llvm::raw_string_ostream os(text);
    os << gv.getName() << ' ' << static_cast<unsigned>(gv.getLinkage()) << ' '
       << static_cast<unsigned>(gv.getVisibility()) << ' '
       << static_cast<unsigned>(gv.getThreadLocalMode()) << ' '
       << static_cast<unsigned>(gv.getUnnamedAddr()) << ' ' << gv.isConstant() << ' '
       << gv.getSection() << ' ' << gv.getAlign().valueOrOne().value() << ' ';
    gv.getInitializer()->print(os, mst);
    h.Add(text);
  }
  for (const llvm::GlobalAlias& ga : m.aliases()) {
    text.clear();
    llvm::raw_string_ostream os(text);
    os << ga.getName() << ' ' << static_cast<unsigned>(ga.getLinkage()) << ' ';
    ga.getAliasee()->print(os, mst);
    h.Add(text);
  }
}

// Writes the TU's unit note (mmsb/formats/unit_note.h) into the module, after `post`: a private
// constant in section .note.mmsb.unit, laid out as an ELF note, kept by llvm.compiler.used.
class UnitNotePass : public llvm::PassInfoMixin<UnitNotePass> {
 public:
  explicit UnitNotePass(std::shared_ptr<CaptureSession> session) : session_(std::move(session)) {}

  llvm::PreservedAnalyses run(llvm::Module& m, llvm::ModuleAnalysisManager&) {
    const CaptureConfig& config = session_->config();
    if (!config.unit_note || session_->unit_hash() == 0 || m.getNamedGlobal(kUnitNoteGlobal))
      return llvm::PreservedAnalyses::all();
    // A note section is an ELF thing; GPU code objects are not linked into the program.
    const llvm::Triple triple(m.getTargetTriple());
    if (!triple.isOSBinFormatELF() || triple.isNVPTX() || triple.isAMDGPU() || triple.isSPIRV())
      return llvm::PreservedAnalyses::all();
    llvm::LLVMContext& ctx = m.getContext();
    const std::string desc = unit_note::EncodeDesc(session_->unit_hash(), config.unit_source);
    std::string name(unit_note::kName, unit_note::kNameSize);
    name.resize(8, '\0');  // the name, padded to 4
    std::string padded_desc = desc;
    padded_desc.resize((desc.size() + 3) / 4 * 4, '\0');
    llvm::Type* i32 = llvm::Type::getInt32Ty(ctx);
    llvm::Constant* fields[] = {
        llvm::ConstantInt::get(i32, unit_note::kNameSize),
        llvm::ConstantInt::get(i32, desc.size()),
        llvm::ConstantInt::get(i32, unit_note::kType),
        llvm::ConstantDataArray::getString(ctx, name, /*AddNull=*/false),
        llvm::ConstantDataArray::getString(ctx, padded_desc, /*AddNull=*/false),
    };
    llvm::Constant* init = llvm::ConstantStruct::getAnon(ctx, fields, /*Packed=*/true);
    auto* gv = new llvm::GlobalVariable(m, init->getType(), /*isConstant=*/true,
                                        llvm::GlobalValue::PrivateLinkage, init, kUnitNoteGlobal);
    gv->setSection(unit_note::kSection);
    gv->setAlignment(llvm::Align(4));
    llvm::appendToCompilerUsed(m, {gv});
    return llvm::PreservedAnalyses::none();
  }

  // NOLINTNEXTLINE(readability-identifier-naming): the name LLVM's pass manager looks up.
  static bool isRequired() { return true; }

 private:
  std::shared_ptr<CaptureSession> session_;
};

}  // namespace

CaptureSession::CaptureSession(CaptureConfig config) : config_(std::move(config)) {}

void CaptureSession::CaptureModule(const llvm::Module& m, Stage stage) {
  const int s = static_cast<int>(stage);
  std::vector<FunctionRecord>& out = records_[s];
  out.clear();
  captured_[s] = true;
  if (stage == Stage::kPre) pre_callees_.clear();
  ModuleNormalizer normalizer(m);
  std::vector<std::pair<std::string, std::string>> abi;  // at `post`: the instrumentation's code
  for (const llvm::Function& f : m) {
    if (f.isDeclaration() || !f.hasName()) continue;
    if (IsInstrumentationAbi(f.getName())) {
      if (stage == Stage::kPost) abi.emplace_back(f.getName().str(), normalizer.Normalize(f));
      continue;
    }
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
  if (stage != Stage::kPost) return;
  FieldHash h;
  h.Add("mmsb-unit/1");
  h.Add(config_.unit_salt);
  h.Add(m.getTargetTriple());
  h.Add(m.getDataLayoutStr());
  h.Add(m.getModuleInlineAsm());
  for (const std::vector<FunctionRecord>& records : records_) {
    h.Add(records.size());
    for (const FunctionRecord& r : records) {
      h.Add(r.name);
      h.Add(r.text);
    }
  }
  h.Add(abi.size());
  for (const auto& [name, text] : abi) {
    h.Add(name);
    h.Add(text);
  }
  HashGlobals(m, h);
  unit_hash_ = h.Digest();
  if (unit_hash_ == 0) unit_hash_ = 1;  // 0 means "none" in a note and in the store
}

std::vector<FunctionRecord> CaptureSession::TakeRecords() {
  std::vector<FunctionRecord> all = std::move(records_[0]);
  all.insert(all.end(), std::make_move_iterator(records_[1].begin()),
             std::make_move_iterator(records_[1].end()));
  records_[0].clear();
  records_[1].clear();
  captured_[0] = captured_[1] = false;
  unit_hash_ = 0;
  pre_callees_.clear();
  return all;
}

void RegisterCapturePasses(llvm::PassBuilder& pb, const std::shared_ptr<CaptureSession>& session) {
  pb.registerPipelineStartEPCallback(
      [session](llvm::ModulePassManager& mpm, llvm::OptimizationLevel) {
        mpm.addPass(CapturePass(session, Stage::kPre));
      });
  pb.registerOptimizerLastEPCallback(
      [session](llvm::ModulePassManager& mpm, llvm::OptimizationLevel) {
        mpm.addPass(CapturePass(session, Stage::kPost));
        mpm.addPass(UnitNotePass(session));
      });
}

}  // namespace mmsb::ir
