// Escape checks: a non-const pointer or reference into page storage that leaves what the rewriter
// follows (passed to an uninstrumented function, stored in an aggregate or a member) marks its
// page escaped, so the page is diffed in full at the next commit; passed to a library function
// that writes through it without keeping it (library_model.cc), it marks the range instead.

#include <algorithm>
#include <map>
#include <optional>
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

namespace {

// Library functions whose destination pointer is the end of what they write (they write below
// it): marking from the pointer to the end of its page would miss every byte they write, so
// such a pointer escapes the page instead.
bool WritesBelowPointer(llvm::StringRef name) {
  return name == "copy_backward" || name == "move_backward";
}

}  // namespace

void PageVisitor::CheckEscape(const clang::Expr* arg, clang::QualType target,
                              const clang::FunctionDecl* callee, llvm::StringRef how) {
  if (arg == nullptr || target.isNull() || arg->getType().isNull()) return;
  if (target->isDependentType() || arg->isTypeDependent() || arg->isValueDependent()) {
    // A template's pattern (`&g.a[K]`, `T* p = &g.a[1]`): checked, and its escape wrapped, in
    // each instantiation. A static variable's registrar goes in the pattern, from the pages the
    // pattern names (unless the target is a view of const, which escapes nothing).
    const clang::QualType to =
        target->isReferenceType() ? target.getNonReferenceType() : target->getPointeeType();
    const bool read_only = !to.isNull() && to.isConstQualified();
    if (static_init_var_ != nullptr && !InInstantiation() && !read_only)
      static_escapes_.push_back({arg, false});
    return;
  }
  const clang::Expr* e = IgnoreFullExprWrappers(arg);
  // Library code is not instrumented: a page-typed reference or pointer passed to it is only
  // safe when it does not write through it (or when we mark what it writes).
  const bool library = !LibraryName(callee).empty();
  const bool marks = library && IsNonRetaining(callee);
  auto escape_why = [&] {
    if (callee == nullptr)
      return how.empty() ? std::string("it leaves what the rewriter follows") : how.str();
    if (marks && WritesBelowPointer(LibraryName(callee)))
      return "it is passed to " + Quote(callee->getQualifiedNameAsString()) +
             ", which writes below the pointer it is given";
    return "it is passed to " + Quote(callee->getQualifiedNameAsString()) +
           (library ? ", a library function that may keep it"
                    : ", which is not instrumented through this argument");
  };
  auto callee_name = [&] { return Quote(callee->getQualifiedNameAsString()); };
  if (target->isReferenceType()) {
    const clang::QualType referent = target.getNonReferenceType();
    if (referent.isConstQualified()) {
      if (!referent->isPointerType()) return;
    } else if (!referent->isPointerType()) {
      if (IsPageType(referent) && !marks) return;
      if (IsPageStorage(e)) {
        if (marks) {
          NoteWrite(PageTypeOfStorage(e));
          if (Wrap(e, HeldRefOpen(), ")", kSiteMarkRef, e->getExprLoc()))
            Remark(DiagKind::kRemarkLibraryMark, e->getExprLoc(),
                   {callee_name(), "a reference to " + Quote(SourceText(e)), "the object"});
        } else if (Wrap(e, "::mmsb::rt::EscapeRef(", ")", kSiteEscapeRef, e->getExprLoc())) {
          if (static_init_var_ != nullptr) static_escapes_.push_back({e, true});
          Remark(DiagKind::kRemarkEscape, e->getExprLoc(),
                 {Quote(SourceText(e)), "a non-const reference to it escapes: " + escape_why()});
        }
      }
      return;
    } else if (e->isLValue()) {
      return;  // binds a pointer variable itself (that variable is not followed)
    }
    target = referent;  // a reference to a pointer: the pointer value leaves
  }
  if (!target->isPointerType()) return;
  const clang::QualType pointee = target->getPointeeType();
  if (pointee.isConstQualified() || pointee->isFunctionType()) return;
  if (IsPageType(pointee) && !marks) return;
  if (!IsPagePointer(e)) return;
  if (marks) NoteWrite(PageTypeOfPointer(e));
  if (marks && LibraryName(callee).starts_with("__sync_") &&
      !e->getType()->getPointeeType()->isIncompleteType()) {
    // __sync builtins write exactly the object their pointer designates. Held: the value
    // operand may commit, and is evaluated in no fixed order (issue 13, class 3).
    if (Wrap(e, "__builtin_addressof(" + HeldRefOpen() + "*(", ")))", kSiteAtomic, e->getExprLoc()))
      Remark(DiagKind::kRemarkBarrier, e->getExprLoc(),
             {Quote(SourceText(e)),
              "an atomic builtin: its object is marked when it is "
              "evaluated and again at the end of the full-expression"});
  } else if (marks && !WritesBelowPointer(LibraryName(callee))) {
    if (Wrap(e, HeldPointerOpen(), ")", kSiteMarkPointer, e->getExprLoc()))
      Remark(DiagKind::kRemarkLibraryMark, e->getExprLoc(),
             {callee_name(), "the pointer " + Quote(SourceText(e)),
              "the range from it to the end of its page"});
  } else if (Wrap(e, "::mmsb::rt::Escape(", ")", kSiteEscapePointer, e->getExprLoc())) {
    if (static_init_var_ != nullptr) static_escapes_.push_back({e, true});
    Remark(DiagKind::kRemarkEscape, e->getExprLoc(),
           {Quote(SourceText(e)), "a non-const pointer into it escapes: " + escape_why()});
  }
}

void PageVisitor::CheckAggregateInits(clang::QualType t, llvm::ArrayRef<clang::Expr*> inits) {
  if (t.isNull() || t->isDependentType()) return;
  if (const clang::ArrayType* at = ctx_.getAsArrayType(t)) {
    for (const clang::Expr* init : inits)
      CheckEscape(init, at->getElementType(), nullptr, "it initialises an array element");
    return;
  }
  const clang::RecordDecl* rd = t->getAsRecordDecl();
  if (rd == nullptr) return;
  size_t i = 0;
  if (const auto* cxx = llvm::dyn_cast<clang::CXXRecordDecl>(rd)) i = cxx->getNumBases();
  for (const clang::FieldDecl* f : rd->fields()) {
    if (f->isUnnamedBitField()) continue;
    if (i >= inits.size()) break;
    if (rd->isUnion() && inits.size() == 1) {
      // Only the initialised member has an initialiser; find it by type.
      if (!ctx_.hasSameType(f->getType().getNonReferenceType(),
                            inits[0]->getType().getNonReferenceType()) &&
          !f->getType()->isReferenceType())
        continue;
    }
    CheckEscape(inits[i++], f->getType(), nullptr,
                "it initialises member " + Quote(f->getName()) + " of an aggregate");
    if (rd->isUnion()) break;
  }
}

void PageVisitor::CollectPageRoots(const clang::Expr* e, std::vector<std::string>* roots,
                                   bool* dependent, bool storage) const {
  if (e == nullptr) return;
  e = e->IgnoreParenImpCasts();
  if (llvm::isa<clang::DependentScopeDeclRefExpr>(e)) {
    // `T::page` in a template's pattern, as storage (`&T::page.a[3]`): a page may be there, and
    // no name here says which.
    if (dependent != nullptr && storage) *dependent = true;
  } else if (const auto* dme = llvm::dyn_cast<clang::CXXDependentScopeMemberExpr>(e)) {
    if (!dme->isArrow() && !dme->isImplicitAccess())
      CollectPageRoots(dme->getBase(), roots, dependent, true);  // `T::page.a`
  } else if (const auto* dre = llvm::dyn_cast<clang::DeclRefExpr>(e)) {
    const auto* vd = llvm::dyn_cast<clang::VarDecl>(dre->getDecl());
    if (vd != nullptr && IsPageVariable(vd)) {
      const std::string name = QualifiedName(vd);
      if (!name.empty()) roots->push_back("&(" + name + ")");
    } else if (vd != nullptr && vd->getType()->isReferenceType() && vd->hasGlobalStorage() &&
               vd->getInit() != nullptr) {
      // `S& alias = g0;`
      CollectPageRoots(IgnoreFullExprWrappers(vd->getInit()), roots, dependent, true);
    }
  } else if (const auto* me = llvm::dyn_cast<clang::MemberExpr>(e)) {
    if (!me->isArrow()) CollectPageRoots(me->getBase(), roots, dependent, true);
  } else if (const auto* ase = llvm::dyn_cast<clang::ArraySubscriptExpr>(e)) {
    CollectPageRoots(ase->getBase(), roots, dependent, true);
  } else if (const auto* uo = llvm::dyn_cast<clang::UnaryOperator>(e)) {
    if (uo->getOpcode() == clang::UO_AddrOf)
      CollectPageRoots(uo->getSubExpr(), roots, dependent, true);
  } else if (const auto* bo = llvm::dyn_cast<clang::BinaryOperator>(e)) {
    if (bo->isAdditiveOp()) {
      CollectPageRoots(bo->getLHS(), roots, dependent, false);
      CollectPageRoots(bo->getRHS(), roots, dependent, false);
    } else if (bo->isCommaOp()) {
      CollectPageRoots(bo->getRHS(), roots, dependent, storage);
    }
  } else if (const auto* co = llvm::dyn_cast<clang::AbstractConditionalOperator>(e)) {
    CollectPageRoots(co->getTrueExpr(), roots, dependent, storage);
    CollectPageRoots(co->getFalseExpr(), roots, dependent, storage);
  } else if (const auto* ce = llvm::dyn_cast<clang::CastExpr>(e)) {
    CollectPageRoots(ce->getSubExpr(), roots, dependent, storage);
  }
}

void PageVisitor::EmitStaticEscapes(const clang::VarDecl* vd, size_t first) {
  if (first >= static_escapes_.size() || a_.options_.report_only) return;
  std::vector<std::string> roots;
  bool unnamed = false;  // an escape without a nameable page: no registrar covers it
  bool dependent = false;
  for (size_t i = first; i < static_escapes_.size(); ++i) {
    const size_t before = roots.size();
    CollectPageRoots(static_escapes_[i].e, &roots, &dependent);
    unnamed |= static_escapes_[i].named && roots.size() == before;
  }
  if (unnamed) roots.clear();
  // Storage named through a template parameter (`&T::page.a[3]`): the pattern cannot name its
  // page (its text could, but not at namespace scope, and `&(T::x)` is not valid for every
  // `x`), and an instantiation's constant initialiser runs no Escape. Said, not guessed; except
  // for a function's static pointer or reference, which each instantiation follows like any
  // local (its stores get barriers, its value escapes where it leaves).
  const bool followed_local =
      vd->isStaticLocal() && (vd->getType()->isPointerType() || vd->getType()->isReferenceType());
  if (dependent && !unnamed && !followed_local) {
    AddFinding(DiagKind::kUnrewritableDecl, vd->getLocation(),
               {"static variable " + Quote(vd->getName()),
                "its constant initialiser points into storage named through a template "
                "parameter, whose page cannot be named here"});
  }
  std::sort(roots.begin(), roots.end());
  roots.erase(std::unique(roots.begin(), roots.end()), roots.end());
  auto untracked = [&](const char* why) {
    AddFinding(DiagKind::kUnrewritableDecl, vd->getLocation(),
               {"static variable " + Quote(vd->getName()), why});
  };
  if (roots.empty()) {
    if (!unnamed) return;  // template initialiser lists that name no page
    // A dynamic initialiser runs its Escape, and the runtime keeps it for a page registered later
    // (MarkEscapedAt); a constant one runs nothing. A template's initialiser may be either, by
    // instantiation: it is taken as constant.
    if (vd->isTemplated() || vd->hasConstantInitialization())
      untracked(
          "its constant initialiser points into page storage whose page cannot be named here");
    return;
  }
  // Where the registrar goes: after the `;` that ends the declaration (past any other declarators
  // and their lambdas). It names the pages only, never the variable, so it may run before the
  // variable is first used but never after (the runtime keeps an escape that comes before the
  // page's registration).
  // - A function's static local (also in a template or a generic lambda: each instantiation gets
  //   its own, run when control first passes the declaration, before any use of the variable).
  // - A namespace-scope variable, a variable template, or a static data member defined out of its
  //   class (also of a class template): a namespace-scope registrar, run at dynamic
  //   initialisation.
  // - A static data member initialised in its class: there is no statement or namespace-scope
  //   declaration in a class, and a class template's members are instantiated only when used,
  //   so the registrar goes after the outermost class that holds it, at namespace scope. It marks
  //   the pages escaped whether or not the member is ever used (a cost, not a loss).
  clang::SourceLocation loc = vd->getEndLoc();
  if (vd->getLexicalDeclContext()->isRecord()) {
    const clang::Decl* outer = nullptr;
    for (const clang::DeclContext* dc = vd->getLexicalDeclContext(); dc->isRecord();
         dc = dc->getLexicalParent()) {
      outer = llvm::cast<clang::Decl>(dc);
    }
    if (outer == nullptr || !outer->getLexicalDeclContext()->isFileContext()) {
      untracked(
          "a static data member of a local class, initialised with a pointer into page "
          "storage");
      return;
    }
    if (const auto* rd = llvm::dyn_cast<clang::CXXRecordDecl>(outer)) {
      if (const clang::ClassTemplateDecl* ct = rd->getDescribedClassTemplate()) outer = ct;
    }
    loc = outer->getEndLoc();
  }
  if (loc.isMacroID()) {
    untracked("its declaration is inside a macro expansion");
    return;
  }
  clang::SourceLocation after;
  int depth = 0;
  for (int i = 0; i < 100000 && !after.isValid(); ++i) {
    std::optional<clang::Token> t = clang::Lexer::findNextToken(loc, sm_, lo_);
    if (!t || t->getLocation().isMacroID() || t->is(clang::tok::eof)) break;
    if (t->isOneOf(clang::tok::l_paren, clang::tok::l_brace, clang::tok::l_square)) ++depth;
    if (t->isOneOf(clang::tok::r_paren, clang::tok::r_brace, clang::tok::r_square)) --depth;
    if (t->is(clang::tok::semi) && depth == 0) after = t->getEndLoc();
    loc = t->getLocation();
  }
  std::string text;
  for (const std::string& root : roots) {
    text += " static ::mmsb::rt::StaticEscape _mmsb_static_escape_" +
            std::to_string(++static_escape_seq_) + "{(const void*)" + root + "};";
  }
  if (!after.isValid() ||
      !InsertAt(after, WithoutWarnings(text), kSiteStaticEscape + static_escape_seq_,
                PageAnalyzer::Slot::kStatement)) {
    untracked("no place after its declaration for the registrar that marks its page escaped");
    return;
  }
  for (const std::string& root : roots) {
    Remark(DiagKind::kRemarkEscape, vd->getLocation(),
           {Quote(root.substr(2, root.size() - 3)),
            "the initialiser of static variable " + Quote(vd->getName()) +
                " points into it (marked when the page is registered)"});
  }
}

}  // namespace mmsb::rewriter
