#include "mmsb/rewriter/analyzer.h"

#include <algorithm>
#include <string>

#include "clang/AST/Attr.h"
#include "clang/AST/DeclTemplate.h"
#include "clang/AST/ExprCXX.h"
#include "clang/AST/Mangle.h"
#include "clang/AST/RecordLayout.h"
#include "clang/AST/RecursiveASTVisitor.h"
#include "clang/AST/StmtCXX.h"
#include "clang/Lex/Lexer.h"
#include "clang/Rewrite/Core/Rewriter.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/raw_ostream.h"
#include "mmsb/rewriter/attributes.h"

namespace mmsb::rewriter {

namespace {

constexpr char kBarrierOpen[] = "(*::mmsb::rt::w(&(";
constexpr char kBarrierClose[] = ")))";
constexpr char kEscapeFn[] =
    "[](auto* _mmsb_p) noexcept { ::mmsb::rt::MarkEscapedAt(_mmsb_p); return _mmsb_p; }(";

std::string Quote(llvm::StringRef s) { return "'" + s.str() + "'"; }

// A C++ string literal body for `s`.
std::string CString(llvm::StringRef s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\%03o", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return "\"" + out + "\"";
}

bool IsInMmsbNamespace(const clang::Decl* d) {
  for (const clang::DeclContext* dc = d->getDeclContext(); dc != nullptr; dc = dc->getParent()) {
    if (const auto* ns = llvm::dyn_cast<clang::NamespaceDecl>(dc)) {
      if (ns->getName() == "mmsb" && ns->getParent()->getRedeclContext()->isTranslationUnit())
        return true;
    }
  }
  return false;
}

const clang::Expr* StripFull(const clang::Expr* e) {
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

}  // namespace

// The traversal. Visits template instantiations so that a store in a template is rewritten when
// any instantiation writes page storage; the edit goes to the (shared) pattern text once.
class PageVisitor : public clang::RecursiveASTVisitor<PageVisitor> {
  using Base = clang::RecursiveASTVisitor<PageVisitor>;

 public:
  explicit PageVisitor(PageAnalyzer& a)
      : a_(a), ctx_(a.ctx_), sm_(ctx_.getSourceManager()), lo_(ctx_.getLangOpts()),
        mangle_(ctx_.createMangleContext()) {}

  bool shouldVisitTemplateInstantiations() const { return true; }
  bool shouldVisitImplicitCode() const { return false; }

  bool TraverseDecl(clang::Decl* d) {
    if (d == nullptr) return true;
    if (!llvm::isa<clang::TranslationUnitDecl>(d)) {
      clang::SourceLocation loc = d->getLocation();
      if (loc.isValid() && sm_.isInSystemHeader(sm_.getExpansionLoc(loc))) return true;
      if (d->isImplicit() && !llvm::isa<clang::CXXRecordDecl>(d)) return true;
    }
    const auto* fd = llvm::dyn_cast<clang::FunctionDecl>(d);
    if (fd != nullptr) functions_.push_back(fd);
    bool ok = Base::TraverseDecl(d);
    if (fd != nullptr) functions_.pop_back();
    return ok;
  }

  bool TraverseLambdaExpr(clang::LambdaExpr* le) {
    functions_.push_back(le->getCallOperator());
    bool ok = Base::TraverseLambdaExpr(le);
    functions_.pop_back();
    // A generic lambda's body is dependent; its instantiations carry the page types.
    if (const clang::FunctionTemplateDecl* ftd = le->getDependentCallOperator()) {
      for (clang::FunctionDecl* spec : ftd->specializations()) {
        if (spec->getTemplateSpecializationKind() == clang::TSK_ImplicitInstantiation &&
            spec->hasBody()) {
          functions_.push_back(spec);
          ok = ok && TraverseStmt(spec->getBody());
          functions_.pop_back();
        }
      }
    }
    return ok;
  }

  bool TraverseStmt(clang::Stmt* s, DataRecursionQueue* = nullptr) {
    if (s == nullptr) return true;
    parents_.push_back(s);
    bool ok = Base::TraverseStmt(s, nullptr);
    parents_.pop_back();
    return ok;
  }

  // ---- stores ---------------------------------------------------------------------------

  bool VisitBinaryOperator(clang::BinaryOperator* bo) {
    if (bo->isAssignmentOp()) {
      if (IsPageStorage(bo->getLHS())) {
        Barrier(bo->getLHS(), bo->getOperatorLoc());
      } else if (bo->getOpcode() == clang::BO_Assign) {
        CheckEscape(bo->getRHS(), bo->getLHS()->getType());
      }
    }
    return true;
  }

  bool VisitUnaryOperator(clang::UnaryOperator* uo) {
    if (uo->isIncrementDecrementOp() && IsPageStorage(uo->getSubExpr()))
      Barrier(uo->getSubExpr(), uo->getOperatorLoc());
    return true;
  }

  bool VisitCXXOperatorCallExpr(clang::CXXOperatorCallExpr* oc) {
    if (oc->getNumArgs() == 0) return true;
    const clang::OverloadedOperatorKind op = oc->getOperator();
    const bool store_like = oc->isAssignmentOp() || op == clang::OO_PlusPlus ||
                            op == clang::OO_MinusMinus;
    const auto* md = llvm::dyn_cast_or_null<clang::CXXMethodDecl>(oc->getDirectCallee());
    if (md != nullptr && IsInMmsbNamespace(md)) return true;
    const bool mutating_member = md != nullptr && !md->isConst() && !md->isStatic();
    if ((store_like || mutating_member) && IsPageStorage(oc->getArg(0))) {
      Barrier(oc->getArg(0), oc->getOperatorLoc());
    }
    // Remaining arguments bind to parameters like any call.
    if (const clang::FunctionDecl* fd = oc->getDirectCallee()) {
      const unsigned first = md != nullptr ? 1 : 0;
      for (unsigned i = first; i < oc->getNumArgs(); ++i) {
        const unsigned p = i - first;
        if (p < fd->getNumParams()) CheckEscape(oc->getArg(i), fd->getParamDecl(p)->getType());
      }
    }
    return true;
  }

  // Non-const member calls on page storage mark the object's whole range.
  bool VisitCXXMemberCallExpr(clang::CXXMemberCallExpr* mc) {
    const clang::CXXMethodDecl* md = mc->getMethodDecl();
    if (md == nullptr || md->isConst() || md->isStatic() || IsInMmsbNamespace(md)) return true;
    if (llvm::isa<clang::CXXDestructorDecl>(md)) return true;
    const auto* me = llvm::dyn_cast<clang::MemberExpr>(mc->getCallee()->IgnoreParens());
    if (me == nullptr) return true;
    const clang::Expr* base = me->getBase();
    if (me->isArrow()) {
      if (!IsPagePointer(base)) return true;
      NoteWrite(PageTypeOfPointer(base));
      if (const auto* th = llvm::dyn_cast<clang::CXXThisExpr>(base->IgnoreParenImpCasts());
          th != nullptr && th->isImplicit()) {
        // The callee's own stores are instrumented when it is defined in this TU.
        if (md->isDefined()) return true;
        InsertAt(me->getMemberLoc(), "::mmsb::rt::w(this)->", /*kind=*/10);
        return true;
      }
      Wrap(base, "::mmsb::rt::w(", ")", /*kind=*/11, me->getMemberLoc());
    } else if (IsPageStorage(base)) {
      NoteWrite(PageTypeOfStorage(base));
      Wrap(base, kBarrierOpen, kBarrierClose, /*kind=*/1, me->getMemberLoc());
    }
    return true;
  }

  // ---- escapes --------------------------------------------------------------------------

  bool VisitCallExpr(clang::CallExpr* ce) {
    if (llvm::isa<clang::CXXOperatorCallExpr>(ce)) return true;  // handled above
    const clang::FunctionDecl* fd = ce->getDirectCallee();
    if (fd != nullptr && IsInMmsbNamespace(fd)) return true;
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
      CheckEscape(ce->getArg(i), param);
    }
    return true;
  }

  bool VisitCXXConstructExpr(clang::CXXConstructExpr* cc) {
    const clang::CXXConstructorDecl* ctor = cc->getConstructor();
    if (ctor == nullptr || IsInMmsbNamespace(ctor)) return true;
    if (ctor->isCopyOrMoveConstructor() && ctor->isTrivial()) return true;
    for (unsigned i = 0; i < cc->getNumArgs() && i < ctor->getNumParams(); ++i)
      CheckEscape(cc->getArg(i), ctor->getParamDecl(i)->getType());
    return true;
  }

  bool VisitReturnStmt(clang::ReturnStmt* rs) {
    if (rs->getRetValue() == nullptr || functions_.empty()) return true;
    CheckEscape(rs->getRetValue(), functions_.back()->getReturnType());
    return true;
  }

  bool VisitInitListExpr(clang::InitListExpr* il) {
    if (il->isSemanticForm() && !il->isTransparent()) {
      for (const clang::Expr* init : il->inits()) {
        if (init != nullptr) CheckEscape(init, init->getType());
      }
    }
    return true;
  }

  bool VisitCXXForRangeStmt(clang::CXXForRangeStmt* fr) {
    const clang::VarDecl* var = fr->getLoopVariable();
    const clang::Expr* range = fr->getRangeInit();
    if (var == nullptr || range == nullptr) return true;
    clang::QualType vt = var->getType();
    if (!vt->isReferenceType() || vt.getNonReferenceType().isConstQualified()) return true;
    if (IsPageStorage(range)) EscapeRef(range);
    return true;
  }

  // ---- declarations ---------------------------------------------------------------------

  bool VisitCXXRecordDecl(clang::CXXRecordDecl* rd) {
    if (!rd->isThisDeclarationADefinition() || !IsPageRecord(rd) || rd->isLambda()) return true;
    const bool instantiation = llvm::isa<clang::ClassTemplateSpecializationDecl>(rd) &&
                               rd->getTemplateSpecializationKind() ==
                                   clang::TSK_ImplicitInstantiation;
    if (!rd->isDependentType()) CheckPageRecord(rd);
    if (!instantiation) InstrumentPageRecord(rd);
    return true;
  }

  bool VisitVarDecl(clang::VarDecl* vd) {
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
    if (IsPageVariable(vd)) InstrumentStaticPage(vd);
    if (const clang::Expr* init = vd->getInit(); init != nullptr && !IsPageVariable(vd)) {
      if (!vd->isConstexpr()) CheckEscape(init, vd->getType());
    }
    return true;
  }

  bool VisitFieldDecl(clang::FieldDecl* fd) {
    const clang::RecordDecl* parent = fd->getParent();
    if (parent->isLambda() || ParentIsInstantiation(fd)) return true;
    if (IsPageTypeOrArrayOf(ctx_, fd->getType()) && !IsPageRecord(parent)) {
      AddFinding(DiagKind::kUntrackedMember, fd->getLocation(),
                 {Quote(fd->getName()), Quote(TypeName(fd->getType())),
                  Quote(RecordName(parent))});
    }
    CheckContainer(fd->getType(), fd->getLocation());
    return true;
  }

  bool VisitCXXNewExpr(clang::CXXNewExpr* ne) {
    if (ne->isArray() && IsPageTypeOrArrayOf(ctx_, ne->getAllocatedType())) {
      AddFinding(DiagKind::kUntrackedArrayNew, ne->getBeginLoc(),
                 {Quote(TypeName(ne->getAllocatedType()))});
    }
    return true;
  }

  bool VisitFunctionDecl(clang::FunctionDecl* fd) {
    if (!IsTransactionFunction(fd) || !fd->doesThisDeclarationHaveABody()) return true;
    if (fd->isTemplateInstantiation()) return true;
    if (fd->isConstexpr()) {
      AddFinding(DiagKind::kUnrewritableDecl, fd->getLocation(),
                 {"transaction " + Quote(fd->getNameAsString()), "a constexpr function"});
      return true;
    }
    const clang::Stmt* body = fd->getBody();
    if (const auto* tryst = llvm::dyn_cast<clang::CXXTryStmt>(body)) body = tryst->getTryBlock();
    const auto* cs = llvm::dyn_cast_or_null<clang::CompoundStmt>(body);
    if (cs == nullptr ||
        !InsertAt(cs->getLBracLoc().getLocWithOffset(1),
                  " ::mmsb::rt::TransactionScope _mmsb_tx;", /*kind=*/20)) {
      AddFinding(DiagKind::kUnrewritableDecl, fd->getLocation(),
                 {"transaction " + Quote(fd->getNameAsString()),
                  "its body is inside a macro expansion"});
    }
    return true;
  }

 private:
  // ---- classification ---------------------------------------------------------------------

  // `e` designates page storage (or part of it).
  bool IsPageStorage(const clang::Expr* e) const {
    if (e == nullptr) return false;
    e = e->IgnoreParens();
    if (!e->isGLValue()) return false;
    if (IsPageType(e->getType())) return true;
    if (const auto* dre = llvm::dyn_cast<clang::DeclRefExpr>(e)) {
      return IsPageVariable(llvm::dyn_cast<clang::VarDecl>(dre->getDecl()));
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
      return false;
    }
    if (const auto* ce = llvm::dyn_cast<clang::CastExpr>(e)) {
      switch (ce->getCastKind()) {
        case clang::CK_NoOp:
        case clang::CK_DerivedToBase:
        case clang::CK_UncheckedDerivedToBase:
        case clang::CK_LValueBitCast:
          return IsPageStorage(ce->getSubExpr());
        default:
          return false;
      }
    }
    if (const auto* co = llvm::dyn_cast<clang::AbstractConditionalOperator>(e))
      return IsPageStorage(co->getTrueExpr()) || IsPageStorage(co->getFalseExpr());
    return false;
  }

  // `e` is a pointer into page storage.
  bool IsPagePointer(const clang::Expr* e) const {
    if (e == nullptr) return false;
    e = e->IgnoreParens();
    const clang::QualType t = e->getType();
    if (!t->isPointerType()) return false;
    if (IsPageType(t->getPointeeType())) return true;
    if (const auto* ce = llvm::dyn_cast<clang::CastExpr>(e)) {
      switch (ce->getCastKind()) {
        case clang::CK_ArrayToPointerDecay:
          return IsPageStorage(ce->getSubExpr());
        case clang::CK_NoOp:
        case clang::CK_BitCast:
        case clang::CK_DerivedToBase:
        case clang::CK_UncheckedDerivedToBase:
          return IsPagePointer(ce->getSubExpr());
        default:
          return false;
      }
    }
    if (const auto* uo = llvm::dyn_cast<clang::UnaryOperator>(e))
      return uo->getOpcode() == clang::UO_AddrOf && IsPageStorage(uo->getSubExpr());
    if (const auto* bo = llvm::dyn_cast<clang::BinaryOperator>(e)) {
      if (bo->getOpcode() != clang::BO_Add && bo->getOpcode() != clang::BO_Sub) return false;
      return bo->getLHS()->getType()->isPointerType() ? IsPagePointer(bo->getLHS())
                                                       : IsPagePointer(bo->getRHS());
    }
    return false;
  }

  bool InConstexprFunction() const {
    return !functions_.empty() && functions_.back()->isConstexpr();
  }

  static bool ParentIsInstantiation(const clang::Decl* d) {
    const auto* rd = llvm::dyn_cast<clang::CXXRecordDecl>(d->getDeclContext());
    return rd != nullptr && rd->getTemplateSpecializationKind() == clang::TSK_ImplicitInstantiation;
  }

  // ---- edits ------------------------------------------------------------------------------

  // Maps a token range to a file range; false inside macros, system headers or non-files.
  bool FileRange(clang::SourceRange r, clang::FileID* fid, unsigned* begin, unsigned* end) const {
    clang::CharSourceRange cr =
        clang::Lexer::makeFileCharRange(clang::CharSourceRange::getTokenRange(r), sm_, lo_);
    if (cr.isInvalid()) return false;
    return FileOffsets(cr.getBegin(), fid, begin) &&
           FileOffsets(cr.getEnd(), nullptr, end, *fid);
  }

  bool FileOffsets(clang::SourceLocation loc, clang::FileID* fid, unsigned* offset,
                   clang::FileID must_match = clang::FileID()) const {
    if (loc.isInvalid() || loc.isMacroID()) return false;
    auto [id, off] = sm_.getDecomposedLoc(loc);
    if (must_match.isValid() && id != must_match) return false;
    if (sm_.isInSystemHeader(loc)) return false;
    clang::OptionalFileEntryRef fe = sm_.getFileEntryRefForID(id);
    if (!fe) return false;
    if (fid != nullptr) *fid = Canonical(id, *fe);
    *offset = off;
    return true;
  }

  // One FileID per file: a header included twice gets its edits once.
  clang::FileID Canonical(clang::FileID id, clang::FileEntryRef fe) const {
    auto [it, inserted] = canonical_.try_emplace(&fe.getFileEntry(), id);
    return it->second;
  }

  bool NewSite(clang::FileID fid, unsigned b, unsigned e, int kind) {
    return a_.sites_.insert({fid, b, e, kind}).second;
  }

  // Wraps the text of `e` in open/close. Reports an unrewritable store at `report_loc` when the
  // text is not in a file.
  bool Wrap(const clang::Expr* e, const std::string& open, const std::string& close, int kind,
            clang::SourceLocation report_loc) {
    clang::FileID fid;
    unsigned b = 0, end = 0;
    if (!FileRange(e->getSourceRange(), &fid, &b, &end)) {
      Unrewritable(e, report_loc);
      return false;
    }
    if (a_.options_.report_only) return true;
    if (!NewSite(fid, b, end, kind)) return true;
    a_.edits_.push_back({fid, b, open, true});
    a_.edits_.push_back({fid, end, close, false});
    return true;
  }

  bool InsertAt(clang::SourceLocation loc, const std::string& text, int kind) {
    clang::FileID fid;
    unsigned off = 0;
    if (!FileOffsets(loc, &fid, &off)) return false;
    if (a_.options_.report_only) return true;
    if (!NewSite(fid, off, off, kind)) return true;
    a_.edits_.push_back({fid, off, text, true});
    return true;
  }

  std::string SourceText(const clang::Expr* e) const {
    clang::CharSourceRange cr = clang::Lexer::makeFileCharRange(
        clang::CharSourceRange::getTokenRange(e->getSourceRange()), sm_, lo_);
    return clang::Lexer::getSourceText(cr, sm_, lo_).str();
  }

  // The write barrier for a store whose destination is `lhs`.
  void Barrier(const clang::Expr* lhs, clang::SourceLocation op_loc) {
    NoteWrite(PageTypeOfStorage(lhs));
    if (lhs->refersToBitField()) {
      const auto* me = llvm::dyn_cast<clang::MemberExpr>(lhs->IgnoreParenImpCasts());
      if (me == nullptr) {
        Unrewritable(lhs, op_loc);
        return;
      }
      const clang::Expr* base = me->getBase();
      if (me->isArrow()) {
        if (const auto* th = llvm::dyn_cast<clang::CXXThisExpr>(base->IgnoreParenImpCasts());
            th != nullptr && th->isImplicit()) {
          if (!InsertAt(me->getMemberLoc(), "::mmsb::rt::w(this)->", /*kind=*/10))
            Unrewritable(lhs, op_loc);
          return;
        }
        Wrap(base, "::mmsb::rt::w(", ")", /*kind=*/11, op_loc);
      } else {
        Wrap(base, kBarrierOpen, kBarrierClose, /*kind=*/1, op_loc);
      }
      return;
    }
    if (InConstexprFunction()) {
      // w() is not constexpr: constant evaluation takes the plain address.
      std::string text = SourceText(lhs);
      Wrap(lhs, "(*(__builtin_is_constant_evaluated() ? &(" + text + ") : ::mmsb::rt::w(&(",
           "))))", /*kind=*/1, op_loc);
      return;
    }
    Wrap(lhs, kBarrierOpen, kBarrierClose, /*kind=*/1, op_loc);
  }

  void CheckEscape(const clang::Expr* arg, clang::QualType target) {
    if (arg == nullptr || target.isNull() || target->isDependentType()) return;
    const clang::Expr* e = StripFull(arg);
    if (target->isPointerType()) {
      const clang::QualType pointee = target->getPointeeType();
      if (pointee.isConstQualified() || IsPageType(pointee)) return;
      if (IsPagePointer(e)) EscapePointer(e);
      return;
    }
    if (target->isReferenceType()) {
      const clang::QualType pointee = target.getNonReferenceType();
      if (pointee.isConstQualified() || IsPageType(pointee)) return;
      if (pointee->isPointerType()) return;  // a reference to a pointer variable, not into a page
      if (IsPageStorage(e)) EscapeRef(e);
    }
  }

  void EscapePointer(const clang::Expr* e) {
    if (InConstexprFunction()) return;
    Wrap(e, kEscapeFn, ")", /*kind=*/30, e->getExprLoc());
  }

  void EscapeRef(const clang::Expr* e) {
    if (InConstexprFunction()) return;
    Wrap(e, std::string("(*") + kEscapeFn + "&(", ")))", /*kind=*/31, e->getExprLoc());
  }

  // A store (or escape) that cannot be rewritten: warn, and mark its page escaped before the
  // enclosing statement when the page's root object can be named there.
  void Unrewritable(const clang::Expr* e, clang::SourceLocation loc) {
    clang::SourceLocation where = loc.isValid() ? loc : e->getExprLoc();
    if (sm_.isInSystemHeader(sm_.getExpansionLoc(where))) return;
    const bool in_macro = where.isMacroID() || e->getBeginLoc().isMacroID();
    AddFinding(DiagKind::kUnrewritableStore, where,
               {in_macro ? "inside a macro expansion" : "not in a source file"});
    std::string root = RootAddress(e);
    if (root.empty() || a_.options_.report_only) return;
    // Find the statement directly inside a compound statement.
    for (size_t i = parents_.size(); i-- > 1;) {
      if (!llvm::isa<clang::CompoundStmt>(parents_[i - 1])) continue;
      clang::SourceLocation begin = sm_.getExpansionLoc(parents_[i]->getBeginLoc());
      InsertAt(begin, "::mmsb::rt::MarkEscapedAt(" + root + "); ", /*kind=*/40);
      return;
    }
  }

  // An expression naming an address inside the page that `e` writes, usable before the
  // statement: a page variable, a pointer variable, or `this`. Empty when there is none.
  std::string RootAddress(const clang::Expr* e) const {
    while (e != nullptr) {
      e = e->IgnoreParenImpCasts();
      if (const auto* me = llvm::dyn_cast<clang::MemberExpr>(e)) {
        e = me->getBase();
      } else if (const auto* ase = llvm::dyn_cast<clang::ArraySubscriptExpr>(e)) {
        e = ase->getBase();
      } else if (const auto* uo = llvm::dyn_cast<clang::UnaryOperator>(e)) {
        e = uo->getSubExpr();
      } else if (llvm::isa<clang::CXXThisExpr>(e)) {
        return "this";
      } else if (const auto* dre = llvm::dyn_cast<clang::DeclRefExpr>(e)) {
        const auto* vd = llvm::dyn_cast<clang::VarDecl>(dre->getDecl());
        if (vd == nullptr) return "";
        std::string name = QualifiedName(vd);
        if (name.empty()) return "";
        if (vd->getType()->isPointerType()) return name;
        return "&(" + name + ")";
      } else {
        return "";
      }
    }
    return "";
  }

  // ---- page records ---------------------------------------------------------------------

  void CheckPageRecord(const clang::CXXRecordDecl* rd) {
    const clang::QualType t = ctx_.getRecordType(rd);
    if (!t.isTriviallyCopyableType(ctx_)) {
      if (AddFinding(DiagKind::kNotTriviallyCopyable, rd->getLocation(), {Quote(RecordName(rd))}))
        ExplainNotTriviallyCopyable(rd);
    }
    for (const clang::FieldDecl* f : rd->fields()) {
      clang::QualType ft = f->getType();
      while (const clang::ArrayType* at = ctx_.getAsArrayType(ft)) ft = at->getElementType();
      if (ft->isPointerType() || ft->isMemberPointerType()) {
        AddFinding(DiagKind::kPointerMember, f->getLocation(),
                   {Quote(f->getName()), Quote(RecordName(rd))});
      }
    }
  }

  void ExplainNotTriviallyCopyable(const clang::CXXRecordDecl* rd) {
    auto note = [&](clang::SourceLocation loc, std::string text) {
      a_.findings_.push_back({DiagKind::kNotTriviallyCopyableWhy, loc, {std::move(text)}});
    };
    size_t before = a_.findings_.size();
    for (const clang::CXXBaseSpecifier& b : rd->bases()) {
      if (b.isVirtual()) {
        note(b.getBeginLoc(), "virtual base class " + Quote(TypeName(b.getType())));
      } else if (!b.getType().isTriviallyCopyableType(ctx_)) {
        note(b.getBeginLoc(),
             "base class " + Quote(DisplayName(b.getType())) + " is not trivially copyable");
      }
    }
    for (const clang::FieldDecl* f : rd->fields()) {
      if (!f->getType().isTriviallyCopyableType(ctx_)) {
        note(f->getLocation(), "member " + Quote(f->getName()) + " of type " +
                                   Quote(DisplayName(f->getType())) + " is not trivially copyable");
      }
    }
    for (const clang::CXXMethodDecl* m : rd->methods()) {
      if (m->isImplicit()) continue;
      if (m->isVirtual()) {
        note(m->getLocation(), "virtual member function " + Quote(m->getNameAsString()));
        continue;
      }
      if (!m->isUserProvided()) continue;
      if (llvm::isa<clang::CXXDestructorDecl>(m)) {
        note(m->getLocation(), "user-provided destructor");
      } else if (const auto* c = llvm::dyn_cast<clang::CXXConstructorDecl>(m);
                 c != nullptr && c->isCopyOrMoveConstructor()) {
        note(m->getLocation(), std::string("user-provided ") +
                                   (c->isCopyConstructor() ? "copy" : "move") + " constructor");
      } else if (m->isCopyAssignmentOperator() || m->isMoveAssignmentOperator()) {
        note(m->getLocation(), std::string("user-provided ") +
                                   (m->isCopyAssignmentOperator() ? "copy" : "move") +
                                   " assignment operator");
      }
    }
    if (a_.findings_.size() == before)
      note(rd->getLocation(), "a special member function is deleted or not trivial");
  }

  void InstrumentPageRecord(const clang::CXXRecordDecl* rd) {
    if (a_.options_.report_only) return;
    for (const clang::Decl* d : rd->decls()) {
      const auto* nd = llvm::dyn_cast<clang::NamedDecl>(d);
      if (nd == nullptr) continue;
      if (nd->getDeclName().isIdentifier() && nd->getName() == "_mmsb_type") return;  // done
      if (nd->getDeclName().getCXXOverloadedOperator() == clang::OO_New) {
        AddFinding(DiagKind::kUnrewritableDecl, nd->getLocation(),
                   {"'new' of page type " + Quote(RecordName(rd)),
                    "the class declares its own operator new"});
        return;
      }
    }
    if (rd->getName().empty()) {
      AddFinding(DiagKind::kUnrewritableDecl, rd->getLocation(),
                 {"heap allocation of an unnamed page type", "it has no name to refer to"});
      return;
    }
    const std::string name = rd->getName().str();
    std::string desc = "nullptr";
    if (!rd->isDependentType()) {
      desc = "(" + InternNested(rd) + "::mmsb::rt::InternType(" + Descriptor(rd) + "))";
    }
    const std::string fail =
        lo_.CXXExceptions ? "throw ::std::bad_alloc();" : "__builtin_trap();";
    std::string text =
        " public: static void* operator new(::std::size_t _mmsb_n) { void* _mmsb_p = "
        "::mmsb::rt::AllocPageStorage(_mmsb_n, alignof(" + name + "), _mmsb_n == sizeof(" + name +
        ") ? " + name + "::_mmsb_type() : nullptr); if (!_mmsb_p) " + fail +
        " return _mmsb_p; }"
        " static void* operator new(::std::size_t, void* _mmsb_p) noexcept { return _mmsb_p; }"
        " static void operator delete(void* _mmsb_p) noexcept { "
        "::mmsb::rt::FreePageStorage(_mmsb_p); }"
        " static void operator delete(void*, void*) noexcept {}"
        " static const ::mmsb::TypeDescriptor* _mmsb_type() noexcept { static const "
        "::mmsb::TypeDescriptor* const _mmsb_d = " + desc + "; return _mmsb_d; } ";
    if (!InsertAt(rd->getBraceRange().getEnd(), text, /*kind=*/50)) {
      AddFinding(DiagKind::kUnrewritableDecl, rd->getLocation(),
                 {"page type " + Quote(RecordName(rd)),
                  "its definition is inside a macro expansion or a system header"});
    }
  }

  // ---- layout descriptors -----------------------------------------------------------------

  std::string RecordName(const clang::RecordDecl* rd) const {
    return TypeName(ctx_.getRecordType(rd));
  }

  // A type as the user wrote it, for diagnostics.
  std::string DisplayName(clang::QualType t) const {
    clang::PrintingPolicy pp(lo_);
    pp.SuppressTagKeyword = true;
    return t.getUnqualifiedType().getAsString(pp);
  }

  std::string TypeName(clang::QualType t) const {
    clang::PrintingPolicy pp(lo_);
    pp.SuppressTagKeyword = true;
    pp.FullyQualifiedName = true;
    pp.SuppressUnwrittenScope = true;
    pp.AnonymousTagLocations = false;
    return t.getUnqualifiedType().getCanonicalType().getAsString(pp);
  }

  std::string ScalarKind(clang::QualType t, std::string* record_type,
                         std::vector<const clang::RecordDecl*>* nested) const {
    t = t.getCanonicalType();
    if (const auto* et = t->getAs<clang::EnumType>()) t = et->getDecl()->getIntegerType();
    if (t.isNull()) return "kBytes";
    if (t->isPointerType() || t->isNullPtrType() || t->isBlockPointerType()) return "kPointer";
    if (const auto* rt = t->getAs<clang::RecordType>()) {
      if (rt->getDecl()->isUnion() || rt->getDecl()->getName().empty()) return "kBytes";
      *record_type = RecordName(rt->getDecl());
      nested->push_back(rt->getDecl());
      return "kRecord";
    }
    if (t->isBooleanType()) return "kBool";
    if (t->isSpecificBuiltinType(clang::BuiltinType::Char_S) ||
        t->isSpecificBuiltinType(clang::BuiltinType::Char_U) || t->isChar8Type())
      return "kChar";
    if (t->isIntegralOrEnumerationType()) {
      const uint64_t bits = ctx_.getTypeSize(t);
      const bool is_signed = t->isSignedIntegerType();
      switch (bits) {
        case 8: return is_signed ? "kI8" : "kU8";
        case 16: return is_signed ? "kI16" : "kU16";
        case 32: return is_signed ? "kI32" : "kU32";
        case 64: return is_signed ? "kI64" : "kU64";
        default: return "kBytes";
      }
    }
    if (const auto* bt = t->getAs<clang::BuiltinType>()) {
      if (bt->getKind() == clang::BuiltinType::Float) return "kF32";
      if (bt->getKind() == clang::BuiltinType::Double) return "kF64";
    }
    return "kBytes";
  }

  std::string Field(const std::string& name, uint64_t offset, clang::QualType t,
                    std::vector<const clang::RecordDecl*>* nested) const {
    std::vector<uint64_t> extents;
    clang::QualType elem = t;
    while (const clang::ConstantArrayType* at = ctx_.getAsConstantArrayType(elem)) {
      extents.push_back(at->getZExtSize());
      elem = at->getElementType();
    }
    const uint64_t size = ctx_.getTypeSizeInChars(t).getQuantity();
    const uint64_t elem_size = ctx_.getTypeSizeInChars(elem).getQuantity();
    std::string record_type;
    std::string kind = ScalarKind(elem, &record_type, nested);
    std::string out = "::mmsb::FieldDescriptor{" + CString(name) + ", " + std::to_string(offset) +
                      "u, " + std::to_string(size) + "u, ::mmsb::ScalarKind::" + kind + ", " +
                      std::to_string(elem_size) + "u, {";
    for (size_t i = 0; i < extents.size(); ++i)
      out += (i ? ", " : "") + std::to_string(extents[i]) + "u";
    out += "}, " + CString(record_type) + "}";
    return out;
  }

  // `::mmsb::TypeDescriptor{...}` for a complete, non-dependent record.
  std::string Descriptor(const clang::RecordDecl* rd,
                         std::vector<const clang::RecordDecl*>* nested_out = nullptr) const {
    std::vector<const clang::RecordDecl*> nested;
    const clang::ASTRecordLayout& layout = ctx_.getASTRecordLayout(rd);
    std::string fields;
    auto add = [&](const std::string& f) { fields += (fields.empty() ? "" : ", ") + f; };
    if (!rd->isUnion()) {
      std::vector<std::pair<uint64_t, std::string>> items;
      if (const auto* cxx = llvm::dyn_cast<clang::CXXRecordDecl>(rd)) {
        for (const clang::CXXBaseSpecifier& b : cxx->bases()) {
          const clang::CXXRecordDecl* base = b.getType()->getAsCXXRecordDecl();
          if (base == nullptr || b.isVirtual() || base->isEmpty()) continue;
          const uint64_t off = layout.getBaseClassOffset(base).getQuantity();
          items.emplace_back(off, Field(RecordName(base), off, b.getType(), &nested));
        }
      }
      // Bitfields sharing bytes become one opaque field so that fields never overlap.
      uint64_t bf_begin = 0, bf_end = 0;
      std::string bf_name;
      auto flush_bitfields = [&] {
        if (bf_name.empty()) return;
        items.emplace_back(bf_begin,
                           "::mmsb::FieldDescriptor{" + CString(bf_name) + ", " +
                               std::to_string(bf_begin) + "u, " +
                               std::to_string(bf_end - bf_begin) +
                               "u, ::mmsb::ScalarKind::kBytes, " +
                               std::to_string(bf_end - bf_begin) + "u, {}, \"\"}");
        bf_name.clear();
      };
      for (const clang::FieldDecl* f : rd->fields()) {
        const uint64_t bit = layout.getFieldOffset(f->getFieldIndex());
        if (f->isBitField()) {
          const uint64_t width = f->getBitWidthValue(ctx_);
          if (width == 0) continue;
          const uint64_t b = bit / 8, e = (bit + width + 7) / 8;
          if (!bf_name.empty() && b < bf_end) {
            bf_name += "," + f->getName().str();
            bf_end = std::max(bf_end, e);
          } else {
            flush_bitfields();
            bf_begin = b;
            bf_end = e;
            bf_name = f->getName().str();
          }
          continue;
        }
        flush_bitfields();
        if (f->getType()->isIncompleteArrayType()) continue;
        if (ctx_.getTypeSizeInChars(f->getType()).isZero()) continue;
        std::string fname = f->getName().str();
        if (fname.empty()) fname = "<anonymous>";
        items.emplace_back(bit / 8, Field(fname, bit / 8, f->getType(), &nested));
      }
      flush_bitfields();
      std::vector<size_t> order(items.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::sort(order.begin(), order.end(), [&](size_t x, size_t y) {
        return items[x].first != items[y].first ? items[x].first < items[y].first : x < y;
      });
      for (size_t i : order) add(items[i].second);
    }
    if (nested_out != nullptr) nested_out->insert(nested_out->end(), nested.begin(), nested.end());
    return "::mmsb::TypeDescriptor{" + CString(RecordName(rd)) + ", " +
           std::to_string(layout.getSize().getQuantity()) + "u, " +
           std::to_string(layout.getAlignment().getQuantity()) + "u, {" + fields + "}}";
  }

  // Comma-terminated InternType calls for every record nested in `rd`, innermost first.
  std::string InternNested(const clang::RecordDecl* rd) const {
    std::vector<const clang::RecordDecl*> order;
    std::set<const clang::RecordDecl*> seen{rd};
    std::vector<const clang::RecordDecl*> work;
    Descriptor(rd, &work);
    while (!work.empty()) {
      const clang::RecordDecl* n = work.back();
      work.pop_back();
      if (!seen.insert(n).second) continue;
      order.push_back(n);
      Descriptor(n, &work);
    }
    std::string out;
    for (auto it = order.rbegin(); it != order.rend(); ++it)
      out += "::mmsb::rt::InternType(" + Descriptor(*it) + "), ";
    return out;
  }

  // A descriptor expression for the object of a static page variable.
  std::string VarDescriptor(const clang::VarDecl* vd) const {
    clang::QualType t = vd->getType().getUnqualifiedType();
    if (const auto* rt = t->getAs<clang::RecordType>()) {
      return "(" + InternNested(rt->getDecl()) + "::mmsb::rt::InternType(" +
             Descriptor(rt->getDecl()) + "))";
    }
    std::vector<const clang::RecordDecl*> nested;
    std::string field = Field(vd->getName().str(), 0, t, &nested);
    std::string pre;
    for (const clang::RecordDecl* n : nested)
      pre += InternNested(n) + "::mmsb::rt::InternType(" + Descriptor(n) + "), ";
    return "(" + pre + "::mmsb::rt::InternType(::mmsb::TypeDescriptor{" + CString(TypeName(t)) +
           ", " + std::to_string(ctx_.getTypeSizeInChars(t).getQuantity()) + "u, " +
           std::to_string(ctx_.getTypeAlignInChars(t).getQuantity()) + "u, {" + field + "}}))";
  }

  // ---- static pages -----------------------------------------------------------------------

  std::string QualifiedName(const clang::NamedDecl* nd) const {
    std::string out = nd->getNameAsString();
    for (const clang::DeclContext* dc = nd->getDeclContext(); dc != nullptr;
         dc = dc->getParent()) {
      if (dc->isTranslationUnit()) return "::" + out;
      if (const auto* ns = llvm::dyn_cast<clang::NamespaceDecl>(dc)) {
        if (ns->isAnonymousNamespace()) {
          // Unambiguous from the same file; stop qualifying here.
          return out;
        }
        out = ns->getName().str() + "::" + out;
      } else if (const auto* rd = llvm::dyn_cast<clang::CXXRecordDecl>(dc)) {
        if (rd->getName().empty() || rd->getDescribedClassTemplate() != nullptr) return "";
        out = rd->getName().str() + "::" + out;
      } else if (llvm::isa<clang::LinkageSpecDecl>(dc)) {
        continue;
      } else if (llvm::isa<clang::FunctionDecl>(dc) || llvm::isa<clang::BlockDecl>(dc)) {
        return out;  // a local: visible at the point of use
      } else {
        return "";
      }
    }
    return "";
  }

  std::string MangledName(const clang::VarDecl* vd) const {
    std::string out;
    llvm::raw_string_ostream os(out);
    if (mangle_->shouldMangleDeclName(vd)) {
      mangle_->mangleName(clang::GlobalDecl(vd), os);
    } else {
      os << vd->getName();
    }
    return out;
  }

  void InstrumentStaticPage(const clang::VarDecl* vd) {
    if (a_.options_.report_only) return;
    if (vd->isThisDeclarationADefinition() != clang::VarDecl::Definition) return;
    if (vd->isTemplated() || vd->getType().isConstQualified() || vd->isConstexpr()) return;
    if (vd->getType()->isDependentType() || vd->getType()->isIncompleteType()) return;
    if (vd->hasAttr<clang::SectionAttr>()) return;  // already instrumented (or user-placed)
    const std::string mangled = MangledName(vd);
    if (!InsertAt(vd->getTypeSpecStartLoc(),
                  "__attribute__((section(\"mmsb_pages\"), aligned(64))) ", /*kind=*/60)) {
      AddFinding(DiagKind::kUnrewritableDecl, vd->getLocation(),
                 {"static page " + Quote(vd->getName()),
                  "its declaration is inside a macro expansion"});
      return;
    }
    std::string reg_name = "_mmsb_reg_";
    for (char c : mangled) reg_name += (isalnum(static_cast<unsigned char>(c)) ? c : '_');
    const std::string qualified = QualifiedName(vd);
    if (qualified.empty()) {
      AddFinding(DiagKind::kUnrewritableDecl, vd->getLocation(),
                 {"static page " + Quote(vd->getName()), "it cannot be named for registration"});
      return;
    }
    const std::string args = "((void*)&(" + qualified + "), sizeof(" + qualified + "), " +
                             CString(mangled) + ", " + VarDescriptor(vd) + ")";
    const bool inline_var = vd->isInline() || !sm_.isInMainFile(sm_.getExpansionLoc(vd->getLocation()));
    if (vd->isStaticLocal()) {
      // Registered the first time control passes the declaration.
      const clang::Stmt* decl_stmt = nullptr;
      for (size_t i = parents_.size(); i-- > 0;) {
        if (llvm::isa<clang::DeclStmt>(parents_[i])) {
          decl_stmt = parents_[i];
          break;
        }
      }
      if (decl_stmt == nullptr ||
          !InsertAt(decl_stmt->getEndLoc().getLocWithOffset(1),
                    " static ::mmsb::rt::StaticPageRegistrar " + reg_name + args + ";",
                    /*kind=*/61)) {
        AddFinding(DiagKind::kUnrewritableDecl, vd->getLocation(),
                   {"static page " + Quote(vd->getName()),
                    "its declaration is inside a macro expansion"});
      }
      return;
    }
    if (vd->isStaticDataMember()) {
      AddFinding(DiagKind::kUnrewritableDecl, vd->getLocation(),
                 {"static data member page " + Quote(vd->getName()),
                  "static data members are not registered yet; use a namespace-scope variable"});
      return;
    }
    clang::FileID fid;
    unsigned off = 0;
    if (!FileOffsets(sm_.getExpansionLoc(vd->getLocation()), &fid, &off)) return;
    std::string& trailer = a_.trailers_[fid];
    trailer += std::string(inline_var ? "inline" : "static") +
               " ::mmsb::rt::StaticPageRegistrar " + reg_name + args + ";\n";
  }

  void CheckContainer(clang::QualType t, clang::SourceLocation loc) {
    t = t.getNonReferenceType();
    while (const clang::ArrayType* at = ctx_.getAsArrayType(t)) t = at->getElementType();
    const auto* spec =
        llvm::dyn_cast_or_null<clang::ClassTemplateSpecializationDecl>(t->getAsCXXRecordDecl());
    if (spec == nullptr || !spec->isInStdNamespace()) return;
    for (const clang::TemplateArgument& arg : spec->getTemplateArgs().asArray()) {
      if (arg.getKind() != clang::TemplateArgument::Type) continue;
      if (IsPageTypeOrArrayOf(ctx_, arg.getAsType())) {
        AddFinding(DiagKind::kUntrackedContainer, loc,
                   {Quote(TypeName(arg.getAsType())), Quote(spec->getName())});
        return;
      }
      CheckContainer(arg.getAsType(), loc);
    }
  }

  bool AddFinding(DiagKind kind, clang::SourceLocation loc, std::vector<std::string> args) {
    if (loc.isValid() && sm_.isInSystemHeader(sm_.getExpansionLoc(loc))) return false;
    if (!a_.reported_.insert({loc, static_cast<int>(kind)}).second) return false;
    a_.findings_.push_back({kind, loc, std::move(args)});
    return true;
  }

  // ---- page writes per function (PageAnalyzer::page_writes, for the IR capture) ------------

  // The page type (fully qualified, arrays stripped) whose storage `e` designates; "" if none.
  std::string PageTypeOfStorage(const clang::Expr* e) const {
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
    if (const auto* ce = llvm::dyn_cast<clang::CastExpr>(e)) return PageTypeOfStorage(ce->getSubExpr());
    if (const auto* co = llvm::dyn_cast<clang::AbstractConditionalOperator>(e)) {
      std::string t = PageTypeOfStorage(co->getTrueExpr());
      return t.empty() ? PageTypeOfStorage(co->getFalseExpr()) : t;
    }
    return "";
  }

  std::string PageTypeOfPointer(const clang::Expr* e) const {
    if (e == nullptr) return "";
    e = e->IgnoreParens();
    if (!e->getType()->isPointerType()) return "";
    if (IsPageType(e->getType()->getPointeeType())) return PageName(e->getType()->getPointeeType());
    if (const auto* ce = llvm::dyn_cast<clang::CastExpr>(e)) {
      return ce->getCastKind() == clang::CK_ArrayToPointerDecay
                 ? PageTypeOfStorage(ce->getSubExpr())
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

  std::string PageName(clang::QualType t) const {
    t = t.getNonReferenceType();
    while (const clang::ArrayType* at = ctx_.getAsArrayType(t)) t = at->getElementType();
    return TypeName(t);
  }

  // Records that the function being traversed writes page type `type`.
  void NoteWrite(const std::string& type) {
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
};

PageAnalyzer::PageAnalyzer(clang::ASTContext& ctx, AnalyzerOptions options)
    : ctx_(ctx), options_(options) {}

PageAnalyzer::~PageAnalyzer() = default;

void PageAnalyzer::Run() {
  if (!ctx_.getLangOpts().CPlusPlus) return;
  PageVisitor v(*this);
  v.TraverseDecl(ctx_.getTranslationUnitDecl());
}

llvm::Expected<RewriteOutput> PageAnalyzer::Apply() const {
  clang::SourceManager& sm = ctx_.getSourceManager();
  clang::Rewriter rw(sm, ctx_.getLangOpts());
  std::set<clang::FileID> changed;
  for (const Edit& e : edits_) {
    clang::SourceLocation loc = sm.getComposedLoc(e.fid, e.offset);
    if (loc.isInvalid() || rw.InsertText(loc, e.text, /*InsertAfter=*/e.open)) {
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "mmsb: cannot apply an edit at offset %u", e.offset);
    }
    changed.insert(e.fid);
  }
  for (const auto& [fid, code] : trailers_) changed.insert(fid);

  RewriteOutput out;
  for (clang::FileID fid : changed) {
    clang::OptionalFileEntryRef fe = sm.getFileEntryRefForID(fid);
    if (!fe) {
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "mmsb: an edited location is not in a file");
    }
    RewriteOutput::File file;
    file.path = fe->getName().str();
    file.is_main = fid == sm.getMainFileID();
    if (const clang::RewriteBuffer* rb = rw.getRewriteBufferFor(fid)) {
      file.contents.assign(rb->begin(), rb->end());
    } else {
      file.contents = sm.getBufferData(fid).str();
    }
    if (auto it = trailers_.find(fid); it != trailers_.end()) {
      const llvm::StringRef original = sm.getBufferData(fid);
      unsigned last_line = static_cast<unsigned>(std::count(original.begin(), original.end(), '\n'));
      if (!original.ends_with("\n")) ++last_line;
      if (!file.contents.empty() && file.contents.back() != '\n') file.contents += '\n';
      std::string presumed = file.path;
      clang::PresumedLoc ploc = sm.getPresumedLoc(sm.getLocForStartOfFile(fid));
      if (ploc.isValid()) presumed = ploc.getFilename();
      file.contents += "#line " + std::to_string(std::max(1u, last_line)) + " " +
                       CString(presumed) + "\n" + it->second;
    }
    out.files.push_back(std::move(file));
  }
  for (size_t i = 1; i < out.files.size(); ++i) {
    if (out.files[i].is_main) std::swap(out.files[0], out.files[i]);
  }
  return out;
}

std::string StandalonePrologue(llvm::StringRef main_path) {
  return "#include <mmsb/instrument.h>\n#line 1 " + CString(main_path) + "\n";
}

}  // namespace mmsb::rewriter
