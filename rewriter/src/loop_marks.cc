// Loop range marks: a counted loop (or a range-for over a page array) whose stores index an
// unmoving page array gets one ScopedMark of the range before the loop instead of a barrier per
// store, so it compiles as without the plugin. Sound only when the array and the bounds cannot
// change during the loop and the body cannot commit (CannotCommit's allowlist); otherwise the
// stores keep their barriers and the remarks say why (WhyNoLoopMark).

#include <map>
#include <set>
#include <string>
#include <vector>

#include "mmsb/rewriter/attributes.h"

#include "clang/AST/DeclTemplate.h"
#include "clang/AST/ExprCXX.h"
#include "clang/AST/StmtCXX.h"
#include "clang/Lex/Lexer.h"
#include "llvm/ADT/StringSet.h"
#include "page_visitor.h"

namespace mmsb::rewriter {

const std::set<const clang::VarDecl*>& PageVisitor::EscapedInFunction() {
  const clang::Stmt* body = functions_.empty() ? nullptr : functions_.front()->getBody();
  auto [it, inserted] = escaped_in_function_.try_emplace(body);
  if (inserted && body != nullptr) {
    VarUses uses;
    uses.TraverseStmt(const_cast<clang::Stmt*>(body));
    it->second = std::move(uses.escaped);
  }
  return it->second;
}

bool PageVisitor::IsLoopInvariant(const clang::Expr* e, const VarUses& uses) {
  e = e->IgnoreParens();
  if (e->isValueDependent() || e->isTypeDependent()) return false;
  if (e->isIntegerConstantExpr(ctx_)) return true;
  if (const auto* ic = llvm::dyn_cast<clang::ImplicitCastExpr>(e)) {
    switch (ic->getCastKind()) {
      case clang::CK_LValueToRValue:  // only of a variable, never a load from memory
        return llvm::isa<clang::DeclRefExpr>(ic->getSubExpr()->IgnoreParens()) &&
               IsLoopInvariant(ic->getSubExpr(), uses);
      case clang::CK_IntegralCast:
      case clang::CK_NoOp:
      case clang::CK_ArrayToPointerDecay:
        return IsLoopInvariant(ic->getSubExpr(), uses);
      default:
        return false;
    }
  }
  if (llvm::isa<clang::CXXThisExpr>(e)) return true;
  if (const auto* dre = llvm::dyn_cast<clang::DeclRefExpr>(e)) {
    const auto* vd = llvm::dyn_cast<clang::VarDecl>(dre->getDecl());
    if (vd == nullptr || vd->getType().isVolatileQualified()) return false;
    if (vd->hasGlobalStorage() && !vd->isStaticLocal()) {
      // A global's address never changes; its value might (through any call).
      return vd->getType()->isArrayType() || vd->getType()->isRecordType();
    }
    // The mark names the variable before the loop: it must be the same variable there (not one
    // the loop declares, shadowing an outer one of the same name).
    if (invariant_loop_ == nullptr ||
        !sm_.isBeforeInTranslationUnit(sm_.getExpansionLoc(vd->getEndLoc()),
                                       sm_.getExpansionLoc(invariant_loop_->getBeginLoc())))
      return false;
    return !uses.assigned.count(vd) && !uses.escaped.count(vd) && !EscapedInFunction().count(vd);
  }
  if (const auto* me = llvm::dyn_cast<clang::MemberExpr>(e)) {
    // An array or record member of an invariant object (not a pointer member: that is a load).
    if (!llvm::isa<clang::FieldDecl>(me->getMemberDecl()) || me->getType()->isReferenceType())
      return false;
    return IsLoopInvariant(me->getBase(), uses);
  }
  if (const auto* ase = llvm::dyn_cast<clang::ArraySubscriptExpr>(e))
    return IsLoopInvariant(ase->getBase(), uses) && IsLoopInvariant(ase->getIdx(), uses);
  if (const auto* uo = llvm::dyn_cast<clang::UnaryOperator>(e)) {
    return (uo->getOpcode() == clang::UO_Deref || uo->getOpcode() == clang::UO_AddrOf) &&
           IsLoopInvariant(uo->getSubExpr(), uses);
  }
  if (const auto* bo = llvm::dyn_cast<clang::BinaryOperator>(e)) {
    return (bo->isAdditiveOp() || bo->isMultiplicativeOp()) &&
           IsLoopInvariant(bo->getLHS(), uses) && IsLoopInvariant(bo->getRHS(), uses);
  }
  return false;
}

bool PageVisitor::CannotCommit(const clang::Stmt* body, std::string* why) {
  // An allowlist, not a list of what is known to commit: anything not shown harmless (a call to
  // user code, to an unknown library function, through a pointer or a std::function; an atomic
  // operation or a lock, which may hand control to a thread that commits; inline asm; an
  // allocation, which may run a replaced operator new) rules the loop mark out.
  class Scan : public clang::RecursiveASTVisitor<Scan> {
   public:
    explicit Scan(PageVisitor& v) : v_(v) {}
    bool shouldVisitImplicitCode() const { return true; }
    bool Fail(std::string what) {
      if (ok) why = std::move(what);
      return ok = false;
    }
    bool VisitCallExpr(clang::CallExpr* ce) {
      const clang::FunctionDecl* fd = ce->getDirectCallee();
      if (fd == nullptr) return Fail("it calls through a pointer or a callable object");
      if (!v_.IsPureLibraryCall(fd))
        return Fail("it calls " + Quote(fd->getQualifiedNameAsString()) +
                    ", which may commit or synchronise");
      for (const clang::Expr* arg : ce->arguments()) {
        const clang::QualType t = arg->getType().getNonReferenceType();
        if (t->isFunctionPointerType() || t->isFunctionType() || t->isBlockPointerType() ||
            t->isMemberFunctionPointerType())
          return Fail("it passes a function to " + Quote(fd->getQualifiedNameAsString()));
        if (t->isRecordType())  // a callable, an atomic, a user type
          return Fail("it passes an object of class type to " +
                      Quote(fd->getQualifiedNameAsString()));
      }
      return true;
    }
    bool VisitCXXConstructExpr(clang::CXXConstructExpr* cc) {
      if (cc->getConstructor()->isTrivial()) return true;
      return Fail("it runs a constructor");
    }
    bool VisitVarDecl(clang::VarDecl* vd) {
      if (vd->getType().isVolatileQualified() || vd->isStaticLocal())
        return Fail("it declares a volatile or static variable");
      if (const clang::CXXRecordDecl* rd = vd->getType()->getAsCXXRecordDecl()) {
        if (!rd->hasDefinition() || !rd->hasTrivialDestructor())
          return Fail("it declares an object with a destructor");
      }
      return true;
    }
    bool VisitCXXBindTemporaryExpr(clang::CXXBindTemporaryExpr*) {
      return Fail("it destroys a temporary");
    }
    bool VisitCXXNewExpr(clang::CXXNewExpr*) { return Fail("it allocates"); }
    bool VisitCXXDeleteExpr(clang::CXXDeleteExpr*) { return Fail("it deallocates"); }
    bool VisitCXXThrowExpr(clang::CXXThrowExpr*) { return Fail("it throws"); }
    bool VisitCXXTryStmt(clang::CXXTryStmt*) { return Fail("it has a try block"); }
    bool VisitAtomicExpr(clang::AtomicExpr*) { return Fail("it has an atomic operation"); }
    bool VisitAsmStmt(clang::AsmStmt*) { return Fail("it has inline asm"); }
    bool VisitLambdaExpr(clang::LambdaExpr*) { return Fail("it has a lambda"); }
    bool VisitBlockExpr(clang::BlockExpr*) { return Fail("it has a block"); }
    bool VisitCoroutineSuspendExpr(clang::CoroutineSuspendExpr*) {
      return Fail("it suspends a coroutine");
    }
    bool VisitCoreturnStmt(clang::CoreturnStmt*) { return Fail("it has co_return"); }
    bool VisitIndirectGotoStmt(clang::IndirectGotoStmt*) { return Fail("it has a computed goto"); }
    // The mark's scope around the loop must not be jumped into: no label in the body, no case
    // label of a switch outside it (Duff's device).
    bool VisitLabelStmt(clang::LabelStmt*) { return Fail("it has a label"); }
    bool TraverseSwitchStmt(clang::SwitchStmt* ss, DataRecursionQueue* = nullptr) {
      ++switches_;
      bool r = clang::RecursiveASTVisitor<Scan>::TraverseSwitchStmt(ss, nullptr);
      --switches_;
      return r;
    }
    bool VisitSwitchCase(clang::SwitchCase*) {
      if (switches_ == 0) Fail("it has a case label of a switch outside the loop");
      return true;
    }
    bool ok = true;
    std::string why;
    int switches_ = 0;

   private:
    PageVisitor& v_;
  };
  Scan scan(*this);
  scan.TraverseStmt(const_cast<clang::Stmt*>(body));
  if (!scan.ok && why != nullptr) *why = "the body may commit: " + scan.why;
  return scan.ok;
}

const clang::VarDecl* PageVisitor::CountedLoop(const clang::ForStmt* fs, const clang::Expr** lo,
                                               const clang::Expr** hi, bool* inclusive) const {
  const clang::VarDecl* var = nullptr;
  if (const auto* ds = llvm::dyn_cast_or_null<clang::DeclStmt>(fs->getInit())) {
    if (!ds->isSingleDecl()) return nullptr;
    var = llvm::dyn_cast<clang::VarDecl>(ds->getSingleDecl());
    if (var == nullptr || var->getInit() == nullptr) return nullptr;
    *lo = var->getInit();
  } else if (const auto* bo = llvm::dyn_cast_or_null<clang::BinaryOperator>(fs->getInit())) {
    const auto* dre = llvm::dyn_cast<clang::DeclRefExpr>(bo->getLHS()->IgnoreParens());
    if (bo->getOpcode() != clang::BO_Assign || dre == nullptr) return nullptr;
    var = llvm::dyn_cast<clang::VarDecl>(dre->getDecl());
    *lo = bo->getRHS();
  }
  if (var == nullptr || !var->getType()->isIntegerType() || !var->hasLocalStorage()) return nullptr;
  auto is_var = [var](const clang::Expr* e) {
    const auto* dre = llvm::dyn_cast<clang::DeclRefExpr>(e->IgnoreParenImpCasts());
    return dre != nullptr && dre->getDecl() == var;
  };
  const auto* cond = llvm::dyn_cast_or_null<clang::BinaryOperator>(fs->getCond());
  if (cond == nullptr) return nullptr;
  if ((cond->getOpcode() == clang::BO_LT || cond->getOpcode() == clang::BO_LE) &&
      is_var(cond->getLHS())) {
    *hi = cond->getRHS();
    *inclusive = cond->getOpcode() == clang::BO_LE;
  } else if ((cond->getOpcode() == clang::BO_GT || cond->getOpcode() == clang::BO_GE) &&
             is_var(cond->getRHS())) {
    *hi = cond->getLHS();
    *inclusive = cond->getOpcode() == clang::BO_GE;
  } else {
    return nullptr;
  }
  const clang::Expr* inc = fs->getInc();
  if (inc == nullptr) return nullptr;
  inc = inc->IgnoreParens();
  if (const auto* uo = llvm::dyn_cast<clang::UnaryOperator>(inc)) {
    if (!uo->isIncrementOp() || !is_var(uo->getSubExpr())) return nullptr;
  } else if (const auto* ca = llvm::dyn_cast<clang::CompoundAssignOperator>(inc)) {
    clang::Expr::EvalResult one;
    if (ca->getOpcode() != clang::BO_AddAssign || !is_var(ca->getLHS()) ||
        !ca->getRHS()->EvaluateAsInt(one, ctx_) || one.Val.getInt() != 1)
      return nullptr;
  } else {
    return nullptr;
  }
  return var;
}

void PageVisitor::CollectIndexedStores(
    const clang::Stmt* s, const clang::VarDecl* var, const VarUses& uses,
    std::map<std::string, std::vector<const clang::Expr*>>* out) {
  if (s == nullptr || llvm::isa<clang::LambdaExpr>(s)) return;
  const clang::Expr* lhs = nullptr;
  if (const auto* bo = llvm::dyn_cast<clang::BinaryOperator>(s);
      bo != nullptr && bo->isAssignmentOp()) {
    lhs = bo->getLHS();
  } else if (const auto* uo = llvm::dyn_cast<clang::UnaryOperator>(s);
             uo != nullptr && uo->isIncrementDecrementOp()) {
    lhs = uo->getSubExpr();
  }
  if (lhs != nullptr && !lhs->refersToBitField() && IsPageStorage(lhs)) {
    // Inward from the destination: members and inner dimensions stay inside one element of
    // the array that `var` indexes (grid[i][j].f with i the induction variable).
    const clang::Expr* e = lhs->IgnoreParens();
    const clang::ImplicitCastExpr* decay = nullptr;
    while (true) {
      if (const auto* me = llvm::dyn_cast<clang::MemberExpr>(e)) {
        if (me->isArrow() || !llvm::isa<clang::FieldDecl>(me->getMemberDecl())) break;
        e = me->getBase()->IgnoreParens();
        continue;
      }
      const auto* ase = llvm::dyn_cast<clang::ArraySubscriptExpr>(e);
      const auto* base = ase ? llvm::dyn_cast<clang::ImplicitCastExpr>(ase->getBase()) : nullptr;
      const auto* idx =
          ase ? llvm::dyn_cast<clang::DeclRefExpr>(ase->getIdx()->IgnoreParenImpCasts()) : nullptr;
      const bool by_var = idx != nullptr && idx->getDecl() == var;
      // p[i] through a local pointer into a page (`float* x = page->x;`).
      if (by_var && base != nullptr && base->getCastKind() == clang::CK_LValueToRValue &&
          llvm::isa<clang::DeclRefExpr>(base->getSubExpr()->IgnoreParens()) &&
          IsPagePointer(base)) {
        decay = base;
        break;
      }
      if (base == nullptr || base->getCastKind() != clang::CK_ArrayToPointerDecay ||
          ctx_.getAsConstantArrayType(base->getSubExpr()->getType()) == nullptr)
        break;
      if (by_var) {
        decay = base;
        break;
      }
      e = base->getSubExpr()->IgnoreParens();
    }
    if (decay != nullptr && IsLoopInvariant(decay->getSubExpr(), uses)) {
      clang::FileID fid;
      unsigned b = 0, end = 0;
      if (FileRange(decay->getSubExpr()->getSourceRange(), &fid, &b, &end) &&
          FileRange(lhs->getSourceRange(), &fid, &b, &end)) {
        (*out)[SourceText(decay->getSubExpr())].push_back(lhs->IgnoreParens());
      }
    }
  }
  for (const clang::Stmt* child : s->children()) CollectIndexedStores(child, var, uses, out);
}

bool PageVisitor::InBlock(const clang::Stmt* s) const {
  return parents_.size() >= 2 && parents_.back() == s &&
         llvm::isa<clang::CompoundStmt>(parents_[parents_.size() - 2]);
}

void PageVisitor::PlanLoopMarks(const clang::ForStmt* fs) {
  std::string& why = loop_mark_why_[fs];
  if (fs->getBody() == nullptr) return;
  if (InExplicitConstexprFunction()) {
    why = "the loop is in a constexpr function";
    return;
  }
  if (!InBlock(fs)) {
    why = "the loop is not directly in a block";
    return;
  }
  invariant_loop_ = fs;
  const clang::Expr* lo = nullptr;
  const clang::Expr* hi = nullptr;
  bool inclusive = false;
  const clang::VarDecl* var = CountedLoop(fs, &lo, &hi, &inclusive);
  if (var == nullptr) {
    why = "the loop is not of the form 'for (i = A; i < B; ++i)'";
    return;
  }
  VarUses uses;
  uses.TraverseStmt(const_cast<clang::Stmt*>(fs->getBody()));
  if (uses.assigned.count(var) || uses.escaped.count(var) || EscapedInFunction().count(var)) {
    why = "the induction variable " + Quote(var->getName()) +
          " is written in the body or its address is taken";
    return;
  }
  VarUses cond_uses;  // the bounds may not change in the condition or the increment either
  cond_uses.TraverseStmt(const_cast<clang::Expr*>(fs->getCond()));
  cond_uses.TraverseStmt(const_cast<clang::Expr*>(fs->getInc()));
  for (const clang::VarDecl* v : cond_uses.assigned) uses.assigned.insert(v);
  uses.assigned.insert(var);  // never invariant: `g.m[i][i]` is not inside one row
  if (!IsLoopInvariant(lo, uses) || !IsLoopInvariant(hi, uses)) {
    why = "a bound may change during the loop, or names a variable declared in it";
    return;
  }
  std::map<std::string, std::vector<const clang::Expr*>> stores;
  CollectIndexedStores(fs->getBody(), var, uses, &stores);
  if (stores.empty()) {
    why = "no store indexes an unmoving page array by " + Quote(var->getName()) + " alone";
    return;
  }
  if (!CannotCommit(fs->getBody(), &why)) return;
  // A is converted to the induction variable's type by the loop's init.
  std::string a = "(" + SourceText(lo) + ")";
  if (!ctx_.hasSameType(lo->IgnoreParenImpCasts()->getType().getUnqualifiedType(),
                        var->getType().getUnqualifiedType())) {
    a = "static_cast<" + TypeName(var->getType()) + ">" + a;
  }
  const std::string b = "(" + SourceText(hi) + ")";
  if (SourceText(lo).empty() || b == "()") {
    why = "a bound is not in a source file";
    return;
  }
  // One ScopedMark per array, in a scope around the loop: it marks A..B before the loop and
  // again at every exit from it, after the last store it covers (see held_marks.h).
  const std::string nonempty = "(" + a + (inclusive ? " <= " : " < ") + b + ")";
  std::string text;
  for (const auto& [array, exprs] : stores) {
    text += "::mmsb::rt::ScopedMark _mmsb_loop_mark_" + std::to_string(loop_mark_seq_++) + "(" +
            nonempty + " ? ::mmsb::rt::detail::Bytes(&(" + array + ")[" + a + "]) : nullptr, " +
            nonempty + " ? sizeof((" + array + ")[" + a + "]) * static_cast<::std::size_t>(" + b +
            " - " + a + (inclusive ? " + 1" : "") + ") : 0); ";
  }
  if (!ScopeAround(fs, WithoutWarnings(text))) {
    why = "the loop cannot be put in a scope of its own (a macro?)";
    return;
  }
  std::string arrays;
  for (const auto& [array, exprs] : stores) {
    loop_covered_.insert(exprs.begin(), exprs.end());
    arrays += (arrays.empty() ? "" : ", ") +
              Quote(array + "[" + SourceText(lo) + ".." + SourceText(hi) + (inclusive ? "]" : ")"));
  }
  Remark(DiagKind::kRemarkLoopMark, fs->getForLoc(), {arrays});
  why = "the loop's range mark covers only stores to " + arrays + " indexed by " +
        Quote(var->getName());
}

void PageVisitor::PlanRangeForMark(const clang::CXXForRangeStmt* fr) {
  const clang::VarDecl* var = fr->getLoopVariable();
  const clang::Expr* range = fr->getRangeInit()->IgnoreParens();
  if (ctx_.getAsConstantArrayType(range->getType()) == nullptr) return;
  std::string& why = loop_mark_why_[fr];
  if (InExplicitConstexprFunction()) {
    why = "the loop is in a constexpr function";
    return;
  }
  invariant_loop_ = fr;
  VarUses uses;
  uses.TraverseStmt(const_cast<clang::Stmt*>(fr->getBody()));
  if (uses.escaped.count(var)) {
    why = "the address of the loop variable is taken";
    return;
  }
  if (!CannotCommit(fr->getBody(), &why)) return;
  // Over a loop variable that is covered already (`for (auto& row : grid) for (auto& c : row)`).
  if (const auto* dre = llvm::dyn_cast<clang::DeclRefExpr>(range)) {
    if (covered_vars_.count(llvm::dyn_cast<clang::VarDecl>(dre->getDecl()))) {
      covered_vars_.insert(var);
      why.clear();
      return;
    }
  }
  if (!InBlock(fr)) {
    why = "the loop is not directly in a block";
    return;
  }
  if (!IsLoopInvariant(range, uses)) {
    why = "the range may move during the loop";
    return;
  }
  clang::FileID fid;
  unsigned b = 0, end = 0;
  if (!FileRange(range->getSourceRange(), &fid, &b, &end)) return;
  const std::string text = SourceText(range);
  if (text.empty()) return;
  const std::string mark = "::mmsb::rt::ScopedMark _mmsb_loop_mark_" +
                           std::to_string(loop_mark_seq_++) + "(::mmsb::rt::detail::Bytes(&(" +
                           text + ")), sizeof(" + text + "));";
  if (ScopeAround(fr, WithoutWarnings(mark))) {
    covered_vars_.insert(var);
    Remark(DiagKind::kRemarkLoopMark, fr->getForLoc(), {Quote(text)});
    why.clear();
  } else {
    why = "the loop cannot be put in a scope of its own (a macro?)";
  }
}

bool PageVisitor::IsCoveredByLoopMark(const clang::Expr* lhs) const {
  const clang::Expr* e = lhs->IgnoreParens();
  if (loop_covered_.count(e)) return true;
  while (true) {
    if (const auto* me = llvm::dyn_cast<clang::MemberExpr>(e); me != nullptr && !me->isArrow()) {
      e = me->getBase()->IgnoreParens();
    } else if (const auto* ase = llvm::dyn_cast<clang::ArraySubscriptExpr>(e)) {
      const auto* decay = llvm::dyn_cast<clang::ImplicitCastExpr>(ase->getBase());
      if (decay == nullptr || decay->getCastKind() != clang::CK_ArrayToPointerDecay) return false;
      e = decay->getSubExpr()->IgnoreParens();
    } else {
      break;
    }
  }
  const auto* dre = llvm::dyn_cast<clang::DeclRefExpr>(e);
  return dre != nullptr && covered_vars_.count(llvm::dyn_cast<clang::VarDecl>(dre->getDecl()));
}

std::string PageVisitor::WhyNoLoopMark() const {
  for (size_t i = parents_.size(); i-- > 0;) {
    if (!llvm::isa<clang::ForStmt, clang::CXXForRangeStmt, clang::WhileStmt, clang::DoStmt>(
            parents_[i]))
      continue;
    auto it = loop_mark_why_.find(parents_[i]);
    if (it == loop_mark_why_.end())
      return "; no loop mark: only counted for loops and range-for loops over page arrays get one";
    return it->second.empty() ? "" : "; no loop mark: " + it->second;
  }
  return "";
}
}  // namespace mmsb::rewriter
