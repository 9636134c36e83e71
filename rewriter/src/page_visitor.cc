// The traversal's dispatch: RecursiveASTVisitor's Traverse*/Visit* entry points decide, per
// construct, whether a store gets a barrier, a call a mark, a binding an escape check, or a
// declaration a check or an edit, and hand the work to the files that page_visitor.h lists.
// Findings and -Rmmsb remarks are recorded here too.

#include "page_visitor.h"

#include <string>
#include <vector>

#include "mmsb/rewriter/attributes.h"

#include "clang/AST/Attr.h"
#include "clang/AST/DeclTemplate.h"
#include "clang/AST/ExprCXX.h"
#include "clang/AST/Mangle.h"
#include "clang/AST/StmtCXX.h"
#include "clang/Lex/Lexer.h"
#include "member_callees.h"

namespace mmsb::rewriter {

bool IsInMmsbNamespace(const clang::Decl* d) {
  for (const clang::DeclContext* dc = d->getDeclContext(); dc != nullptr; dc = dc->getParent()) {
    if (const auto* ns = llvm::dyn_cast<clang::NamespaceDecl>(dc)) {
      if (ns->getName() == "mmsb" && ns->getParent()->getRedeclContext()->isTranslationUnit())
        return true;
    }
  }
  return false;
}

bool PageVisitor::TraverseDecl(clang::Decl* d) {
  if (d == nullptr) return true;
  if (!llvm::isa<clang::TranslationUnitDecl>(d)) {
    clang::SourceLocation loc = d->getLocation();
    if (loc.isValid() && sm_.isInSystemHeader(sm_.getExpansionLoc(loc))) {
      // A page type in a system header (an -isystem directory, or a header that a system header
      // includes) cannot be rewritten. Say so, at the main file (clang hides warnings located in
      // system headers), instead of leaving its objects untracked. (CMake's precompiled-header
      // wrapper includes the user's headers under #pragma clang system_header; the plugin blanks
      // it while it builds the PCH, mmsb/rewriter/pch_wrapper.h. A PCH built without the
      // plugin, or a wrapper with another prologue, still lands here.)
      const auto* rd = llvm::dyn_cast<clang::CXXRecordDecl>(d);
      if (rd != nullptr && rd->isThisDeclarationADefinition() && IsPageRecord(rd) &&
          !rd->isDependentType() && reported_system_pages_.insert(rd).second) {
        bool instrumented = false;
        for (const clang::Decl* m : rd->decls()) {
          const auto* nd = llvm::dyn_cast<clang::NamedDecl>(m);
          instrumented |=
              nd != nullptr && nd->getDeclName().isIdentifier() && nd->getName() == "_mmsb_type";
        }
        if (!instrumented) {
          AddFinding(DiagKind::kUnrewritableDecl, sm_.getLocForStartOfFile(sm_.getMainFileID()),
                     {"page type " + Quote(RecordName(rd)) + " (" +
                          sm_.getFilename(sm_.getExpansionLoc(loc)).str() + ")",
                      "it is declared in a system header: an -isystem directory, or a header "
                      "that a system header includes; include it with -I, and build a "
                      "precompiled header that holds it with the plugin"});
        }
      }
      return true;
    }
    if (d->isImplicit() && !llvm::isa<clang::CXXRecordDecl>(d)) return true;
  }
  const auto* fd = llvm::dyn_cast<clang::FunctionDecl>(d);
  if (fd != nullptr) {
    if (fd->doesThisDeclarationHaveABody()) ScanLocals(fd->getBody());
    functions_.push_back(fd);
  }
  const auto* vd = llvm::dyn_cast<clang::VarDecl>(d);
  const bool static_init = vd != nullptr && !llvm::isa<clang::ParmVarDecl>(vd) &&
                           vd->hasGlobalStorage() && vd->getInit() != nullptr &&
                           !IsPageVariable(vd) && !InInstantiation();
  const clang::VarDecl* outer_static_init = static_init_var_;
  const size_t first_static_escape = static_escapes_.size();
  // A function's body is not its declaration's initialiser (a local class's member functions).
  if (static_init || fd != nullptr) static_init_var_ = static_init ? vd : nullptr;
  bool ok = Base::TraverseDecl(d);
  if (static_init || fd != nullptr) static_init_var_ = outer_static_init;
  if (static_init) {
    EmitStaticEscapes(vd, first_static_escape);
    static_escapes_.resize(first_static_escape);
  }
  if (fd != nullptr) functions_.pop_back();
  return ok;
}

bool PageVisitor::TraverseLambdaExpr(clang::LambdaExpr* le) {
  // A lambda's body runs when it is called, not when a static variable holding it is initialised.
  // (Its captures' initialisers do run then; they are not traversed as part of the body.)
  struct Restore {
    const clang::VarDecl*& slot;
    const clang::VarDecl* saved;
    ~Restore() { slot = saved; }
  } restore{static_init_var_, static_init_var_};
  static_init_var_ = nullptr;
  ScanLocals(le->getBody());
  functions_.push_back(le->getCallOperator());
  bool ok = Base::TraverseLambdaExpr(le);
  functions_.pop_back();
  // A generic lambda's body is dependent; its instantiations carry the page types.
  if (const clang::FunctionTemplateDecl* ftd = le->getDependentCallOperator()) {
    for (clang::FunctionDecl* spec : ftd->specializations()) {
      if (spec->getTemplateSpecializationKind() == clang::TSK_ImplicitInstantiation &&
          spec->hasBody()) {
        ScanLocals(spec->getBody());
        functions_.push_back(spec);
        ok = ok && TraverseStmt(spec->getBody());
        functions_.pop_back();
      }
    }
  }
  return ok;
}

bool PageVisitor::TraverseStmt(clang::Stmt* s, DataRecursionQueue*) {
  if (s == nullptr) return true;
  parents_.push_back(s);
  bool ok = Base::TraverseStmt(s, nullptr);
  parents_.pop_back();
  return ok;
}

bool PageVisitor::TraverseForStmt(clang::ForStmt* fs, DataRecursionQueue*) {
  PlanLoopMarks(fs);
  return Base::TraverseForStmt(fs, nullptr);
}

bool PageVisitor::TraverseConstructorInitializer(clang::CXXCtorInitializer* init) {
  if (init->isAnyMemberInitializer() && init->isWritten()) {
    if (const clang::FieldDecl* f = init->getAnyMember())
      CheckEscape(init->getInit(), f->getType(), nullptr,
                  "it initialises member " + Quote(f->getName()));
  }
  return Base::TraverseConstructorInitializer(init);
}

bool PageVisitor::VisitBinaryOperator(clang::BinaryOperator* bo) {
  if (!bo->isAssignmentOp()) return true;
  const clang::Expr* lhs = bo->getLHS();
  if (IsPageStorage(lhs)) {
    if (!IsMarkingCall(lhs)) Barrier(lhs, bo->getOperatorLoc());
  } else if (bo->getOpcode() == clang::BO_Assign && !IsFollowedVariable(lhs)) {
    CheckEscape(bo->getRHS(), lhs->getType(), nullptr,
                "it is assigned to " + Quote(SourceText(lhs)) + ", which is not followed");
  }
  return true;
}

bool PageVisitor::VisitUnaryOperator(clang::UnaryOperator* uo) {
  if (uo->isIncrementDecrementOp() && IsPageStorage(uo->getSubExpr()) &&
      !IsMarkingCall(uo->getSubExpr()))
    Barrier(uo->getSubExpr(), uo->getOperatorLoc());
  return true;
}

bool PageVisitor::VisitCXXOperatorCallExpr(clang::CXXOperatorCallExpr* oc) {
  if (oc->getNumArgs() == 0) return true;
  const clang::OverloadedOperatorKind op = oc->getOperator();
  const bool store_like =
      oc->isAssignmentOp() || op == clang::OO_PlusPlus || op == clang::OO_MinusMinus;
  const auto* md = llvm::dyn_cast_or_null<clang::CXXMethodDecl>(oc->getDirectCallee());
  if (md != nullptr && IsInMmsbNamespace(md)) return true;
  const bool mutating_member = md != nullptr && IsWritingMember(md) && !CalleeIsInstrumented(md);
  if ((store_like || mutating_member) && IsPageStorage(oc->getArg(0))) {
    Barrier(oc->getArg(0), oc->getOperatorLoc());
    if (mutating_member && !md->isTrivial()) EscapeIfKept(md, oc->getArg(0), oc->getOperatorLoc());
  } else if (md != nullptr && !md->isStatic() && !md->isTrivial() && !IsWritingMember(md) &&
             IsPageStorage(oc->getArg(0)) && !CalleeIsInstrumented(md)) {
    // A const operator writes nothing here, but it may keep `this` as a const member function
    // may (VisitCXXMemberCallExpr): that escapes the page.
    EscapeIfKept(md, oc->getArg(0), oc->getOperatorLoc());
  }
  // A trivial copy or move assignment reads its argument.
  if (md != nullptr && md->isTrivial()) return true;
  // Remaining arguments bind to parameters like any call.
  if (const clang::FunctionDecl* fd = oc->getDirectCallee()) {
    if (IsTransparent(fd)) return true;
    const unsigned first = md != nullptr ? 1 : 0;
    for (unsigned i = first; i < oc->getNumArgs(); ++i) {
      const unsigned p = i - first;
      if (p < fd->getNumParams()) CheckEscape(oc->getArg(i), fd->getParamDecl(p)->getType(), fd);
    }
  }
  return true;
}

bool PageVisitor::VisitCXXMemberCallExpr(clang::CXXMemberCallExpr* mc) {
  const clang::Expr* callee = mc->getCallee()->IgnoreParens();
  if (const auto* pm = llvm::dyn_cast<clang::BinaryOperator>(callee)) {
    // (obj.*pmf)(...) / (ptr->*pmf)(...): the callee is unknown, only its constness is.
    const auto* mpt = pm->getRHS()->getType()->getAs<clang::MemberPointerType>();
    const auto* fpt =
        mpt != nullptr ? mpt->getPointeeType()->getAs<clang::FunctionProtoType>() : nullptr;
    if (fpt == nullptr || fpt->getMethodQuals().hasConst()) return true;
    const clang::Expr* obj = pm->getLHS();
    if (pm->getOpcode() == clang::BO_PtrMemI) {
      if (IsPagePointer(obj)) {
        NoteWrite(PageTypeOfPointer(obj));
        // Held: the call's arguments, evaluated after the object, may commit (class 3).
        if (Wrap(obj, "__builtin_addressof(" + HeldRefOpen() + "*(", ")))", kSitePointerBase,
                 pm->getOperatorLoc()))
          Remark(DiagKind::kRemarkCallMark, pm->getOperatorLoc(),
                 {"a call through a pointer to member function", Quote(SourceText(obj))});
      }
    } else if (IsPageStorage(obj)) {
      NoteWrite(PageTypeOfStorage(obj));
      if (Wrap(obj, HeldRefOpen(), ")", kSiteStore, pm->getOperatorLoc()))
        Remark(DiagKind::kRemarkCallMark, pm->getOperatorLoc(),
               {"a call through a pointer to member function", Quote(SourceText(obj))});
    }
    return true;
  }
  const clang::CXXMethodDecl* md = mc->getMethodDecl();
  if (md == nullptr || md->isStatic() || IsInMmsbNamespace(md)) return true;
  if (llvm::isa<clang::CXXDestructorDecl>(md)) return true;
  const auto* me = llvm::dyn_cast<clang::MemberExpr>(callee);
  if (me == nullptr) return true;
  const clang::Expr* base = me->getBase();
  if (!IsWritingMember(md)) {
    // A const callee writes nothing here, but it may keep `this` (a pointer to const that a
    // later const_cast writes through): that escapes the page as a non-const callee's does.
    if ((me->isArrow() ? IsPagePointer(base) : IsPageStorage(base)) && !CalleeIsInstrumented(md))
      EscapeIfKept(md, base, me->getMemberLoc());
    return true;
  }
  // The call writes the page (for the IR capture) even when the callee's own stores are
  // instrumented and the call needs no mark.
  if (me->isArrow() ? IsPagePointer(base) : IsPageStorage(base))
    NoteWrite(me->isArrow() ? PageTypeOfPointer(base) : PageTypeOfStorage(base));
  const bool page_base = me->isArrow() ? IsPagePointer(base) : IsPageStorage(base);
  const std::string call_name = Quote(md->getQualifiedNameAsString());
  if (CalleeIsInstrumented(md)) {
    if (page_base)
      Remark(DiagKind::kRemarkNoMark, me->getMemberLoc(),
             {call_name, Quote(SourceText(base)),
              "the member function is compiled in this file, where its own stores get barriers"});
    return true;
  }
  if (page_base)
    Remark(DiagKind::kRemarkCallMark, me->getMemberLoc(), {call_name, Quote(SourceText(base))});
  if (page_base) EscapeIfKept(md, base, me->getMemberLoc());
  if (me->isArrow()) {
    if (!IsPagePointer(base)) return true;
    // The object is marked again at the end of the full-expression: an argument may commit
    // (`g->acc.Add(produce())` with `produce` a transaction) after the first mark and before the
    // callee writes.
    if (InExplicitConstexprFunction()) {
      if (const auto* th = llvm::dyn_cast<clang::CXXThisExpr>(base->IgnoreParenImpCasts());
          th != nullptr && th->isImplicit()) {
        InsertAt(me->getMemberLoc(), PointerBarrierOpen() + "this)->", kSiteThisMember);
        return true;
      }
      Wrap(base, PointerBarrierOpen(), ")", kSitePointerBase, me->getMemberLoc());
      return true;
    }
    if (const auto* th = llvm::dyn_cast<clang::CXXThisExpr>(base->IgnoreParenImpCasts());
        th != nullptr && th->isImplicit()) {
      InsertAt(me->getMemberLoc(), "__builtin_addressof(" + HeldRefOpen() + "*this))->",
               kSiteThisMember);
      return true;
    }
    Wrap(base, "__builtin_addressof(" + HeldRefOpen() + "*(", ")))", kSitePointerBase,
         me->getMemberLoc());
  } else if (IsPageStorage(base)) {
    if (InExplicitConstexprFunction()) {
      Wrap(base, LvalueBarrier().first, LvalueBarrier().second, kSiteStore, me->getMemberLoc());
    } else {
      Wrap(base, HeldRefOpen(), ")", kSiteStore, me->getMemberLoc());
    }
  }
  return true;
}

void PageVisitor::EscapeIfKept(const clang::CXXMethodDecl* md, const clang::Expr* base,
                               clang::SourceLocation loc) {
  if (!CalleeMayKeepThis(md)) return;
  // The held mark covers the callee's stores during the call only; an address it keeps is
  // written through later, by code the rewriter does not see (issue: `this` kept by a member
  // function of a page's member type). The page is diffed in full from this call on.
  if (EscapeBefore(base)) {
    Remark(DiagKind::kRemarkEscape, loc,
           {Quote(SourceText(base)), "it is the object of a call to " +
                                         Quote(md->getQualifiedNameAsString()) +
                                         ", which may keep its address"});
  } else {
    Unrewritable(base, loc);
  }
}

bool PageVisitor::VisitGCCAsmStmt(clang::GCCAsmStmt* as) {
  bool memory_clobber = false;
  for (unsigned i = 0; i < as->getNumClobbers(); ++i)
    memory_clobber = memory_clobber || as->getClobber(i) == "memory";
  auto escape = [&](const clang::Expr* e, const char* what) {
    AddFinding(DiagKind::kAsmStore, as->getAsmLoc(), {what});
    if (EscapeBefore(e)) {
      Remark(DiagKind::kRemarkEscape, as->getAsmLoc(),
             {Quote(SourceText(e)), std::string("inline asm ") + what + " it"});
    } else {
      Unrewritable(e, as->getAsmLoc());
    }
  };
  for (const clang::Expr* out : as->outputs()) {
    if (IsPageStorage(out)) {
      NoteWrite(PageTypeOfStorage(out));
      escape(out, "writes");
    } else if (memory_clobber && IsPagePointer(out)) {
      escape(out, "may write through a pointer to");
    }
  }
  for (const clang::Expr* in : as->inputs()) {
    // A pointer operand (or an array that decays to one) of asm that clobbers memory.
    if (!memory_clobber || !in->getType()->isPointerType()) continue;
    if (IsPagePointer(in) || IsPageStorage(in->IgnoreParenImpCasts()))
      escape(in->IgnoreParenImpCasts(), "may write through a pointer to");
  }
  return true;
}

bool PageVisitor::VisitAtomicExpr(clang::AtomicExpr* ae) {
  const clang::AtomicExpr::AtomicOp op = ae->getOp();
  const bool load = op == clang::AtomicExpr::AO__atomic_load_n ||
                    op == clang::AtomicExpr::AO__c11_atomic_load ||
                    op == clang::AtomicExpr::AO__atomic_load;
  std::vector<const clang::Expr*> ptrs;
  if (!load) ptrs.push_back(ae->getPtr());
  // The out-parameters of the generic forms (__atomic_load's result, compare_exchange's
  // expected value) are written too.
  for (unsigned i = 0; i < ae->getNumSubExprs(); ++i) {
    const clang::Expr* sub = ae->getSubExprs()[i];
    if (sub != ae->getPtr() && sub->getType()->isPointerType() &&
        !sub->getType()->getPointeeType().isConstQualified())
      ptrs.push_back(sub);
  }
  for (const clang::Expr* p : ptrs) {
    if (p == nullptr || !IsPagePointer(p)) continue;
    NoteWrite(PageTypeOfPointer(p));
    const bool sized = !p->getType()->getPointeeType()->isIncompleteType();
    // The builtin's other operands are evaluated in no fixed order and may commit (a
    // transaction): a mark made before them only is not enough (issue 13, class 3). The held
    // forms mark again at the end of the full-expression, after the atomic store.
    if (Wrap(p, sized ? "__builtin_addressof(" + HeldRefOpen() + "*(" : HeldPointerOpen(),
             sized ? ")))" : ")", kSiteAtomic, ae->getBuiltinLoc()))
      Remark(DiagKind::kRemarkBarrier, ae->getBuiltinLoc(),
             {Quote(SourceText(p)), sized ? "an atomic operation: its object is marked when it is "
                                            "evaluated and again at the end of the "
                                            "full-expression"
                                          : "an atomic operation on an incomplete type: the rest "
                                            "of its page is marked when it is evaluated and again "
                                            "at the end of the full-expression"});
  }
  return true;
}

bool PageVisitor::VisitCallExpr(clang::CallExpr* ce) {
  if (llvm::isa<clang::CXXOperatorCallExpr>(ce)) return true;  // handled above
  const clang::FunctionDecl* fd = ce->getDirectCallee();
  CheckSharedAllocation(ce, fd);
  if (fd != nullptr && (IsInMmsbNamespace(fd) || IsTransparent(fd))) return true;
  const clang::FunctionProtoType* proto = nullptr;
  if (fd != nullptr) {
    proto = fd->getType()->getAs<clang::FunctionProtoType>();
  } else if (const clang::Expr* callee = ce->getCallee()) {
    clang::QualType t = callee->getType();
    if (const auto* pt = t->getAs<clang::PointerType>()) t = pt->getPointeeType();
    proto = t->getAs<clang::FunctionProtoType>();
  }
  for (unsigned i = 0; i < ce->getNumArgs(); ++i) {
    clang::QualType param = (proto != nullptr && i < proto->getNumParams())
                                ? proto->getParamType(i)
                                : ce->getArg(i)->getType();
    CheckEscape(ce->getArg(i), param, fd);
  }
  return true;
}

bool PageVisitor::VisitCXXConstructExpr(clang::CXXConstructExpr* cc) {
  const clang::CXXConstructorDecl* ctor = cc->getConstructor();
  if (ctor == nullptr || IsInMmsbNamespace(ctor)) return true;
  if (ctor->isCopyOrMoveConstructor() && ctor->isTrivial()) return true;
  for (unsigned i = 0; i < cc->getNumArgs() && i < ctor->getNumParams(); ++i)
    CheckEscape(cc->getArg(i), ctor->getParamDecl(i)->getType(), ctor);
  return true;
}

bool PageVisitor::VisitCXXNewExpr(clang::CXXNewExpr* ne) {
  if (ne->isArray() && IsPageTypeOrArrayOf(ctx_, ne->getAllocatedType())) {
    AddFinding(DiagKind::kUntrackedArrayNew, ne->getBeginLoc(),
               {Quote(TypeName(ne->getAllocatedType()))});
  }
  // Placement new into page storage: the new object is written by its constructor and then
  // used through a pointer of another type.
  if (const clang::FunctionDecl* op = ne->getOperatorNew()) {
    for (unsigned i = 0; i < ne->getNumPlacementArgs(); ++i) {
      if (i + 1 < op->getNumParams())
        CheckEscape(ne->getPlacementArg(i), op->getParamDecl(i + 1)->getType(), nullptr,
                    "placement new constructs an object in it");
    }
  }
  return true;
}

bool PageVisitor::VisitReturnStmt(clang::ReturnStmt* rs) {
  if (rs->getRetValue() == nullptr || functions_.empty()) return true;
  CheckEscape(rs->getRetValue(), functions_.back()->getReturnType(), nullptr, "it is returned");
  return true;
}

bool PageVisitor::VisitInitListExpr(clang::InitListExpr* il) {
  // The traversal sees the syntactic form; the semantic one pairs inits with members.
  const clang::InitListExpr* sem = il->isSemanticForm() ? il : il->getSemanticForm();
  // A list whose type depends on a template parameter has no semantic form (its type reads as
  // dependent, or as `void` in a pattern).
  if (sem == nullptr || sem->getType().isNull() || sem->getType()->isDependentType() ||
      sem->getType()->isVoidType()) {
    NoteTemplateInits({il->getInits(), il->getNumInits()});
    return true;
  }
  if (sem->isTransparent()) return true;
  CheckAggregateInits(sem->getType(), sem->inits());
  return true;
}

bool PageVisitor::VisitParenListExpr(clang::ParenListExpr* pl) {
  NoteTemplateInits(pl->exprs());
  return true;
}

bool PageVisitor::VisitCXXUnresolvedConstructExpr(clang::CXXUnresolvedConstructExpr* ce) {
  NoteTemplateInits({ce->arg_begin(), ce->arg_end()});
  return true;
}

void PageVisitor::NoteTemplateInits(llvm::ArrayRef<clang::Expr*> inits) {
  // A template's initialiser of a dependent type (a static local of a function template, a static
  // member of a class template): its elements are checked, and their escapes wrapped, in each
  // instantiation, where the targets' types are known. The static variable's registrar goes in
  // the pattern, from the pages its elements name: a pointer to non-const page storage, or page
  // storage itself, which may bind a reference (or be copied: then the registrar costs a full
  // diff of the page at every commit, never a lost store).
  if (static_init_var_ == nullptr || InInstantiation()) return;
  const clang::QualType var = static_init_var_->getType().getNonReferenceType();
  if (static_init_var_->getType()->isReferenceType()
          ? var.isConstQualified()
          : var->isPointerType() && var->getPointeeType().isConstQualified())
    return;  // `static const T* p{&g.a[1]}`: a read-only view escapes nothing
  for (const clang::Expr* init : inits) {
    if (init == nullptr || init->getType().isNull()) continue;
    const clang::QualType t = init->getType();
    const bool pointer = t->isPointerType() && !t->getPointeeType().isConstQualified();
    const bool storage = init->isLValue() && !t.isConstQualified();
    if (pointer || storage || t->isDependentType()) static_escapes_.push_back({init, false});
  }
}

bool PageVisitor::VisitCXXParenListInitExpr(clang::CXXParenListInitExpr* pl) {
  CheckAggregateInits(pl->getType(), pl->getInitExprs());
  return true;
}

bool PageVisitor::VisitCXXForRangeStmt(clang::CXXForRangeStmt* fr) {
  const clang::VarDecl* var = fr->getLoopVariable();
  const clang::Expr* range = fr->getRangeInit();
  if (var == nullptr || range == nullptr || !var->getType()->isReferenceType()) return true;
  if (!IsPageStorage(range)) return true;
  followed_refs_.insert(var);
  PlanRangeForMark(fr);
  return true;
}

bool PageVisitor::VisitCXXRecordDecl(clang::CXXRecordDecl* rd) {
  if (!rd->isThisDeclarationADefinition() || !IsPageRecord(rd) || rd->isLambda()) return true;
  const bool instantiation =
      llvm::isa<clang::ClassTemplateSpecializationDecl>(rd) &&
      rd->getTemplateSpecializationKind() == clang::TSK_ImplicitInstantiation;
  if (!rd->isDependentType()) CheckPageRecord(rd);
  if (!instantiation) InstrumentPageRecord(rd);
  if (instantiation) DescribeInstantiation(rd);
  return true;
}

bool PageVisitor::VisitVarDecl(clang::VarDecl* vd) {
  if (llvm::isa<clang::ParmVarDecl>(vd) || vd->isImplicit()) return true;
  if (vd->getTemplateSpecializationKind() == clang::TSK_ImplicitInstantiation ||
      (vd->isStaticDataMember() && ParentIsInstantiation(vd)))
    return true;
  const bool page_type = IsPageTypeOrArrayOf(ctx_, vd->getType());
  if (!vd->getType()->isReferenceType()) {
    if (page_type && vd->hasLocalStorage() && !llvm::isa<clang::DecompositionDecl>(vd)) {
      AddFinding(DiagKind::kUntrackedAutomatic, vd->getLocation(),
                 {"variable " + Quote(vd->getName()), Quote(DisplayName(vd->getType()))});
    } else if (page_type && vd->getTLSKind() != clang::VarDecl::TLS_None) {
      AddFinding(DiagKind::kUntrackedThreadLocal, vd->getLocation(),
                 {Quote(vd->getName()), Quote(TypeName(vd->getType()))});
    }
  }
  if (!IsPageVariable(vd)) CheckContainer(vd->getType(), vd->getLocation());
  if (IsPageVariable(vd)) {
    InstrumentStaticPage(vd);
    LabelPageSymbol(vd);
  }
  const clang::Expr* init = vd->getInit();
  // A constexpr variable of static storage may point into a page (`constexpr int* p = &g.a[3];`):
  // its Escape (constexpr) and the registrar after it (EmitStaticEscapes) apply as to any other.
  if (init == nullptr || IsPageVariable(vd) || (vd->isConstexpr() && !vd->hasGlobalStorage()))
    return true;
  if (vd->getType()->isReferenceType() && vd->isLocalVarDecl() && FollowReference(vd)) return true;
  if (followed_ptrs_.count(vd)) return true;
  CheckEscape(init, vd->getType(), nullptr,
              "it initialises " + Quote(vd->getName()) + ", which is not followed");
  return true;
}

bool PageVisitor::VisitFieldDecl(clang::FieldDecl* fd) {
  const clang::RecordDecl* parent = fd->getParent();
  if (parent->isLambda() || ParentIsInstantiation(fd)) return true;
  if (IsPageTypeOrArrayOf(ctx_, fd->getType()) && !IsPageRecord(parent)) {
    AddFinding(DiagKind::kUntrackedMember, fd->getLocation(),
               {Quote(fd->getName()), Quote(TypeName(fd->getType())), Quote(RecordName(parent))});
  }
  CheckContainer(fd->getType(), fd->getLocation());
  if (fd->hasInClassInitializer())
    CheckEscape(fd->getInClassInitializer(), fd->getType(), nullptr,
                "it initialises member " + Quote(fd->getName()));
  return true;
}

bool PageVisitor::VisitFunctionDecl(clang::FunctionDecl* fd) {
  if (!IsTransactionFunction(fd) || !fd->doesThisDeclarationHaveABody()) return true;
  if (fd->isTemplateInstantiation()) return true;
  if (fd->isConstexpr()) {
    AddFinding(DiagKind::kUnrewritableDecl, fd->getLocation(),
               {"transaction " + Quote(fd->getNameAsString()), "a constexpr function"});
    return true;
  }
  const clang::Stmt* body = fd->getBody();
  const auto* tryst = llvm::dyn_cast<clang::CXXTryStmt>(body);
  if (tryst != nullptr) body = tryst->getTryBlock();
  const auto* cs = llvm::dyn_cast_or_null<clang::CompoundStmt>(body);
  bool ok = cs != nullptr && InsertAt(cs->getLBracLoc().getLocWithOffset(1),
                                      " ::mmsb::rt::TransactionScope _mmsb_tx;", kSiteTransaction);
  // A function-try-block: the scope above ends when an exception leaves the try block, and
  // each handler commits its own stores at its exit.
  for (unsigned i = 0; ok && tryst != nullptr && i < tryst->getNumHandlers(); ++i) {
    const auto* hb =
        llvm::dyn_cast_or_null<clang::CompoundStmt>(tryst->getHandler(i)->getHandlerBlock());
    ok = hb != nullptr && InsertAt(hb->getLBracLoc().getLocWithOffset(1),
                                   " ::mmsb::rt::TransactionScope _mmsb_tx;", kSiteHandler);
  }
  if (!ok) {
    AddFinding(
        DiagKind::kUnrewritableDecl, fd->getLocation(),
        {"transaction " + Quote(fd->getNameAsString()), "its body is inside a macro expansion"});
  }
  return true;
}

bool PageVisitor::InConstexprFunction() const {
  return !functions_.empty() && functions_.back()->isConstexpr();
}

bool PageVisitor::InInstantiation() const {
  for (const clang::FunctionDecl* fd : functions_) {
    if (fd->isTemplateInstantiation()) return true;
  }
  return false;
}

bool PageVisitor::ParentIsInstantiation(const clang::Decl* d) {
  const auto* rd = llvm::dyn_cast<clang::CXXRecordDecl>(d->getDeclContext());
  return rd != nullptr && rd->getTemplateSpecializationKind() == clang::TSK_ImplicitInstantiation;
}

bool PageVisitor::InSystemHeader(const clang::Decl* d) const {
  return sm_.isInSystemHeader(sm_.getExpansionLoc(d->getLocation()));
}

std::string PageVisitor::SourceText(const clang::Expr* e) const {
  clang::CharSourceRange cr = clang::Lexer::makeFileCharRange(
      clang::CharSourceRange::getTokenRange(e->getSourceRange()), sm_, lo_);
  return clang::Lexer::getSourceText(cr, sm_, lo_).str();
}

bool PageVisitor::AddFinding(DiagKind kind, clang::SourceLocation loc,
                             std::vector<std::string> args) {
  if (loc.isValid() && sm_.isInSystemHeader(sm_.getExpansionLoc(loc))) return false;
  if (!a_.reported_.insert({loc, static_cast<int>(kind)}).second) return false;
  a_.findings_.push_back({kind, loc, std::move(args)});
  return true;
}

void PageVisitor::Remark(DiagKind kind, clang::SourceLocation loc, std::vector<std::string> args) {
  AddFinding(kind, loc, std::move(args));
}

void PageVisitor::NoteWrite(const std::string& type) {
  if (type.empty() || functions_.empty()) return;
  const clang::FunctionDecl* fd = functions_.back();
  if (fd == nullptr || fd->isDependentContext() || fd->isInvalidDecl()) return;
  auto [it, inserted] = function_names_.try_emplace(fd);
  if (inserted) {
    if (!names_) names_ = std::make_unique<clang::ASTNameGenerator>(ctx_);
    it->second = names_->getAllManglings(fd);  // every constructor/destructor variant
    if (it->second.empty()) it->second.push_back(names_->getName(fd));
  }
  for (const std::string& name : it->second) {
    if (!name.empty()) a_.page_writes_[name].insert(type);
  }
}
}  // namespace mmsb::rewriter
