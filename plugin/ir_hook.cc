#include "ir_hook.h"

#include <xxhash.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <unordered_map>

#include "mmsb/ir/capture.h"
#include "mmsb/ir/store.h"

#include "clang/AST/ASTContext.h"
#include "clang/AST/Mangle.h"
#include "clang/AST/RecursiveASTVisitor.h"
#include "clang/Basic/SourceManager.h"
#include "clang/Basic/Version.h"
#include "clang/CodeGen/ModuleBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

namespace mmsb::plugin {

// Source locations of the functions of a translation unit, by mangled name, from its AST. Built
// once, on the first question (only functions without debug info ask).
class DeclLocator {
 public:
  explicit DeclLocator(clang::ASTContext& ctx) : ctx_(ctx) {}

  // The location of the definition `fd` (as the walk below names it).
  static ir::SourceLocation Of(const clang::FunctionDecl& fd) {
    const clang::SourceManager& sm = fd.getASTContext().getSourceManager();
    clang::PresumedLoc p = sm.getPresumedLoc(sm.getExpansionLoc(fd.getLocation()));
    if (p.isInvalid()) return {};
    return {AbsoluteFile(p.getFilename()), p.getLine()};
  }

  ir::SourceLocation Find(llvm::StringRef mangled) {
    if (!built_) Build();
    auto it = map_.find(mangled.str());
    return it == map_.end() ? ir::SourceLocation{} : it->second;
  }

 private:
  class Visitor : public clang::RecursiveASTVisitor<Visitor> {
   public:
    explicit Visitor(DeclLocator& l) : l_(l), names_(l.ctx_) {}
    bool shouldVisitTemplateInstantiations() const { return true; }
    bool shouldVisitImplicitCode() const { return true; }

    bool VisitFunctionDecl(clang::FunctionDecl* fd) {
      // Only what code generation can have emitted: non-dependent definitions.
      if (!fd->doesThisDeclarationHaveABody() || fd->isDependentContext() || fd->isInvalidDecl() ||
          fd->isDeleted() || fd->isConsteval())
        return true;
      ir::SourceLocation loc = Of(*fd);
      if (loc.file.empty()) return true;
      std::vector<std::string> names = names_.getAllManglings(fd);
      if (names.empty()) names.push_back(names_.getName(fd));
      for (std::string& n : names) l_.map_.emplace(std::move(n), loc);
      return true;
    }

   private:
    DeclLocator& l_;
    clang::ASTNameGenerator names_;
  };

  static std::string AbsoluteFile(llvm::StringRef file) {
    llvm::SmallString<256> path(file);
    llvm::sys::fs::make_absolute(path);
    llvm::sys::path::remove_dots(path, /*remove_dot_dot=*/true);
    return path.str().str();
  }

  void Build() {
    built_ = true;
    Visitor(*this).TraverseDecl(ctx_.getTranslationUnitDecl());
  }

  clang::ASTContext& ctx_;
  bool built_ = false;
  std::unordered_map<std::string, ir::SourceLocation> map_;
};

bool IsCodeGenAction(clang::frontend::ActionKind action) {
  switch (action) {
    case clang::frontend::EmitAssembly:
    case clang::frontend::EmitBC:
    case clang::frontend::EmitLLVM:
    case clang::frontend::EmitLLVMOnly:
    case clang::frontend::EmitCodeGenOnly:
    case clang::frontend::EmitObj:
      return true;
    default:
      return false;
  }
}

bool IsUnwrappedCodeGenAction(const clang::CompilerInstance& ci) {
#if CLANG_VERSION_MAJOR == 19
  const clang::FrontendOptions& fe = ci.getFrontendOpts();
  if (!IsCodeGenAction(fe.ProgramAction)) return false;
  return !ci.getLangOpts().HLSL && !fe.FixAndRecompile &&
         fe.ARCMTAction == clang::FrontendOptions::ARCMT_None &&
         fe.ObjCMTAction == clang::FrontendOptions::ObjCMT_None && !fe.EmitSymbolGraph &&
         fe.ASTMergeFiles.empty();
#else
  (void)ci;
  return false;  // another clang may wrap the action differently: index the AST instead
#endif
}

namespace {

bool EnvDisables(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return false;
  const llvm::StringRef s(v);
  return s == "0" || s.equals_insensitive("off") || s.equals_insensitive("false") ||
         s.equals_insensitive("no");
}

// The driver compiles `clang++ a.cpp -o app` to a temporary object (<tmp>/a-1b2c3d.o, a new name
// every time); such an output says nothing about the TU and must not become part of its identity.
bool IsDriverTemporary(llvm::StringRef output) {
  llvm::SmallString<128> tmp, real_tmp;
  llvm::sys::path::system_temp_directory(/*ErasedOnReboot=*/true, tmp);
  if (!llvm::sys::fs::real_path(tmp, real_tmp)) tmp = real_tmp;
  if (llvm::sys::path::parent_path(output) != tmp) return false;
  const llvm::StringRef stem = llvm::sys::path::stem(output);
  const size_t dash = stem.rfind('-');
  if (dash == llvm::StringRef::npos || stem.size() - dash - 1 != 6) return false;
  return stem.substr(dash + 1).find_first_not_of("0123456789abcdef") == llvm::StringRef::npos;
}

std::string AbsolutePath(llvm::StringRef path, llvm::StringRef working_dir) {
  if (path.empty() || path == "-") return "";
  llvm::SmallString<256> p(path);
  if (!llvm::sys::path::is_absolute(p)) {
    llvm::SmallString<256> base(working_dir);
    if (base.empty()) llvm::sys::fs::current_path(base);
    llvm::sys::path::append(base, p);
    p = base;
  }
  llvm::SmallString<256> real;
  if (!llvm::sys::fs::real_path(p, real)) return real.str().str();
  llvm::sys::path::remove_dots(p, /*remove_dot_dot=*/true);
  return p.str().str();
}

// Hash of the compile flags with this TU's own paths left out, so that every TU of a build
// compiled with the same flags has the same hash.
std::string FlagsHash(const clang::CompilerInstance& ci, llvm::StringRef input) {
  static const llvm::StringRef kWithValue[] = {"-o",
                                               "-MF",
                                               "-MT",
                                               "-MQ",
                                               "-dependency-file",
                                               "-main-file-name",
                                               "-split-dwarf-file",
                                               "-split-dwarf-output",
                                               "-coverage-notes-file",
                                               "-coverage-data-file"};
  static const llvm::StringRef kPrefixes[] = {
      "-fdebug-compilation-dir=", "-fcoverage-compilation-dir=", "-ffile-compilation-dir=",
      "-fplugin-arg-mmsb-"};
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  const std::vector<std::string>& args = ci.getCodeGenOpts().CommandLineArgs;
  for (size_t i = 0; i < args.size(); ++i) {
    const llvm::StringRef a = args[i];
    if (a == input) continue;
    bool skip_value = false;
    for (llvm::StringRef w : kWithValue) skip_value = skip_value || a == w;
    if (skip_value) {
      ++i;
      continue;
    }
    bool skip = false;
    for (llvm::StringRef p : kPrefixes) skip = skip || a.starts_with(p);
    if (skip) continue;
    XXH3_64bits_update(st, a.data(), a.size());
    XXH3_64bits_update(st, "\0", 1);
  }
  const std::uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// The name a unit note gives the TU: the main file as the compiler was given it (what the object's
// STT_FILE symbol already says), with the first matching -ffile-prefix-map/-fdebug-prefix-map
// applied as clang applies it to debug info, so that a build made reproducible across
// directories stays so.
std::string UnitSource(llvm::StringRef file, const clang::CodeGenOptions& cg) {
  llvm::SmallString<256> path(file);
  for (auto it = cg.DebugPrefixMap.rbegin(); it != cg.DebugPrefixMap.rend(); ++it) {
    if (llvm::sys::path::replace_path_prefix(path, it->first, it->second)) break;
  }
  return path.str().str();
}

// Reports `message` as a warning through `client`. The inner compile has ended the consumer's
// source file, so open a (location-less) one around the report.
void Warn(const clang::CompilerInstance& outer, clang::DiagnosticConsumer* client,
          const std::string& message) {
  if (client == nullptr) {
    llvm::errs() << "warning: mmsb: " << message << "\n";
    return;
  }
  if (outer.getDiagnosticOpts().IgnoreWarnings) return;
  auto ids = llvm::makeIntrusiveRefCnt<clang::DiagnosticIDs>();
  auto opts = llvm::makeIntrusiveRefCnt<clang::DiagnosticOptions>();
  clang::DiagnosticsEngine diags(ids, opts, client, /*ShouldOwnClient=*/false);
  client->BeginSourceFile(outer.getLangOpts(), nullptr);
  diags.Report(diags.getCustomDiagID(clang::DiagnosticsEngine::Warning, "mmsb: %0")) << message;
  client->EndSourceFile();
}

// The location of the function IRGen emitted as `mangled`, from the declaration it emitted it
// for: the definition in the compile that generated the code (the same file and line as the
// first pass's, since the rewrite keeps every line where it was; and what -g's DISubprogram
// names). Nothing when the walk over the parsed AST must answer: no code generator to ask, or
// a mangled name IRGen did not make from a declaration's name (thunks, TLS wrappers).
std::optional<ir::SourceLocation> FromCodeGenerator(clang::CodeGenAction* action,
                                                    llvm::StringRef mangled) {
  if (action == nullptr) return std::nullopt;
  // Only an AST input has a code generator (LLVM IR input goes straight to the back end).
  if (action->getCurrentFileKind().getLanguage() == clang::Language::LLVM_IR ||
      !action->getCompilerInstance().hasASTContext())
    return std::nullopt;
  clang::CodeGenerator* gen = action->getCodeGenerator();
  if (gen == nullptr) return std::nullopt;
  const clang::Decl* d = gen->GetDeclForMangledName(mangled);
  if (d == nullptr) {
    // Every function IRGen emits for a declaration is named through CodeGenModule's
    // getMangledName, which records the name: the others are IRGen's own helpers (global
    // initialisers, __clang_call_terminate), which no declaration's mangling names, so the walk
    // would find nothing either; a thunk or TLS wrapper (mangled "_ZT...") is named by the
    // mangler directly, and the walk names its method.
    if (mangled.starts_with("_Z")) return std::nullopt;
    return ir::SourceLocation{};
  }
  const auto* fd = llvm::dyn_cast<clang::FunctionDecl>(d);
  if (fd == nullptr) return std::nullopt;
  return DeclLocator::Of(*fd);
}

}  // namespace

IrCaptureHook::IrCaptureHook() : enabled_(!EnvDisables(ir::kCaptureEnv)) {}

IrCaptureHook::~IrCaptureHook() = default;

bool IrCaptureHook::ParseArg(llvm::StringRef arg) {
  if (arg == "no-ir") {
    enabled_ = false;
    return true;
  }
  return false;
}

void IrCaptureHook::SetPageWrites(const std::map<std::string, std::set<std::string>>& writes) {
  page_writes_ = writes;
}

void IrCaptureHook::Install(clang::CompilerInstance& codegen, clang::CompilerInstance& parsed) {
  if (!enabled_) return;
  parsed_ = &parsed;
  ir::CaptureConfig config;
  config.page_writes = page_writes_;
  config.unit_note = unit_note_;
  config.unit_salt = clang::getClangFullVersion();
  const clang::FrontendOptions& fe = parsed.getFrontendOpts();
  if (!fe.Inputs.empty() && fe.Inputs[0].isFile())
    config.unit_source = UnitSource(fe.Inputs[0].getFile(), codegen.getCodeGenOpts());
  config.locate = [this](llvm::StringRef mangled) -> ir::SourceLocation {
    if (std::optional<ir::SourceLocation> loc = FromCodeGenerator(codegen_action_, mangled))
      return *loc;
    // The plugin's own parse: its AST lives until the plugin action ends.
    if (parsed_ == nullptr || !parsed_->hasASTContext()) return {};
    if (!locator_) locator_ = std::make_unique<DeclLocator>(parsed_->getASTContext());
    return locator_->Find(mangled);
  };
  session_ = std::make_shared<ir::CaptureSession>(std::move(config));
  std::shared_ptr<ir::CaptureSession> session = session_;
  codegen.getCodeGenOpts().PassBuilderCallbacks.push_back(
      [session](llvm::PassBuilder& pb) { ir::RegisterCapturePasses(pb, session); });
}

void IrCaptureHook::SetCodeGenAction(clang::FrontendAction& action,
                                     const clang::CompilerInstance& codegen) {
  codegen_action_ = nullptr;
  if (!enabled_ || !IsUnwrappedCodeGenAction(codegen)) return;
  codegen_action_ = static_cast<clang::CodeGenAction*>(&action);
  // The declarations must outlive the back end, where the capture asks for them.
  const_cast<clang::CompilerInstance&>(codegen).getCodeGenOpts().ClearASTBeforeBackend = false;
}

void IrCaptureHook::Finish(const clang::CompilerInstance& outer, bool compile_ok,
                           clang::DiagnosticConsumer* client) {
  std::shared_ptr<ir::CaptureSession> session = std::move(session_);
  parsed_ = nullptr;
  codegen_action_ = nullptr;
  locator_.reset();
  if (!session || !compile_ok) return;
  const bool pre = session->captured(ir::Stage::kPre);
  const bool post = session->captured(ir::Stage::kPost);
  if (!pre && !post) return;  // nothing generated code (-fsyntax-only, -E, ...)
  try {
    const clang::FrontendOptions& fe = outer.getFrontendOpts();
    llvm::SmallString<256> cwd(outer.getFileSystemOpts().WorkingDir);
    if (cwd.empty()) llvm::sys::fs::current_path(cwd);
    ir::TuCapture capture;
    llvm::StringRef input;
    if (!fe.Inputs.empty() && fe.Inputs[0].isFile()) input = fe.Inputs[0].getFile();
    capture.source = AbsolutePath(input, cwd);
    capture.output = AbsolutePath(fe.OutputFile, cwd);
    if (IsDriverTemporary(capture.output)) capture.output.clear();
    capture.compiler = clang::getClangFullVersion();
    capture.flags_hash = FlagsHash(outer, input);
    capture.unit_hash = session->unit_hash();
    capture.functions = session->TakeRecords();
    if (capture.source.empty()) {  // standard input: no TU identity to key captures by
      if (verbose_) llvm::errs() << "mmsb: IR capture skipped: the source is not a file\n";
      return;
    }

    llvm::SmallString<256> start(capture.output);
    if (start.empty()) {
      start = cwd;
    } else {
      llvm::sys::path::remove_filename(start);
    }
    const std::string path = ir::ResolveStorePath(start.str().str(), cwd.str().str());
    auto from_env = ir::StoreOptionsFromEnv();
    if (!from_env.ok()) {
      Warn(outer, client, "IR capture skipped: " + from_env.status().ToString());
      return;
    }
    ir::StoreOptions options = *from_env;
    if (std::getenv("MMSB_IR_TEST_KILL_IN_COMMIT") != nullptr) {
      // Fault injection for the kill test: die in the middle of the write transaction.
      options.fault_in_transaction = [] { std::raise(SIGKILL); };
    }
    auto store = ir::Store::Open(path, ir::Store::Mode::kReadWrite, options);
    if (!store.ok()) {
      Warn(outer, client, "IR capture skipped: " + store.status().ToString());
      return;
    }
    ir::GenerationRequest request;
    if (const char* g = std::getenv(ir::kGenerationEnv); g != nullptr)
      request.explicit_generation = g;
    auto gen = (*store)->AddCapture(capture, request);
    if (!gen.ok()) {
      Warn(outer, client, "IR capture skipped: " + gen.status().ToString());
      return;
    }
    if (verbose_) {
      llvm::errs() << "mmsb: captured " << capture.functions.size() << " function versions ("
                   << (pre ? "pre" : "") << (pre && post ? "+" : "") << (post ? "post" : "")
                   << ") of " << capture.source << " into " << path << ", generation " << *gen
                   << "\n";
    }
  } catch (const std::exception& e) {
    Warn(outer, client, std::string("IR capture skipped: ") + e.what());
  } catch (...) {
    Warn(outer, client, "IR capture skipped: unexpected error");
  }
}

}  // namespace mmsb::plugin
