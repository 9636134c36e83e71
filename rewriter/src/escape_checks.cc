// Escape checks: a non-const pointer or reference into page storage that leaves what the rewriter
// follows (passed to an uninstrumented function, stored in an aggregate or a member) marks its
// page escaped, so the page is diffed in full at the next commit; passed to a library function
// that writes through it without keeping it (library_model.cc), it marks the range instead.

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
  if (arg == nullptr || target.isNull() || target->isDependentType()) return;
  if (arg->getType().isNull() || arg->isTypeDependent() || arg->isValueDependent()) return;
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
}  // namespace mmsb::rewriter
