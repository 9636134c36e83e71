// Store classification: whether an expression designates page storage or points into it (through
// page variables, members, subscripts, casts, and the local pointers and references the rewriter
// follows), which page type that is, and whether a call's object is page storage. Every barrier,
// mark and escape decision starts here; an expression not shown to be page storage is left alone.

#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "mmsb/rewriter/attributes.h"

#include "clang/AST/DeclTemplate.h"
#include "clang/AST/ExprCXX.h"
#include "clang/AST/ParentMap.h"
#include "clang/AST/RecursiveASTVisitor.h"
#include "clang/AST/StmtCXX.h"
#include "clang/Lex/Lexer.h"
#include "llvm/ADT/StringSet.h"
#include "member_callees.h"
#include "page_visitor.h"

namespace mmsb::rewriter {

const clang::Expr* IgnoreFullExprWrappers(const clang::Expr* e) {
  while (true) {
    if (const auto* fe = llvm::dyn_cast<clang::FullExpr>(e)) {
      e = fe->getSubExpr();
    } else if (const auto* mt = llvm::dyn_cast<clang::MaterializeTemporaryExpr>(e)) {
      e = mt->getSubExpr();
    } else if (const auto* bt = llvm::dyn_cast<clang::CXXBindTemporaryExpr>(e)) {
      e = bt->getSubExpr();
    } else {
      return e;
    }
  }
}

void PageVisitor::ScanLocals(clang::Stmt* body) {
  if (body == nullptr || !scanned_.insert(body).second) return;
  LocalScan scan;
  scan.TraverseStmt(body);
  bool changed = true;
  while (changed) {  // p = page.x; q = p;
    changed = false;
    for (const clang::VarDecl* vd : scan.candidates) {
      if (scan.disqualified.count(vd) || followed_ptrs_.count(vd)) continue;
      for (const clang::Expr* src : scan.sources[vd]) {
        if (IsPagePointer(IgnoreFullExprWrappers(src))) {
          followed_ptrs_.insert(vd);
          changed = true;
          break;
        }
      }
    }
  }
}

bool PageVisitor::FollowReference(const clang::VarDecl* vd) {
  if (!IsPageStorage(IgnoreFullExprWrappers(vd->getInit()))) return false;
  followed_refs_.insert(vd);
  if (const auto* dd = llvm::dyn_cast<clang::DecompositionDecl>(vd)) {
    for (const clang::BindingDecl* b : dd->bindings()) {
      if (const clang::VarDecl* hv = b->getHoldingVar()) {
        if (hv->getInit() == nullptr || !IsPageStorage(IgnoreFullExprWrappers(hv->getInit()))) {
          followed_refs_.erase(vd);
          return false;
        }
      }
    }
  }
  return true;
}

bool PageVisitor::IsFollowedVariable(const clang::Expr* e) const {
  const auto* dre = llvm::dyn_cast<clang::DeclRefExpr>(e->IgnoreParens());
  return dre != nullptr && followed_ptrs_.count(llvm::dyn_cast<clang::VarDecl>(dre->getDecl()));
}

bool PageVisitor::CalleeIsInstrumented(const clang::CXXMethodDecl* md) const {
  if (!IsPageRecord(md->getParent())) return false;
  const clang::FunctionDecl* def = nullptr;
  if (!md->isDefined(def) || def == nullptr) return false;
  if (const clang::FunctionDecl* pattern = def->getTemplateInstantiationPattern()) def = pattern;
  return !sm_.isInSystemHeader(sm_.getExpansionLoc(def->getLocation()));
}

namespace {

// `rd` (one of its members or bases, at any depth) has a mutable data member.
bool HasMutableMember(const clang::CXXRecordDecl* rd, unsigned depth = 0) {
  if (rd == nullptr || !rd->hasDefinition() || depth > 16) return false;
  rd = rd->getDefinition();
  for (const clang::FieldDecl* f : rd->fields()) {
    if (f->isMutable()) return true;
    const clang::Type* t = f->getType()->getBaseElementTypeUnsafe();
    if (HasMutableMember(t->getAsCXXRecordDecl(), depth + 1)) return true;
  }
  for (const clang::CXXBaseSpecifier& b : rd->bases()) {
    if (HasMutableMember(b.getType()->getAsCXXRecordDecl(), depth + 1)) return true;
  }
  return false;
}

}  // namespace

bool IsWritingMember(const clang::CXXMethodDecl* md) {
  if (md->isStatic()) return false;
  // A const member function writes its object's mutable members (`int Peek() const { ++reads_;
  // ... }`): on page storage it needs the mark a non-const call gets.
  return !md->isConst() || HasMutableMember(md->getParent());
}

namespace {

// The uses of `this` in one member function's body (PageVisitor::CalleeMayKeepThis).
class ThisUses : public clang::RecursiveASTVisitor<ThisUses> {
 public:
  ThisUses(clang::Stmt* body, std::function<bool(const clang::CXXMethodDecl*)> may_keep)
      : parents_(body), may_keep_(std::move(may_keep)) {}

  bool VisitLambdaExpr(clang::LambdaExpr* le) {
    for (const clang::LambdaCapture& c : le->captures())
      if (c.capturesThis()) kept_ = true;
    return !kept_;
  }
  bool VisitCXXThisExpr(clang::CXXThisExpr* th) {
    if (!ThisUseIsConfined(th)) kept_ = true;
    return !kept_;
  }
  bool kept() const { return kept_; }

 private:
  const clang::Stmt* Parent(const clang::Stmt* s) const {
    const clang::Stmt* p = parents_.getParent(s);
    while (p != nullptr) {
      if (llvm::isa<clang::ParenExpr>(p)) {
        p = parents_.getParent(p);
      } else if (const auto* ic = llvm::dyn_cast<clang::ImplicitCastExpr>(p);
                 ic != nullptr && (ic->getCastKind() == clang::CK_NoOp ||
                                   ic->getCastKind() == clang::CK_UncheckedDerivedToBase ||
                                   ic->getCastKind() == clang::CK_DerivedToBase)) {
        p = parents_.getParent(p);
      } else {
        break;
      }
    }
    return p;
  }

  bool MethodIsConfined(const clang::CXXMethodDecl* md) const {
    return md->isStatic() || (md->isTrivial() && !md->isVirtual()) || !may_keep_(md);
  }

  bool ThisUseIsConfined(const clang::CXXThisExpr* th) const {
    const clang::Stmt* p = Parent(th);
    if (const auto* me = llvm::dyn_cast_or_null<clang::MemberExpr>(p))
      return MemberUseIsConfined(me);
    // `return *this;`: the caller follows a reference a call on page storage returns.
    if (const auto* uo = llvm::dyn_cast_or_null<clang::UnaryOperator>(p);
        uo != nullptr && uo->getOpcode() == clang::UO_Deref)
      return llvm::isa_and_nonnull<clang::ReturnStmt>(Parent(uo));
    return false;
  }

  // `e` (a member of `*this`, or part of one) is read, stored to, or the object of a member call
  // that does not keep it.
  bool MemberUseIsConfined(const clang::Expr* e) const {
    if (const auto* me = llvm::dyn_cast<clang::MemberExpr>(e)) {
      if (const auto* md = llvm::dyn_cast<clang::CXXMethodDecl>(me->getMemberDecl()))
        return llvm::isa_and_nonnull<clang::CXXMemberCallExpr>(Parent(me)) && MethodIsConfined(md);
    }
    const clang::Stmt* p = Parent(e);
    if (p == nullptr) return false;
    if (const auto* ic = llvm::dyn_cast<clang::ImplicitCastExpr>(p)) {
      if (ic->getCastKind() == clang::CK_LValueToRValue) return true;
      if (ic->getCastKind() == clang::CK_ArrayToPointerDecay) {
        const auto* ase = llvm::dyn_cast_or_null<clang::ArraySubscriptExpr>(Parent(ic));
        return ase != nullptr && ase->getBase()->IgnoreParenImpCasts() == e->IgnoreParens() &&
               MemberUseIsConfined(ase);
      }
      return false;
    }
    if (const auto* bo = llvm::dyn_cast<clang::BinaryOperator>(p))
      return bo->isAssignmentOp() && bo->getLHS()->IgnoreParens() == e;
    if (const auto* uo = llvm::dyn_cast<clang::UnaryOperator>(p))
      return uo->isIncrementDecrementOp();
    if (const auto* me = llvm::dyn_cast<clang::MemberExpr>(p))
      return !me->isArrow() && MemberUseIsConfined(me);
    if (const auto* oc = llvm::dyn_cast<clang::CXXOperatorCallExpr>(p)) {
      const auto* md = llvm::dyn_cast_or_null<clang::CXXMethodDecl>(oc->getDirectCallee());
      return md != nullptr && oc->getNumArgs() > 0 && oc->getArg(0)->IgnoreParens() == e &&
             MethodIsConfined(md);
    }
    return false;
  }

  clang::ParentMap parents_;
  std::function<bool(const clang::CXXMethodDecl*)> may_keep_;
  bool kept_ = false;
};

}  // namespace

bool PageVisitor::CalleeMayKeepThis(const clang::CXXMethodDecl* md, unsigned depth) const {
  // A page type's own member functions are rewritten where they are defined: their `this` is
  // page storage there, and what they do with it is followed (or escaped) in that TU.
  if (md->isStatic() || IsPageRecord(md->getParent())) return false;
  // A system header is not trusted for being one (a third-party library under -isystem may keep
  // `this`): only the standard value types of LibraryMemberKeepsNothing are taken on trust, and
  // any other callee's body is checked as a user callee's is.
  if (LibraryMemberKeepsNothing(md, sm_)) return false;
  if (depth > 4 || md->isVirtual()) return true;
  const clang::FunctionDecl* def = nullptr;
  if (!md->hasBody(def) || def == nullptr || def->getBody() == nullptr) return true;
  ThisUses uses(def->getBody(), [&](const clang::CXXMethodDecl* callee) {
    return CalleeMayKeepThis(callee, depth + 1);
  });
  uses.TraverseStmt(def->getBody());
  return uses.kept();
}

namespace {

// Standard class templates (and classes) that hold their value inline and whose member functions
// keep no address of the object or of its storage beyond the call: no self-pointers, nothing
// registered anywhere (PluginGuide, "Held marks"). This holds only while no user code runs inside
// them, so every type they are instantiated with must be inert too (InertType).
const llvm::StringSet<>& InertLibraryTypes() {
  static const llvm::StringSet<> names = {"array", "optional", "variant", "monostate", "bitset",
                                          "pair",  "tuple",    "complex", "atomic",    "nullopt_t"};
  return names;
}

bool IsInertLibraryRecord(const clang::CXXRecordDecl* rd);

// A type whose operations run no user code and hold no address: arithmetic, enumerations, arrays
// of them, and the inert standard types instantiated with inert types.
bool InertType(clang::QualType t) {
  t = t.getNonReferenceType().getCanonicalType();
  while (const clang::ArrayType* at = t->getAsArrayTypeUnsafe())
    t = at->getElementType().getCanonicalType();
  if (t->isArithmeticType() || t->isEnumeralType() || t->isNullPtrType()) return true;
  const clang::CXXRecordDecl* rd = t->getAsCXXRecordDecl();
  return rd != nullptr && IsInertLibraryRecord(rd);
}

bool InertTemplateArguments(llvm::ArrayRef<clang::TemplateArgument> args) {
  for (const clang::TemplateArgument& arg : args) {
    switch (arg.getKind()) {
      case clang::TemplateArgument::Type:
        if (!InertType(arg.getAsType())) return false;
        break;
      case clang::TemplateArgument::Pack:
        if (!InertTemplateArguments(arg.pack_elements())) return false;
        break;
      case clang::TemplateArgument::Integral:
        break;
      default:  // a declaration, a template, an expression: not shown inert
        return false;
    }
  }
  return true;
}

bool IsInertLibraryRecord(const clang::CXXRecordDecl* rd) {
  if (!rd->isInStdNamespace() || rd->getIdentifier() == nullptr ||
      !InertLibraryTypes().contains(rd->getName()))
    return false;
  if (const auto* spec = llvm::dyn_cast<clang::ClassTemplateSpecializationDecl>(rd))
    return InertTemplateArguments(spec->getTemplateArgs().asArray());
  return true;
}

}  // namespace

bool LibraryMemberKeepsNothing(const clang::CXXMethodDecl* md, const clang::SourceManager& sm) {
  if (!sm.isInSystemHeader(sm.getExpansionLoc(md->getLocation())) ||
      !IsInertLibraryRecord(md->getParent()))
    return false;
  // A member function template's arguments (`opt.emplace(args...)`, `var = u`) are converted to
  // the element type inside it: a user type among them runs user code there.
  if (const clang::TemplateArgumentList* args = md->getTemplateSpecializationArgs())
    return InertTemplateArguments(args->asArray());
  return true;
}

bool PageVisitor::IsMarkingCall(const clang::Expr* e) const {
  e = e->IgnoreParens();
  const auto* ce = llvm::dyn_cast<clang::CallExpr>(e);
  if (ce == nullptr) return false;
  const auto* md = llvm::dyn_cast_or_null<clang::CXXMethodDecl>(ce->getDirectCallee());
  return md != nullptr && !md->isConst() && !md->isStatic() && !CalleeIsInstrumented(md) &&
         IsPageObjectOfCall(ce);
}

bool PageVisitor::IsPageObjectOfCall(const clang::CallExpr* ce) const {
  if (const auto* mc = llvm::dyn_cast<clang::CXXMemberCallExpr>(ce)) {
    const auto* me = llvm::dyn_cast<clang::MemberExpr>(mc->getCallee()->IgnoreParens());
    if (me == nullptr) return false;
    return me->isArrow() ? IsPagePointer(me->getBase()) : IsPageStorage(me->getBase());
  }
  if (const auto* oc = llvm::dyn_cast<clang::CXXOperatorCallExpr>(ce)) {
    return oc->getNumArgs() > 0 &&
           llvm::isa_and_nonnull<clang::CXXMethodDecl>(oc->getDirectCallee()) &&
           IsPageStorage(oc->getArg(0));
  }
  return false;
}

bool PageVisitor::IsPageStorage(const clang::Expr* e) const {
  if (e == nullptr || e->getType().isNull() || e->isTypeDependent()) return false;
  e = e->IgnoreParens();
  if (!e->isGLValue()) return false;
  if (IsPageType(e->getType())) return true;
  if (const auto* dre = llvm::dyn_cast<clang::DeclRefExpr>(e)) {
    if (const auto* bd = llvm::dyn_cast<clang::BindingDecl>(dre->getDecl())) {
      if (const clang::VarDecl* hv = bd->getHoldingVar())
        return hv->getInit() != nullptr && IsPageStorage(IgnoreFullExprWrappers(hv->getInit()));
      return bd->getBinding() != nullptr && IsPageStorage(bd->getBinding());
    }
    const auto* vd = llvm::dyn_cast<clang::VarDecl>(dre->getDecl());
    return IsPageVariable(vd) || followed_refs_.count(vd);
  }
  if (const auto* me = llvm::dyn_cast<clang::MemberExpr>(e)) {
    if (!llvm::isa<clang::FieldDecl>(me->getMemberDecl())) {
      return IsPageVariable(llvm::dyn_cast<clang::VarDecl>(me->getMemberDecl()));
    }
    return me->isArrow() ? IsPagePointer(me->getBase()) : IsPageStorage(me->getBase());
  }
  if (const auto* ase = llvm::dyn_cast<clang::ArraySubscriptExpr>(e))
    return IsPagePointer(ase->getBase());
  if (const auto* uo = llvm::dyn_cast<clang::UnaryOperator>(e)) {
    if (uo->getOpcode() == clang::UO_Deref) return IsPagePointer(uo->getSubExpr());
    if (uo->getOpcode() == clang::UO_PreInc || uo->getOpcode() == clang::UO_PreDec)
      return IsPageStorage(uo->getSubExpr());
    return false;
  }
  if (const auto* bo = llvm::dyn_cast<clang::BinaryOperator>(e)) {
    if (bo->isAssignmentOp()) return IsPageStorage(bo->getLHS());
    if (bo->getOpcode() == clang::BO_Comma) return IsPageStorage(bo->getRHS());
    if (bo->getOpcode() == clang::BO_PtrMemD) return IsPageStorage(bo->getLHS());
    if (bo->getOpcode() == clang::BO_PtrMemI) return IsPagePointer(bo->getLHS());
    return false;
  }
  if (const auto* ce = llvm::dyn_cast<clang::CastExpr>(e)) {
    switch (ce->getCastKind()) {
      case clang::CK_NoOp:
      case clang::CK_DerivedToBase:
      case clang::CK_UncheckedDerivedToBase:
      case clang::CK_BaseToDerived:
      case clang::CK_LValueBitCast:
        return IsPageStorage(ce->getSubExpr());
      default:
        return false;
    }
  }
  if (const auto* co = llvm::dyn_cast<clang::AbstractConditionalOperator>(e))
    return IsPageStorage(co->getTrueExpr()) || IsPageStorage(co->getFalseExpr());
  if (const auto* call = llvm::dyn_cast<clang::CallExpr>(e)) {
    // std::move(x), std::get<0>(x): a reference into the argument.
    if (IsTransparent(call->getDirectCallee())) {
      for (const clang::Expr* arg : call->arguments()) {
        if (IsPageStorage(arg)) return true;
      }
      return false;
    }
    // A non-const member function returning a reference into page storage (operator[]).
    const auto* md = llvm::dyn_cast_or_null<clang::CXXMethodDecl>(call->getDirectCallee());
    return md != nullptr && !md->isConst() && !md->isStatic() &&
           md->getReturnType()->isReferenceType() && IsPageObjectOfCall(call);
  }
  return false;
}

bool PageVisitor::IsPagePointer(const clang::Expr* e) const {
  if (e == nullptr || e->getType().isNull() || e->isTypeDependent()) return false;
  e = e->IgnoreParens();
  const clang::QualType t = e->getType();
  if (!t->isPointerType()) return false;
  if (IsPageType(t->getPointeeType())) return true;
  if (const auto* ce = llvm::dyn_cast<clang::CastExpr>(e)) {
    switch (ce->getCastKind()) {
      case clang::CK_ArrayToPointerDecay:
        return IsPageStorage(ce->getSubExpr());
      case clang::CK_LValueToRValue:
        return IsFollowedVariable(ce->getSubExpr());
      case clang::CK_NoOp:
      case clang::CK_BitCast:
      case clang::CK_DerivedToBase:
      case clang::CK_UncheckedDerivedToBase:
      case clang::CK_BaseToDerived:
        return IsPagePointer(ce->getSubExpr());
      default:
        return false;
    }
  }
  if (const auto* uo = llvm::dyn_cast<clang::UnaryOperator>(e)) {
    if (uo->getOpcode() == clang::UO_AddrOf) return IsPageStorage(uo->getSubExpr());
    if (uo->isIncrementDecrementOp()) return IsPagePointer(uo->getSubExpr());
    return false;
  }
  if (const auto* bo = llvm::dyn_cast<clang::BinaryOperator>(e)) {
    switch (bo->getOpcode()) {
      case clang::BO_Add:
      case clang::BO_Sub:
        return bo->getLHS()->getType()->isPointerType() ? IsPagePointer(bo->getLHS())
                                                        : IsPagePointer(bo->getRHS());
      case clang::BO_Comma:
        return IsPagePointer(bo->getRHS());
      case clang::BO_Assign:
      case clang::BO_AddAssign:
      case clang::BO_SubAssign:
        return IsPagePointer(bo->getLHS()) || IsPagePointer(bo->getRHS());
      default:
        return false;
    }
  }
  if (const auto* co = llvm::dyn_cast<clang::AbstractConditionalOperator>(e))
    return IsPagePointer(co->getTrueExpr()) || IsPagePointer(co->getFalseExpr());
  if (const auto* dre = llvm::dyn_cast<clang::DeclRefExpr>(e))
    return followed_ptrs_.count(llvm::dyn_cast<clang::VarDecl>(dre->getDecl()));
  if (const auto* call = llvm::dyn_cast<clang::CallExpr>(e)) {
    const clang::FunctionDecl* fd = call->getDirectCallee();
    // std::begin(page.x), std::next(p), memcpy's and std::copy's returned destination.
    if (IsTransparent(fd) || IsNonRetaining(fd)) {
      for (const clang::Expr* arg : call->arguments()) {
        if (IsPagePointer(arg) || IsPageStorage(arg)) return true;
      }
      return false;
    }
    // page.arr.data(), page.arr.begin()
    const auto* md = llvm::dyn_cast_or_null<clang::CXXMethodDecl>(fd);
    return md != nullptr && !md->isConst() && !md->isStatic() && IsPageObjectOfCall(call);
  }
  return false;
}

std::string PageVisitor::PageTypeOfStorage(const clang::Expr* e) const {
  if (e == nullptr) return "";
  e = e->IgnoreParens();
  if (IsPageType(e->getType())) return PageName(e->getType());
  if (const auto* dre = llvm::dyn_cast<clang::DeclRefExpr>(e)) {
    const auto* vd = llvm::dyn_cast<clang::VarDecl>(dre->getDecl());
    return IsPageVariable(vd) ? PageName(vd->getType()) : "";
  }
  if (const auto* me = llvm::dyn_cast<clang::MemberExpr>(e)) {
    if (const auto* vd = llvm::dyn_cast<clang::VarDecl>(me->getMemberDecl()))
      return IsPageVariable(vd) ? PageName(vd->getType()) : "";
    return me->isArrow() ? PageTypeOfPointer(me->getBase()) : PageTypeOfStorage(me->getBase());
  }
  if (const auto* ase = llvm::dyn_cast<clang::ArraySubscriptExpr>(e))
    return PageTypeOfPointer(ase->getBase());
  if (const auto* uo = llvm::dyn_cast<clang::UnaryOperator>(e)) {
    if (uo->getOpcode() == clang::UO_Deref) return PageTypeOfPointer(uo->getSubExpr());
    return PageTypeOfStorage(uo->getSubExpr());
  }
  if (const auto* bo = llvm::dyn_cast<clang::BinaryOperator>(e))
    return PageTypeOfStorage(bo->getOpcode() == clang::BO_Comma ? bo->getRHS() : bo->getLHS());
  if (const auto* ce = llvm::dyn_cast<clang::CastExpr>(e))
    return PageTypeOfStorage(ce->getSubExpr());
  if (const auto* co = llvm::dyn_cast<clang::AbstractConditionalOperator>(e)) {
    std::string t = PageTypeOfStorage(co->getTrueExpr());
    return t.empty() ? PageTypeOfStorage(co->getFalseExpr()) : t;
  }
  return "";
}

std::string PageVisitor::PageTypeOfPointer(const clang::Expr* e) const {
  if (e == nullptr) return "";
  e = e->IgnoreParens();
  if (!e->getType()->isPointerType()) return "";
  if (IsPageType(e->getType()->getPointeeType())) return PageName(e->getType()->getPointeeType());
  if (const auto* ce = llvm::dyn_cast<clang::CastExpr>(e)) {
    return ce->getCastKind() == clang::CK_ArrayToPointerDecay ? PageTypeOfStorage(ce->getSubExpr())
                                                              : PageTypeOfPointer(ce->getSubExpr());
  }
  if (const auto* uo = llvm::dyn_cast<clang::UnaryOperator>(e))
    return uo->getOpcode() == clang::UO_AddrOf ? PageTypeOfStorage(uo->getSubExpr()) : "";
  if (const auto* bo = llvm::dyn_cast<clang::BinaryOperator>(e)) {
    return bo->getLHS()->getType()->isPointerType() ? PageTypeOfPointer(bo->getLHS())
                                                    : PageTypeOfPointer(bo->getRHS());
  }
  return "";
}

std::string PageVisitor::PageName(clang::QualType t) const {
  t = t.getNonReferenceType();
  while (const clang::ArrayType* at = ctx_.getAsArrayType(t)) t = at->getElementType();
  return TypeName(t);
}
}  // namespace mmsb::rewriter
