// PageVisitor: the traversal of one translation unit behind PageAnalyzer (see
// mmsb/rewriter/analyzer.h). One class, its methods defined by concern, as clang's Sema is:
//   page_visitor.cc       dispatch: stores, calls, declarations; findings and remarks
//   page_record_checks.cc page record requirements, instrumentation, untracked uses
//   escape_checks.cc      pointers and references into pages that leave what is followed
//   store_classifier.cc   page storage and pointers, followed locals, callees (member_callees.h)
//   loop_marks.cc         loop range marks: counted loops, range-for, what may commit
//   library_model.cc      library functions that write through, hand through or keep storage
//   edit_recorder.cc      edit sites, file ranges, barrier wrapping, insertion
//   layout_descriptor.cc  layout descriptors of page types
//   static_pages.cc       static page variables: section placement and registration
//
// Internal to libmmsb_rewriter. Thread-safety: none; one visitor per analyzer run.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "mmsb/rewriter/analyzer.h"

#include "clang/AST/Mangle.h"
#include "clang/AST/RecursiveASTVisitor.h"

namespace mmsb::rewriter {

// Edit sites are deduplicated per (file range, kind), so a template instantiated many times gets
// each edit once. Two forms of one rewrite share a kind: the first one recorded wins.
enum SiteKind : int {
  kSiteStore = 1,
  kSiteThisMember = 10,
  kSitePointerBase = 11,
  kSiteTransaction = 20,
  kSiteHandler = 21,
  kSiteEscapePointer = 30,
  kSiteEscapeRef = 31,
  kSiteMarkPointer = 32,
  kSiteMarkRef = 33,
  kSiteAtomic = 34,
  kSiteMacroEscape = 40,
  kSiteRecord = 50,
  kSiteSection = 60,
  kSiteLocalRegistrar = 61,
  kSiteAsmLabel = 62,
  kSiteLoopMark = 70,
  kSiteLoopScope = 71,
  kSiteAsmEscape = 80,
  kSiteStaticEscape = 2000,     // + a sequence number: several declarators may share one `;`
  kSiteMemberRegistrar = 1000,  // + a sequence number: several may share a class's closing brace
};

// Text helpers (edit_recorder.cc).
std::string Quote(llvm::StringRef s);
// Generated declarations are compiled with the user's warning flags: they go out silenced, so that
// -Weverything -Werror builds stay as they were: `code` between pragmas that push, ignore every
// warning, and pop. (Barrier expressions need no such wrapping.)
std::string WithoutWarnings(const std::string& code);
// `s` as a C++ string literal: quoted, with quotes, backslashes and control characters escaped.
std::string CxxStringLiteral(llvm::StringRef s);

// The symbol of a page variable with external linkage whose mangled name is `mangled`: distinct
// from the plain one, so that a translation unit that declares the variable without
// [[mmsb::page]] (or is compiled without the plugin) fails to link instead of writing the page
// untracked. See docs/PluginGuide.md, "Page variables across translation units".
std::string PageSymbol(llvm::StringRef mangled);

// `d` is declared inside namespace ::mmsb.
bool IsInMmsbNamespace(const clang::Decl* d);
// `e` without full-expression, temporary-materialisation and temporary-binding wrappers.
const clang::Expr* IgnoreFullExprWrappers(const clang::Expr* e);

// The traversal. Visits template instantiations so that a store in a template is rewritten when
// any instantiation writes page storage; the edit goes to the (shared) pattern text once.
class PageVisitor : public clang::RecursiveASTVisitor<PageVisitor> {
  using Base = clang::RecursiveASTVisitor<PageVisitor>;

 public:
  explicit PageVisitor(PageAnalyzer& a)
      : a_(a),
        ctx_(a.ctx_),
        sm_(ctx_.getSourceManager()),
        lo_(ctx_.getLangOpts()),
        mangle_(ctx_.createMangleContext()) {}

  bool shouldVisitTemplateInstantiations() const { return true; }
  bool shouldVisitImplicitCode() const { return false; }

  bool TraverseDecl(clang::Decl* d);

  bool TraverseLambdaExpr(clang::LambdaExpr* le);

  bool TraverseStmt(clang::Stmt* s, DataRecursionQueue* = nullptr);

  bool TraverseForStmt(clang::ForStmt* fs, DataRecursionQueue* = nullptr);

  // Member initialisers bind like variable initialisers: `: ref_(page.x[0])` escapes.
  bool TraverseConstructorInitializer(clang::CXXCtorInitializer* init);

  // ---- stores ---------------------------------------------------------------------------

  bool VisitBinaryOperator(clang::BinaryOperator* bo);

  bool VisitUnaryOperator(clang::UnaryOperator* uo);

  bool VisitCXXOperatorCallExpr(clang::CXXOperatorCallExpr* oc);

  // Non-const member calls on page storage mark the object's whole range.
  bool VisitCXXMemberCallExpr(clang::CXXMemberCallExpr* mc);

  // __atomic_* / __c11_atomic_* builtins write through their pointer operands.
  bool VisitAtomicExpr(clang::AtomicExpr* ae);

  // ---- escapes --------------------------------------------------------------------------

  bool VisitCallExpr(clang::CallExpr* ce);

  bool VisitCXXConstructExpr(clang::CXXConstructExpr* cc);

  bool VisitCXXNewExpr(clang::CXXNewExpr* ne);

  bool VisitReturnStmt(clang::ReturnStmt* rs);

  // Aggregate initialisation binds each element to its member's type (a reference member is
  // a stored reference).
  bool VisitInitListExpr(clang::InitListExpr* il);

  bool VisitCXXParenListInitExpr(clang::CXXParenListInitExpr* pl);
  bool VisitParenListExpr(clang::ParenListExpr* pl);
  bool VisitCXXUnresolvedConstructExpr(clang::CXXUnresolvedConstructExpr* ce);

  // A range-for whose loop variable is a reference into page storage: the variable is followed
  // like any local reference, so the loop body's stores through it get barriers.
  bool VisitCXXForRangeStmt(clang::CXXForRangeStmt* fr);

  // Inline asm whose outputs are page storage (`"=m"(g.a[2])`, `"+r"(g.n)`), or that may write
  // through a page pointer operand (a "memory" clobber): the page is marked escaped before the
  // statement runs, with a warning.
  bool VisitGCCAsmStmt(clang::GCCAsmStmt* as);

  // ---- declarations ---------------------------------------------------------------------

  bool VisitCXXRecordDecl(clang::CXXRecordDecl* rd);

  bool VisitVarDecl(clang::VarDecl* vd);

  bool VisitFieldDecl(clang::FieldDecl* fd);

  bool VisitFunctionDecl(clang::FunctionDecl* fd);

 private:
  // ---- local variables the rewriter follows -----------------------------------------------

  // Collects, for a function body, the local pointer variables and how they are used: every
  // value assigned to them, and whether their address is taken or they are bound to a
  // reference (then their later uses cannot be followed).
  class LocalScan : public clang::RecursiveASTVisitor<LocalScan> {
   public:
    bool shouldVisitImplicitCode() const { return false; }
    bool shouldVisitTemplateInstantiations() const { return false; }

    bool TraverseStmt(clang::Stmt* s, DataRecursionQueue* = nullptr) {
      if (s == nullptr) return true;
      stack_.push_back(s);
      bool ok = clang::RecursiveASTVisitor<LocalScan>::TraverseStmt(s, nullptr);
      stack_.pop_back();
      return ok;
    }

    bool VisitVarDecl(clang::VarDecl* vd) {
      if (!IsCandidate(vd)) return true;
      candidates.insert(vd);
      if (const clang::Expr* init = vd->getInit()) sources[vd].push_back(init);
      return true;
    }

    bool VisitDeclRefExpr(clang::DeclRefExpr* dre) {
      const auto* vd = llvm::dyn_cast<clang::VarDecl>(dre->getDecl());
      if (!IsCandidate(vd)) return true;
      const clang::Stmt* child = dre;
      const clang::Stmt* parent = nullptr;
      for (size_t i = stack_.size() - 1; i-- > 0;) {
        parent = stack_[i];
        if (!llvm::isa<clang::ParenExpr>(parent)) break;
        child = parent;
      }
      if (parent == nullptr) return true;
      if (const auto* ic = llvm::dyn_cast<clang::ImplicitCastExpr>(parent)) {
        if (ic->getCastKind() == clang::CK_LValueToRValue) return true;
      } else if (const auto* bo = llvm::dyn_cast<clang::BinaryOperator>(parent)) {
        if (bo->isAssignmentOp() && bo->getLHS()->IgnoreParens() == dre) {
          if (bo->getOpcode() == clang::BO_Assign) sources[vd].push_back(bo->getRHS());
          return true;  // p = ..., p += n, p -= n
        }
      } else if (const auto* uo = llvm::dyn_cast<clang::UnaryOperator>(parent)) {
        if (uo->isIncrementDecrementOp()) return true;
      } else if (llvm::isa<clang::UnaryExprOrTypeTraitExpr>(parent) ||
                 llvm::isa<clang::LambdaExpr>(parent)) {
        return true;  // sizeof(p); a capture (the lambda's body is scanned too)
      }
      (void)child;
      disqualified.insert(vd);
      return true;
    }

    static bool IsCandidate(const clang::VarDecl* vd) {
      if (vd == nullptr || llvm::isa<clang::ParmVarDecl>(vd) || !vd->isLocalVarDecl()) return false;
      const clang::QualType t = vd->getType();
      return t->isPointerType() && !t->getPointeeType()->isFunctionType();
    }

    std::set<const clang::VarDecl*> candidates;
    std::set<const clang::VarDecl*> disqualified;
    std::map<const clang::VarDecl*, std::vector<const clang::Expr*>> sources;

   private:
    std::vector<const clang::Stmt*> stack_;
  };

  // Adds the local pointer variables of `body` that hold page pointers and whose uses can all be
  // followed to followed_ptrs_. Must run before the body is traversed.
  void ScanLocals(clang::Stmt* body);

  // A local reference bound to page storage is followed: stores through it get barriers, and
  // binding it is not an escape. Structured bindings are followed when every binding resolves.
  bool FollowReference(const clang::VarDecl* vd);

  // `e` names a local variable whose uses are followed (its new value is not an escape).
  bool IsFollowedVariable(const clang::Expr* e) const;

  // ---- callees ------------------------------------------------------------------------------

  // The name of a standard or C library function (or std::ranges function object), or "".
  llvm::StringRef LibraryName(const clang::FunctionDecl* fd) const;

  bool IsNonRetaining(const clang::FunctionDecl* fd) const;

  bool IsTransparent(const clang::FunctionDecl* fd) const;

  // A member function whose own stores are instrumented: a member of a page type defined in this
  // translation unit outside system headers. Calling it needs no mark.
  bool CalleeIsInstrumented(const clang::CXXMethodDecl* md) const;

  // A member function called on page storage may keep its object's address beyond the call (the
  // held mark's invariant does not hold: it is escaped instead). False for a member of a page
  // type (rewritten where it is defined), for a member of an inert standard value type
  // (LibraryMemberKeepsNothing) and for a non-virtual callee whose body this TU has (in a user
  // or a system header alike), where every use of `this` is a member read, a store to a member
  // (through members and subscripts), a call of a member function that itself may not keep
  // `this`, or `return *this`. Anything else (`this` or a member's address stored, passed or
  // captured, a body not seen, a virtual call, calls nested too deep to follow) may keep it.
  bool CalleeMayKeepThis(const clang::CXXMethodDecl* md, unsigned depth = 0) const;

  // Escapes the page that `base` (the object of a member call on page storage) lies in when the
  // callee may keep its address; an escape that cannot be placed is reported as unrewritable.
  void EscapeIfKept(const clang::CXXMethodDecl* md, const clang::Expr* base,
                    clang::SourceLocation loc);

  // `e` is a call that marks page storage itself (a non-const member call on page storage that
  // returns a reference into it): a store through its result needs no second barrier.
  bool IsMarkingCall(const clang::Expr* e) const;

  // The object of a member call (or member operator call) is page storage.
  bool IsPageObjectOfCall(const clang::CallExpr* ce) const;

  // ---- classification ---------------------------------------------------------------------

  // `e` designates page storage (or part of it).
  bool IsPageStorage(const clang::Expr* e) const;

  // `e` is a pointer into page storage.
  bool IsPagePointer(const clang::Expr* e) const;

  bool InConstexprFunction() const;

  // The current code is a template instantiation: its edits land in the template's text, which
  // other instantiations (maybe over plain types) share.
  bool InInstantiation() const;
  // The statement directly above `s` in the current traversal (nullptr if none is on the stack).
  const clang::Stmt* TraversalParent(const clang::Stmt* s) const;

  // The barrier forms for the current context (see mmsb/instrument.h).
  std::pair<std::string, std::string> LvalueBarrier() const;

  std::string PointerBarrierOpen() const;
  // The forms that mark page storage handed to uninstrumented code (a member call's object, a
  // library call's argument) now and again at the end of the full-expression (mmsb/held_marks.h);
  // the marks made once in constexpr functions, where a temporary of class type cannot be made.
  std::string HeldRefOpen() const;
  std::string HeldPointerOpen() const;
  bool InExplicitConstexprFunction() const;

  static bool ParentIsInstantiation(const clang::Decl* d);

  // ---- loop range marks -------------------------------------------------------------------
  //
  // A counted loop `for (i = A; i < B; ++i)` whose stores write `arr[i]` (or `arr[i].f`) of a
  // page array `arr` that cannot change during the loop gets one mark of arr[A, B) before the
  // loop instead of a barrier per store, so the loop compiles as without the plugin (it stays
  // vectorisable). Likewise a range-for over a page array. Marks hold until the next commit, so
  // the loop body must not be able to commit: it may only call library code that gets no
  // callable, and construct or destroy nothing user-defined.

  // How a local variable or parameter is used inside a statement.
  class VarUses : public clang::RecursiveASTVisitor<VarUses> {
   public:
    bool shouldVisitImplicitCode() const { return false; }
    bool TraverseStmt(clang::Stmt* s, DataRecursionQueue* = nullptr) {
      if (s == nullptr) return true;
      stack_.push_back(s);
      bool ok = clang::RecursiveASTVisitor<VarUses>::TraverseStmt(s, nullptr);
      stack_.pop_back();
      return ok;
    }
    bool VisitDeclRefExpr(clang::DeclRefExpr* dre) {
      const auto* vd = llvm::dyn_cast<clang::VarDecl>(dre->getDecl());
      if (vd == nullptr) return true;
      const clang::Stmt* child = dre;
      const clang::Stmt* parent = nullptr;
      for (size_t i = stack_.size() - 1; i-- > 0;) {
        parent = stack_[i];
        if (!llvm::isa<clang::ParenExpr>(parent)) break;
        child = parent;
      }
      if (const auto* ic = llvm::dyn_cast_or_null<clang::ImplicitCastExpr>(parent)) {
        if (ic->getCastKind() == clang::CK_LValueToRValue ||
            ic->getCastKind() == clang::CK_ArrayToPointerDecay)
          return true;
      }
      if (llvm::isa_and_nonnull<clang::UnaryExprOrTypeTraitExpr>(parent)) return true;
      if (const auto* fr = llvm::dyn_cast_or_null<clang::CXXForRangeStmt>(parent);
          fr != nullptr && fr->getRangeInit() == child) {
        return true;  // the range of a range-for: its elements are used, the variable stays
      }
      if (const auto* bo = llvm::dyn_cast_or_null<clang::BinaryOperator>(parent)) {
        if (bo->isAssignmentOp() && bo->getLHS() == child) {
          assigned.insert(vd);
          return true;
        }
      }
      if (const auto* uo = llvm::dyn_cast_or_null<clang::UnaryOperator>(parent)) {
        if (uo->isIncrementDecrementOp()) {
          assigned.insert(vd);
          return true;
        }
      }
      if (const auto* me = llvm::dyn_cast_or_null<clang::MemberExpr>(parent);
          me != nullptr && !me->isArrow()) {
        // A member of a local object may be written; a reference stays bound.
        if (!vd->getType()->isReferenceType()) assigned.insert(vd);
        return true;
      }
      escaped.insert(vd);  // address taken, bound to a reference, ...
      return true;
    }
    std::set<const clang::VarDecl*> assigned;
    std::set<const clang::VarDecl*> escaped;

   private:
    std::vector<const clang::Stmt*> stack_;
  };

  // Variables of the current function whose address is taken or that are bound to a reference
  // somewhere in it: their value may change behind the loop's back.
  const std::set<const clang::VarDecl*>& EscapedInFunction();

  // `e` has the same value throughout a loop whose body's uses are `uses`.
  bool IsLoopInvariant(const clang::Expr* e, const VarUses& uses);

  // Nothing in `body` can commit: calls go to library code without callables, and nothing
  // user-defined is constructed, destroyed or allocated.
  // `why`, when given, says what rules a mark out (for the -Rmmsb remarks).
  bool CannotCommit(const clang::Stmt* body, std::string* why = nullptr);
  // `fd`, called from a loop body, provably neither commits nor synchronises with another thread
  // nor calls back into user code: a builtin or a C/C++ library function on the allowlist.
  bool IsPureLibraryCall(const clang::FunctionDecl* fd) const;

  bool InSystemHeader(const clang::Decl* d) const;

  // The induction variable of `for (i = A; i < B; ++i)` (or `i <= B`, `B > i`, `i++`,
  // `i += 1`), with A and B; null when the loop has another shape.
  const clang::VarDecl* CountedLoop(const clang::ForStmt* fs, const clang::Expr** lo,
                                    const clang::Expr** hi, bool* inclusive) const;

  // The stores of `body` that write `arr[var]` (or a member of it) of an invariant page array.
  // Returns them grouped by the array's source text; nested lambdas are not looked into.
  void CollectIndexedStores(const clang::Stmt* s, const clang::VarDecl* var, const VarUses& uses,
                            std::map<std::string, std::vector<const clang::Expr*>>* out);

  std::string SourceText(const clang::Expr* e) const;

  // The statement `s` sits directly in a block: text can go before it.
  bool InBlock(const clang::Stmt* s) const;

  void PlanLoopMarks(const clang::ForStmt* fs);

  // `for (T& x : arr)` over an invariant page array: mark the array once; stores through x (or
  // its members) need no barrier.
  void PlanRangeForMark(const clang::CXXForRangeStmt* fr);

  // A store the enclosing loop's mark covers.
  bool IsCoveredByLoopMark(const clang::Expr* lhs) const;

  // ---- edits ------------------------------------------------------------------------------

  // Maps a token range to a file range; false inside macros, system headers or non-files.
  bool FileRange(clang::SourceRange r, clang::FileID* fid, unsigned* begin, unsigned* end) const;

  bool FileOffsets(clang::SourceLocation loc, clang::FileID* fid, unsigned* offset,
                   clang::FileID must_match = clang::FileID()) const;

  // One FileID per file: a header included twice gets its edits once.
  clang::FileID Canonical(clang::FileID id, clang::FileEntryRef fe) const;

  bool NewSite(clang::FileID fid, unsigned b, unsigned e, int kind);

  // Wraps the text of `e` in open/close. Reports an unrewritable store at `report_loc` when the
  // text is not in a file.
  bool Wrap(const clang::Expr* e, const std::string& open, const std::string& close, int kind,
            clang::SourceLocation report_loc);

  // Inserts `text` at `loc`; `slot` orders it among other insertions at the same offset.
  bool InsertAt(clang::SourceLocation loc, const std::string& text, int kind,
                PageAnalyzer::Slot slot = PageAnalyzer::Slot::kOpen);
  // Puts `loop` (a statement directly in a block) in a scope of its own that starts with `open`:
  // `{ open for (...) ...; }`. Both edits or neither.
  bool ScopeAround(const clang::Stmt* loop, const std::string& open);

  // The write barrier for a store whose destination is `lhs`.
  void Barrier(const clang::Expr* lhs, clang::SourceLocation op_loc);

  // `arg` initialises, or is passed as, a `target`. A non-const pointer or reference into page
  // storage that leaves what the rewriter follows marks the page escaped; passed to `callee`, a
  // library function that writes through it without keeping it, it marks the range instead.
  // `how` says where a non-call escape goes (for the -Rmmsb-escape remark).
  // A variable of static storage whose initialiser lets page storage escape: the Escape that
  // CheckEscape wraps around it is constexpr, so a constant initialiser never runs it, and a
  // dynamic one may run before the page's own registrar (another TU). A StaticEscape registrar
  // after the declaration marks the pages escaped when both exist (EmitStaticEscapes).
  void EmitStaticEscapes(const clang::VarDecl* vd, size_t first);
  // The elements of an initialiser of a dependent type in a static variable's initialiser
  // (VisitInitListExpr, VisitParenListExpr, ...): the pages they name, for its registrar.
  void NoteTemplateInits(llvm::ArrayRef<clang::Expr*> inits);
  // The static page variables `e` (an escaping pointer or lvalue) points into, as addresses.
  // `*dependent` is set when `e` names storage through a template's parameter (`&T::page.a[3]`),
  // which may be a page that no name here designates. (`storage`: `e` is used as an object, the
  // operand of `&`, `.` or `[]`, not as a value.)
  void CollectPageRoots(const clang::Expr* e, std::vector<std::string>* roots,
                        bool* dependent = nullptr, bool storage = false) const;
  const clang::VarDecl* static_init_var_ = nullptr;  // whose initialiser is being traversed
  // What CheckEscape let escape in it (`named`: a page it cannot name leaves the variable
  // untracked), and the elements of a template's initialiser lists, which have no semantic form
  // to check until instantiated (not `named`: only the pages they name count).
  struct StaticEscapeExpr {
    const clang::Expr* e;
    bool named;
  };
  std::vector<StaticEscapeExpr> static_escapes_;
  int static_escape_seq_ = 0;

  void CheckEscape(const clang::Expr* arg, clang::QualType target,
                   const clang::FunctionDecl* callee = nullptr, llvm::StringRef how = "");

  void CheckAggregateInits(clang::QualType t, llvm::ArrayRef<clang::Expr*> inits);

  // A store (or escape) that cannot be rewritten: warn, and mark its page escaped before the
  // enclosing statement when the page's root object can be named there.
  void Unrewritable(const clang::Expr* e, clang::SourceLocation loc, const char* reason = nullptr);
  // A store to a destination with reduced alignment that wsu cannot take (its result is used as
  // an lvalue, a class type without trivial assignment, template code, a bit-field of such an
  // object): the page is escaped and the store left as written, or in template code an error.
  void ReducedAlignmentUnrewritable(const clang::Expr* e, clang::SourceLocation loc);
  // The alignment the compiler may assume for the address of lvalue `e`, from the record layout
  // and declarations (never more than the truth; docs/PluginGuide.md).
  clang::CharUnits KnownAlignment(const clang::Expr* e) const;
  // KnownAlignment(e) is below the natural alignment of e's type (a packed member).
  bool HasReducedAlignment(const clang::Expr* e) const;
  bool ResultUsedOnlyAsValue(const clang::Stmt* store, bool class_type) const;
  // Marks the page that `e` designates escaped before the enclosing statement; false when its
  // root object cannot be named there.
  bool EscapeBefore(const clang::Expr* e);

  // An expression naming an address inside the page that `e` writes, usable before the
  // statement: a page variable, a pointer variable, or `this`. Empty when there is none.
  std::string RootAddress(const clang::Expr* e) const;

  // ---- page records ---------------------------------------------------------------------

  void CheckPageRecord(const clang::CXXRecordDecl* rd);

  void ExplainNotTriviallyCopyable(const clang::CXXRecordDecl* rd);

  void InstrumentPageRecord(const clang::CXXRecordDecl* rd);

  // The descriptor of one instantiation of a page class template, as an overload of
  // _mmsb_describe in the template's namespace, appended to the main file.
  void DescribeInstantiation(const clang::CXXRecordDecl* rd);

  // ---- layout descriptors -----------------------------------------------------------------

  std::string RecordName(const clang::RecordDecl* rd) const;

  // A type as the user wrote it, for diagnostics.
  std::string DisplayName(clang::QualType t) const;

  std::string TypeName(clang::QualType t) const;

  std::string ScalarKind(clang::QualType t, std::string* record_type,
                         std::vector<const clang::RecordDecl*>* nested) const;

  std::string Field(const std::string& name, uint64_t offset, clang::QualType t,
                    std::vector<const clang::RecordDecl*>* nested) const;

  // The arguments of ::mmsb::rt::InternLayout for a complete, non-dependent record.
  std::string Descriptor(const clang::RecordDecl* rd,
                         std::vector<const clang::RecordDecl*>* nested_out = nullptr) const;

  // Comma-terminated InternLayout calls for every record nested in `rd`, innermost first.
  std::string InternNested(const clang::RecordDecl* rd) const;

  // A descriptor expression for the object of a static page variable.
  std::string VarDescriptor(const clang::VarDecl* vd) const;

  // ---- static pages -----------------------------------------------------------------------

  // A variable that other translation units cannot name (internal linkage, an anonymous
  // namespace, a static in a static function) may share its mangled name with another TU's:
  // its page name and descriptor name carry the main file's name too.
  std::string TranslationUnitSuffix(const clang::VarDecl* vd) const;

  std::string QualifiedName(const clang::NamedDecl* nd) const;

  std::string MangledName(const clang::VarDecl* vd) const;

  void InstrumentStaticPage(const clang::VarDecl* vd);
  // Gives a page variable with external linkage its page symbol (PageSymbol) in every
  // declaration of this translation unit.
  void LabelPageSymbol(const clang::VarDecl* vd);

  // Standard class templates that hold their elements inside themselves or in storage they
  // allocate: a page-typed element there is not a page. Smart pointers and views refer to
  // objects allocated elsewhere (by `new`, from the arena) and are fine.
  static bool IsValueContainer(llvm::StringRef name);

  // std::make_shared and std::allocate_shared construct through an allocator, not `new T`.
  void CheckSharedAllocation(const clang::CallExpr* ce, const clang::FunctionDecl* fd);

  void CheckContainer(clang::QualType t, clang::SourceLocation loc);

  bool AddFinding(DiagKind kind, clang::SourceLocation loc, std::vector<std::string> args);
  // Page types in system headers already reported as untracked (once each).
  std::set<const clang::CXXRecordDecl*> reported_system_pages_;

  // ---- page writes per function (PageAnalyzer::page_writes, for the IR capture) ------------

  // The page type (fully qualified, arrays stripped) whose storage `e` designates; "" if none.
  std::string PageTypeOfStorage(const clang::Expr* e) const;

  std::string PageTypeOfPointer(const clang::Expr* e) const;

  std::string PageName(clang::QualType t) const;

  // Records that the function being traversed writes page type `type`.
  void NoteWrite(const std::string& type);

  // -Rmmsb remarks: what the rewriter did with a store or call, and why (docs/PluginGuide.md).
  void Remark(DiagKind kind, clang::SourceLocation loc, std::vector<std::string> args);
  // Why the loop around the current statement, if any, has no range mark covering it ("" when
  // not in a loop); appended to barrier remarks.
  std::string WhyNoLoopMark() const;

  PageAnalyzer& a_;
  clang::ASTContext& ctx_;
  clang::SourceManager& sm_;
  const clang::LangOptions& lo_;
  std::unique_ptr<clang::MangleContext> mangle_;
  std::unique_ptr<clang::ASTNameGenerator> names_;
  std::map<const clang::FunctionDecl*, std::vector<std::string>> function_names_;
  std::vector<const clang::FunctionDecl*> functions_;
  std::vector<const clang::Stmt*> parents_;
  mutable std::map<const clang::FileEntry*, clang::FileID> canonical_;
  // Local variables whose uses the rewriter follows (see ScanLocals and FollowReference).
  std::set<const clang::VarDecl*> followed_ptrs_;
  std::set<const clang::VarDecl*> followed_refs_;
  std::set<const clang::Stmt*> scanned_;
  std::set<std::string> described_;           // class template instantiations given a descriptor
  std::set<std::string> registered_members_;  // static data member pages, by mangled name
  // Loop range marks (PlanLoopMarks): stores they cover, loop variables whose stores they cover.
  std::set<const clang::Expr*> loop_covered_;
  std::set<const clang::VarDecl*> covered_vars_;
  std::map<const clang::Stmt*, std::set<const clang::VarDecl*>> escaped_in_function_;
  // The loop whose mark IsLoopInvariant is checking: a local variable is invariant only when it
  // is declared before that loop (its name means the same thing where the mark goes).
  const clang::Stmt* invariant_loop_ = nullptr;
  // Why a loop got no range mark (or which stores its mark covers), for the remarks.
  std::map<const clang::Stmt*, std::string> loop_mark_why_;
  int loop_mark_seq_ = 0;
  std::set<const clang::VarDecl*> labelled_;  // page variables given their page symbol
};

}  // namespace mmsb::rewriter
