// The edit recorder: maps AST ranges to file offsets, deduplicates edit sites (a template
// instantiated many times gets each edit once), wraps lvalues in barriers and inserts text, and
// reports stores that cannot be rewritten.

#include <algorithm>
#include <string>

#include "mmsb/rewriter/attributes.h"

#include "clang/AST/Attr.h"
#include "clang/AST/DeclTemplate.h"
#include "clang/AST/ExprCXX.h"
#include "clang/AST/Mangle.h"
#include "clang/AST/ParentMapContext.h"
#include "clang/AST/RecordLayout.h"
#include "clang/AST/StmtCXX.h"
#include "clang/Lex/Lexer.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"
#include "page_visitor.h"

namespace mmsb::rewriter {

std::string Quote(llvm::StringRef s) { return "'" + s.str() + "'"; }

std::string WithoutWarnings(const std::string& code) {
  return "_Pragma(\"clang diagnostic push\") _Pragma(\"clang diagnostic ignored "
         "\\\"-Weverything\\\"\") " +
         code + " _Pragma(\"clang diagnostic pop\")";
}

std::string CxxStringLiteral(llvm::StringRef s) {
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

namespace {

// Whether `parent`, the node directly above `lhs`, is an assignment, compound assignment, ++ or --
// (built-in or overloaded) that stores to `lhs`.
bool IsStoreDestination(const clang::Stmt* parent, const clang::Expr* lhs) {
  if (parent == nullptr) return false;
  if (const auto* bo = llvm::dyn_cast<clang::BinaryOperator>(parent))
    return bo->isAssignmentOp() && bo->getLHS() == lhs;
  if (const auto* uo = llvm::dyn_cast<clang::UnaryOperator>(parent))
    return uo->isIncrementDecrementOp();
  if (const auto* oc = llvm::dyn_cast<clang::CXXOperatorCallExpr>(parent)) {
    const clang::OverloadedOperatorKind op = oc->getOperator();
    return (oc->isAssignmentOp() || op == clang::OO_PlusPlus || op == clang::OO_MinusMinus) &&
           oc->getNumArgs() > 0 && oc->getArg(0) == lhs;
  }
  return false;
}

}  // namespace

// What codegen may assume about the address of the lvalue `e` (docs/PluginGuide.md, "Members with
// reduced alignment"): for a member, the base's alignment at the member's offset in the record
// layout (a packed struct, #pragma pack, a member of a member at an odd offset); for a variable,
// its declaration's; for an element of an array, the array's at the element size; for a store
// through a pointer or a reference, the type's own (sugar included: a typedef may lower it),
// which is what the language guarantees there and what the plain compile assumes too.
clang::CharUnits PageVisitor::KnownAlignment(const clang::Expr* e) const {
  e = e->IgnoreParens();
  auto of_type = [&](clang::QualType t) {
    return t->isIncompleteType() ? clang::CharUnits::One() : ctx_.getTypeAlignInChars(t);
  };
  if (const auto* me = llvm::dyn_cast<clang::MemberExpr>(e)) {
    const auto* fd = llvm::dyn_cast<clang::FieldDecl>(me->getMemberDecl());
    if (fd == nullptr) {
      if (const auto* vd = llvm::dyn_cast<clang::VarDecl>(me->getMemberDecl()))
        return ctx_.getDeclAlign(vd);
      return of_type(e->getType());
    }
    const clang::RecordDecl* rd = fd->getParent();
    if (rd->isInvalidDecl() || rd->getDefinition() == nullptr) return clang::CharUnits::One();
    const clang::CharUnits base = me->isArrow()
                                      ? of_type(me->getBase()->getType()->getPointeeType())
                                      : KnownAlignment(me->getBase());
    const clang::ASTRecordLayout& layout = ctx_.getASTRecordLayout(rd);
    return base.alignmentAtOffset(
        ctx_.toCharUnitsFromBits(static_cast<int64_t>(layout.getFieldOffset(fd->getFieldIndex()))));
  }
  if (const auto* ase = llvm::dyn_cast<clang::ArraySubscriptExpr>(e)) {
    const auto* decay = llvm::dyn_cast<clang::ImplicitCastExpr>(ase->getBase()->IgnoreParens());
    if (decay != nullptr && decay->getCastKind() == clang::CK_ArrayToPointerDecay) {
      // Any index: every element's offset is a multiple of the element size.
      return KnownAlignment(decay->getSubExpr())
          .alignmentAtOffset(ctx_.getTypeSizeInChars(e->getType()));
    }
    return of_type(e->getType());
  }
  if (const auto* ce = llvm::dyn_cast<clang::CastExpr>(e)) {
    // Derived-to-base and no-op casts of an lvalue: the subobject is no better aligned than
    // the object it lies in, nor than its own type (a packed base class).
    if (ce->getCastKind() == clang::CK_LValueBitCast) return of_type(e->getType());
    return std::min(KnownAlignment(ce->getSubExpr()), of_type(e->getType()));
  }
  if (const auto* dre = llvm::dyn_cast<clang::DeclRefExpr>(e)) {
    if (const auto* bd = llvm::dyn_cast<clang::BindingDecl>(dre->getDecl());
        bd != nullptr && bd->getBinding() != nullptr)
      return KnownAlignment(bd->getBinding());
    if (const auto* vd = llvm::dyn_cast<clang::VarDecl>(dre->getDecl());
        vd != nullptr && !vd->getType()->isReferenceType())
      return ctx_.getDeclAlign(vd);
    return of_type(e->getType());
  }
  if (const auto* co = llvm::dyn_cast<clang::ConditionalOperator>(e))
    return std::min(KnownAlignment(co->getTrueExpr()), KnownAlignment(co->getFalseExpr()));
  if (const auto* bo = llvm::dyn_cast<clang::BinaryOperator>(e)) {
    if (bo->getOpcode() == clang::BO_Comma) return KnownAlignment(bo->getRHS());
    if (bo->isAssignmentOp()) return KnownAlignment(bo->getLHS());
  }
  if (const auto* uo = llvm::dyn_cast<clang::UnaryOperator>(e);
      uo != nullptr && uo->isPrefix() && uo->isIncrementDecrementOp())
    return KnownAlignment(uo->getSubExpr());
  return of_type(e->getType());
}

bool PageVisitor::HasReducedAlignment(const clang::Expr* e) const {
  const clang::QualType t = e->getType().getCanonicalType();
  if (t->isDependentType() || t->isIncompleteType()) return false;
  return KnownAlignment(e) < ctx_.getTypeAlignInChars(t);
}

// Whether the store `store` (an assignment, compound assignment, ++ or --) is used only for its
// value or not at all, never as an lvalue (the unaligned store form yields a prvalue).
bool PageVisitor::ResultUsedOnlyAsValue(const clang::Stmt* store, bool class_type) const {
  if (const auto* uo = llvm::dyn_cast<clang::UnaryOperator>(store);
      uo != nullptr && uo->isPostfix())
    return true;  // already a prvalue
  const clang::Stmt* s = store;
  const clang::Stmt* p = TraversalParent(s);
  while (p != nullptr &&
         (llvm::isa<clang::ParenExpr>(p) || llvm::isa<clang::ExprWithCleanups>(p))) {
    s = p;
    p = TraversalParent(s);
  }
  if (p == nullptr) return false;
  if (!llvm::isa<clang::Expr>(p))  // a statement: the value is discarded, except these
    return !llvm::isa<clang::ReturnStmt>(p) && !llvm::isa<clang::DeclStmt>(p) &&
           !llvm::isa<clang::CoreturnStmt>(p);
  if (const auto* ce = llvm::dyn_cast<clang::CastExpr>(p)) {
    if (ce->getCastKind() == clang::CK_ToVoid) return true;
    return !class_type && ce->getCastKind() == clang::CK_LValueToRValue;
  }
  if (const auto* bo = llvm::dyn_cast<clang::BinaryOperator>(p))
    return bo->getOpcode() == clang::BO_Comma && bo->getLHS() == s;
  return false;
}

// The traversal's own ancestor stack answers this, not ASTContext::getParents: the first
// getParents call builds a parent map of the whole translation unit, every header and every
// declaration a precompiled header holds (deserialising all of it), which cost more than the
// rest of the analysis. A node that is not a direct child of a statement being traversed has
// no parent here: its stores take the held form, which is correct wherever it is used.
const clang::Stmt* PageVisitor::TraversalParent(const clang::Stmt* s) const {
  for (size_t i = parents_.size(); i-- > 0;) {
    if (parents_[i] == s) return i > 0 ? parents_[i - 1] : nullptr;
    for (const clang::Stmt* child : parents_[i]->children())
      if (child == s) return parents_[i];
  }
  return nullptr;
}

std::pair<std::string, std::string> PageVisitor::LvalueBarrier() const {
  if (InInstantiation()) return {"::mmsb::rt::wt(", ")"};
  if (InConstexprFunction()) return {"(*::mmsb::rt::wc(&(", ")))"};
  return {"(*::mmsb::rt::w(&(", ")))"};
}

std::string PageVisitor::PointerBarrierOpen() const {
  return (InInstantiation() || InConstexprFunction()) ? "::mmsb::rt::wc(" : "::mmsb::rt::w(";
}

bool PageVisitor::InExplicitConstexprFunction() const {
  if (functions_.empty()) return false;
  const clang::FunctionDecl* fd = functions_.back();
  // Clang marks every lambda's call operator constexpr when it could be (C++17): a lambda that
  // keeps a ScopedMark or a HeldMark simply is not constexpr then.
  if (const auto* md = llvm::dyn_cast<clang::CXXMethodDecl>(fd);
      md != nullptr && md->getParent()->isLambda())
    return fd->isConsteval();
  return fd->isConstexprSpecified() || fd->isConsteval();
}

std::string PageVisitor::HeldRefOpen() const {
  return InExplicitConstexprFunction() ? "::mmsb::rt::MarkRef(" : "::mmsb::rt::MarkHeld(";
}

std::string PageVisitor::HeldPointerOpen() const {
  return InExplicitConstexprFunction() ? "::mmsb::rt::MarkFrom(" : "::mmsb::rt::MarkFromHeld(";
}

bool PageVisitor::ScopeAround(const clang::Stmt* loop, const std::string& open) {
  // The loop's last token is its body's: `}` ends it, or the `;` after it does.
  clang::SourceLocation last = sm_.getExpansionLoc(loop->getEndLoc());
  clang::SourceLocation after;
  llvm::SmallString<4> buf;
  if (clang::Lexer::getSpelling(last, buf, sm_, lo_) == "}") {
    after = clang::Lexer::getLocForEndOfToken(last, 0, sm_, lo_);
  } else {
    after = clang::Lexer::findLocationAfterToken(last, clang::tok::semi, sm_, lo_,
                                                 /*SkipTrailingWhitespaceAndNewLine=*/false);
  }
  clang::FileID fid;
  clang::FileID end_fid;
  unsigned begin = 0, end = 0;
  if (after.isInvalid() || !FileOffsets(sm_.getExpansionLoc(loop->getBeginLoc()), &fid, &begin) ||
      !FileOffsets(after, &end_fid, &end) || fid != end_fid || end <= begin)
    return false;
  if (a_.options_.report_only) return true;
  if (!NewSite(fid, begin, end, kSiteLoopScope)) return true;
  a_.edits_.push_back({fid, begin, "{ " + open + " ", PageAnalyzer::Slot::kOpen});
  a_.edits_.push_back({fid, end, " }", PageAnalyzer::Slot::kClose});
  return true;
}

bool PageVisitor::FileRange(clang::SourceRange r, clang::FileID* fid, unsigned* begin,
                            unsigned* end) const {
  clang::CharSourceRange cr =
      clang::Lexer::makeFileCharRange(clang::CharSourceRange::getTokenRange(r), sm_, lo_);
  if (cr.isInvalid()) return false;
  return FileOffsets(cr.getBegin(), fid, begin) && FileOffsets(cr.getEnd(), nullptr, end, *fid);
}

bool PageVisitor::FileOffsets(clang::SourceLocation loc, clang::FileID* fid, unsigned* offset,
                              clang::FileID must_match) const {
  if (loc.isInvalid() || loc.isMacroID()) return false;
  auto [id, off] = sm_.getDecomposedLoc(loc);
  if (sm_.isInSystemHeader(loc)) return false;
  clang::OptionalFileEntryRef fe = sm_.getFileEntryRefForID(id);
  if (!fe) return false;
  clang::FileID canonical = Canonical(id, *fe);
  if (must_match.isValid() && canonical != must_match) return false;
  if (fid != nullptr) *fid = canonical;
  *offset = off;
  return true;
}

clang::FileID PageVisitor::Canonical(clang::FileID id, clang::FileEntryRef fe) const {
  auto [it, inserted] = canonical_.try_emplace(&fe.getFileEntry(), id);
  return it->second;
}

bool PageVisitor::NewSite(clang::FileID fid, unsigned b, unsigned e, int kind) {
  return a_.sites_.insert({fid, b, e, kind}).second;
}

bool PageVisitor::Wrap(const clang::Expr* e, const std::string& open, const std::string& close,
                       int kind, clang::SourceLocation report_loc) {
  clang::FileID fid;
  unsigned b = 0, end = 0;
  if (!FileRange(e->getSourceRange(), &fid, &b, &end)) {
    Unrewritable(e, report_loc);
    return false;
  }
  if (a_.options_.report_only) return true;
  if (!NewSite(fid, b, end, kind)) return true;
  a_.edits_.push_back({fid, b, open, PageAnalyzer::Slot::kOpen});
  a_.edits_.push_back({fid, end, close, PageAnalyzer::Slot::kClose});
  return true;
}

bool PageVisitor::InsertAt(clang::SourceLocation loc, const std::string& text, int kind,
                           PageAnalyzer::Slot slot) {
  clang::FileID fid;
  unsigned off = 0;
  if (!FileOffsets(loc, &fid, &off)) return false;
  if (a_.options_.report_only) return true;
  if (!NewSite(fid, off, off, kind)) return true;
  a_.edits_.push_back({fid, off, text, slot});
  return true;
}

void PageVisitor::Barrier(const clang::Expr* lhs, clang::SourceLocation op_loc) {
  NoteWrite(PageTypeOfStorage(lhs));
  if (IsCoveredByLoopMark(lhs)) {
    Remark(DiagKind::kRemarkLoopCovered, op_loc, {Quote(SourceText(lhs))});
    return;
  }
  auto remark = [&](const char* form) {
    Remark(DiagKind::kRemarkBarrier, op_loc, {Quote(SourceText(lhs)), form + WhyNoLoopMark()});
  };
  const auto* member = llvm::dyn_cast<clang::MemberExpr>(lhs->IgnoreParens());
  bool shared_member = InInstantiation() && member != nullptr &&
                       llvm::isa<clang::FieldDecl>(member->getMemberDecl()) &&
                       !llvm::isa<clang::CXXThisExpr>(member->getBase()->IgnoreParenImpCasts());
  if (shared_member) {
    // A store the template's pattern has rewritten already (its destination does not depend on
    // the template's parameters): the pattern's form covers every instantiation.
    clang::FileID fid;
    unsigned b = 0, e = 0;
    if (FileRange(lhs->getSourceRange(), &fid, &b, &e) &&
        a_.sites_.count({fid, b, e, static_cast<int>(kSiteStore)}))
      return;
  }
  if (lhs->refersToBitField() || shared_member) {
    const auto* me0 = llvm::dyn_cast<clang::MemberExpr>(lhs->IgnoreParenImpCasts());
    if (me0 != nullptr && !me0->isArrow() && HasReducedAlignment(me0->getBase())) {
      // `(*w(&(obj))).f = v` would store through a pointer of obj's type, whose natural
      // alignment obj lacks here (docs/PluginGuide.md, "Members with reduced alignment").
      ReducedAlignmentUnrewritable(lhs, op_loc);
      return;
    }
    // A bitfield has no address: mark its enclosing object. In a template instantiation the
    // edit lands in text that other instantiations share, where the same member may be a
    // bitfield (`t.level = v` over a page type and a plain type): mark the object there too.
    const auto* me = llvm::dyn_cast<clang::MemberExpr>(lhs->IgnoreParenImpCasts());
    if (me == nullptr) {
      Unrewritable(lhs, op_loc);
      return;
    }
    remark(lhs->refersToBitField()
               ? "a bit-field has no address: its enclosing object is marked first"
               : "template code shared with other instantiations: the object is marked first");
    const clang::Expr* base = me->getBase();
    if (me->isArrow()) {
      if (const auto* th = llvm::dyn_cast<clang::CXXThisExpr>(base->IgnoreParenImpCasts());
          th != nullptr && th->isImplicit()) {
        if (!InsertAt(me->getMemberLoc(), PointerBarrierOpen() + "this)->", kSiteThisMember))
          Unrewritable(lhs, op_loc);
        return;
      }
      Wrap(base, PointerBarrierOpen(), ")", kSitePointerBase, op_loc);
    } else {
      Wrap(base, LvalueBarrier().first, LvalueBarrier().second, kSiteStore, op_loc);
    }
    return;
  }
  // Store, then mark (docs/Runtime.md, "The commit protocol") where `lhs` is the destination of an
  // assignment, compound assignment, ++ or --; other mutating operators (operator[] of a member
  // object) get a held mark, as member calls do. ws does nothing during constant evaluation, so
  // constexpr functions use it too; template code takes the address with __builtin_addressof.
  if (!IsStoreDestination(TraversalParent(lhs), lhs)) {
    // A mutating operator call (`g.arr[produce()] += v`, operator[] of a member object): its
    // object is evaluated before its other operands, which may commit (a transaction), so a
    // mark made only then is consumed before the store: mark it again at the end of the
    // full-expression, as member calls do (issue 13, class 3).
    if (Wrap(lhs, HeldRefOpen(), ")", kSiteStore, op_loc))
      remark(
          "a mutating operator call: the object is marked when it is evaluated and again at "
          "the end of the full-expression");
  } else if (HasReducedAlignment(lhs)) {
    // A member of a packed struct (or any destination less aligned than its type): `ws(&(lhs))`
    // would store through a T*, which codegen may assume aligned. wsu stores through memcpy.
    const clang::Stmt* store = TraversalParent(lhs);
    const clang::QualType t = lhs->getType().getCanonicalType();
    bool trivial_copy = t->isScalarType();
    if (const auto* oc = llvm::dyn_cast<clang::CXXOperatorCallExpr>(store)) {
      const auto* md = llvm::dyn_cast_or_null<clang::CXXMethodDecl>(oc->getDirectCallee());
      trivial_copy = md != nullptr && md->isTrivial() &&
                     (md->isCopyAssignmentOperator() || md->isMoveAssignmentOperator());
    }
    // A destination that is itself a store (`(p.i = 4) += 1`): the inner one escapes the page
    // (its result is used as an lvalue) before the statement, where this wrap would also begin.
    const clang::Expr* inner = lhs->IgnoreParens();
    const auto* inner_bo = llvm::dyn_cast<clang::BinaryOperator>(inner);
    const auto* inner_uo = llvm::dyn_cast<clang::UnaryOperator>(inner);
    const bool nested_store = (inner_bo != nullptr && inner_bo->isAssignmentOp()) ||
                              (inner_uo != nullptr && inner_uo->isIncrementDecrementOp()) ||
                              llvm::isa<clang::CXXOperatorCallExpr>(inner);
    if (nested_store) {
      // Its destination is the innermost store's: escape that one's page (the same object).
      const clang::Expr* dest = inner;
      for (;;) {
        dest = dest->IgnoreParens();
        if (const auto* bo = llvm::dyn_cast<clang::BinaryOperator>(dest);
            bo != nullptr && bo->isAssignmentOp()) {
          dest = bo->getLHS();
        } else if (const auto* uo = llvm::dyn_cast<clang::UnaryOperator>(dest);
                   uo != nullptr && uo->isIncrementDecrementOp()) {
          dest = uo->getSubExpr();
        } else if (const auto* oc = llvm::dyn_cast<clang::CXXOperatorCallExpr>(dest);
                   oc != nullptr && oc->getNumArgs() > 0) {
          dest = oc->getArg(0);
        } else {
          break;
        }
      }
      ReducedAlignmentUnrewritable(dest, op_loc);
      return;
    }
    if (InInstantiation() || !trivial_copy || !ResultUsedOnlyAsValue(store, !t->isScalarType())) {
      ReducedAlignmentUnrewritable(lhs, op_loc);
      return;
    }
    if (t.isVolatileQualified()) {
      // wsu copies with memcpy, which has no volatile form, and copying byte by byte would change
      // the accesses the program asked for: the store stays exactly as written, escaped.
      Unrewritable(lhs, op_loc, "a volatile destination less aligned than its type");
      return;
    }
    // Taking the address of a packed member warns (-Waddress-of-packed-member); this one is
    // meant, and never stored through as a T*. Diagnostic state is kept by location, so the
    // warning is off for the inserted `&` alone, however late clang reports it.
    if (Wrap(lhs,
             "_Pragma(\"clang diagnostic push\") _Pragma(\"clang diagnostic ignored "
             "\\\"-Waddress-of-packed-member\\\"\") ::mmsb::rt::wsu(&(",
             ")) _Pragma(\"clang diagnostic pop\")", kSiteStore, op_loc))
      remark(
          "store, then mark; the destination is less aligned than its type, so it is stored "
          "through memcpy");
  } else if (InInstantiation()) {
    if (Wrap(lhs, "::mmsb::rt::wst(", ")", kSiteStore, op_loc)) remark("store, then mark");
  } else {
    if (Wrap(lhs, "::mmsb::rt::ws(&(", "))", kSiteStore, op_loc)) remark("store, then mark");
  }
}

void PageVisitor::ReducedAlignmentUnrewritable(const clang::Expr* e, clang::SourceLocation loc) {
  if (InInstantiation()) {
    // Template text is shared by every instantiation: an escape before it would leave another
    // instantiation's store form in place, so this one cannot be made safe here.
    clang::SourceLocation where = loc.isValid() ? loc : e->getExprLoc();
    if (!sm_.isInSystemHeader(sm_.getExpansionLoc(where)))
      AddFinding(DiagKind::kUnalignedTemplateStore, where, {Quote(SourceText(e))});
    return;
  }
  Unrewritable(e, loc, "its destination is less aligned than its type");
}

void PageVisitor::Unrewritable(const clang::Expr* e, clang::SourceLocation loc,
                               const char* reason) {
  clang::SourceLocation where = loc.isValid() ? loc : e->getExprLoc();
  if (sm_.isInSystemHeader(sm_.getExpansionLoc(where))) return;
  const bool in_macro = where.isMacroID() || e->getBeginLoc().isMacroID();
  const char* why = reason != nullptr       ? reason
                    : in_macro              ? "inside a macro expansion"
                    : e->refersToBitField() ? "a bitfield through a structured binding"
                                            : "not in a source file";
  if (EscapeBefore(e)) {
    AddFinding(DiagKind::kUnrewritableStore, where, {why});
    Remark(DiagKind::kRemarkEscape, where,
           {Quote(SourceText(e)), std::string("a store to it cannot be rewritten (") + why + ")"});
  } else {
    AddFinding(DiagKind::kUnrewritableUntracked, where, {why});
  }
}

bool PageVisitor::EscapeBefore(const clang::Expr* e) {
  std::string root = RootAddress(e);
  if (root.empty()) return false;
  // The statement directly inside a compound statement.
  for (size_t i = parents_.size(); i-- > 1;) {
    if (!llvm::isa<clang::CompoundStmt>(parents_[i - 1])) continue;
    clang::SourceLocation begin = sm_.getExpansionLoc(parents_[i]->getBeginLoc());
    if (a_.options_.report_only) return true;
    return InsertAt(begin, "::mmsb::rt::Escape(" + root + "); ", kSiteMacroEscape,
                    PageAnalyzer::Slot::kStatement);
  }
  return false;
}

std::string PageVisitor::RootAddress(const clang::Expr* e) const {
  while (e != nullptr) {
    e = e->IgnoreParenImpCasts();
    if (const auto* me = llvm::dyn_cast<clang::MemberExpr>(e)) {
      e = me->getBase();
    } else if (const auto* ase = llvm::dyn_cast<clang::ArraySubscriptExpr>(e)) {
      e = ase->getBase();
    } else if (const auto* uo = llvm::dyn_cast<clang::UnaryOperator>(e)) {
      e = uo->getSubExpr();
    } else if (const auto* bo = llvm::dyn_cast<clang::BinaryOperator>(e);
               bo != nullptr && bo->isAdditiveOp()) {
      // Pointer arithmetic (`(g.a + 3)[i]` in a macro): the pointer operand's page.
      e = bo->getLHS()->getType()->isPointerType() ? bo->getLHS() : bo->getRHS();
      if (!e->getType()->isPointerType()) return "";
    } else if (llvm::isa<clang::CXXThisExpr>(e)) {
      return "this";
    } else if (const auto* dre = llvm::dyn_cast<clang::DeclRefExpr>(e);
               dre != nullptr && llvm::isa<clang::BindingDecl>(dre->getDecl())) {
      // `auto& [n, mode] = g;`: the object the binding's declaration refers to.
      const auto* dd = llvm::dyn_cast_or_null<clang::DecompositionDecl>(
          llvm::cast<clang::BindingDecl>(dre->getDecl())->getDecomposedDecl());
      if (dd == nullptr || !dd->getType()->isReferenceType() || dd->getInit() == nullptr) return "";
      e = IgnoreFullExprWrappers(dd->getInit());
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

}  // namespace mmsb::rewriter
