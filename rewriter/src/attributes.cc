// ParsedAttrInfo registrations for mmsb::page and mmsb::transaction.
//
// Clang 19 drops a plugin's scoped attribute arguments, so both attributes take none.
#include "mmsb/rewriter/attributes.h"

#include <atomic>

#include "clang/AST/ASTContext.h"
#include "clang/AST/Attr.h"
#include "clang/Basic/DiagnosticSema.h"
#include "clang/Basic/ParsedAttrInfo.h"
#include "clang/Sema/ParsedAttr.h"
#include "clang/Sema/Sema.h"

namespace mmsb::rewriter {
namespace {

std::atomic<unsigned> g_attribute_uses{0};

using clang::ParsedAttr;
using clang::ParsedAttrInfo;

void Annotate(clang::Sema& s, clang::Decl* d, const ParsedAttr& attr, llvm::StringRef name) {
  if (HasMmsbAnnotation(d, name)) return;  // [[mmsb::page]] [[mmsb::page]]: once is enough
  d->addAttr(clang::AnnotateAttr::Create(s.Context, name, nullptr, 0, attr.getRange()));
  g_attribute_uses.fetch_add(1, std::memory_order_relaxed);
}

void WarnWrongSubject(clang::Sema& s, const ParsedAttr& attr, const char* subjects) {
  s.Diag(attr.getLoc(), clang::diag::warn_attribute_wrong_decl_type_str)
      << attr << attr.isRegularKeywordAttribute() << subjects;
}

// A page variable's own bytes are all a commit sees: a type that keeps its contents elsewhere
// (std::string, std::vector) would log only its pointers and lose every change. The same error as
// for a page type (a page type itself is checked, with its notes, by the analyzer).
void CheckPageVariableType(clang::Sema& s, const clang::VarDecl* vd, const ParsedAttr& attr) {
  const clang::QualType t = vd->getType();
  if (t.isNull() || t->isDependentType() || t->isReferenceType()) return;
  if (IsPageTypeOrArrayOf(s.Context, t)) return;
  const clang::QualType elem = s.Context.getBaseElementType(t);
  if (!s.isCompleteType(vd->getLocation(), elem) || elem.isTriviallyCopyableType(s.Context)) return;
  clang::DiagnosticsEngine& d = s.getDiagnostics();
  s.Diag(vd->getLocation(),
         d.getCustomDiagID(clang::DiagnosticsEngine::Error,
                           "page type %0 is not trivially copyable; [[mmsb::page]] types must be, "
                           "so that a byte diff describes every change"))
      << elem;
  s.Diag(attr.getLoc(),
         d.getCustomDiagID(clang::DiagnosticsEngine::Note, "%0 is a page variable of that type"))
      << vd;
}

struct PageAttrInfo : ParsedAttrInfo {
  PageAttrInfo() {
    static constexpr Spelling kSpellings[] = {{ParsedAttr::AS_CXX11, "mmsb::page"}};
    Spellings = kSpellings;
  }

  bool diagAppertainsToDecl(clang::Sema& s, const ParsedAttr& attr,
                            const clang::Decl* d) const override {
    if (const auto* rd = llvm::dyn_cast<clang::RecordDecl>(d)) {
      if (rd->isLambda()) {
        WarnWrongSubject(s, attr, "classes and variables with static storage duration");
        return false;
      }
      return true;
    }
    if (const auto* vd = llvm::dyn_cast<clang::VarDecl>(d)) {
      if (!llvm::isa<clang::ParmVarDecl>(vd) && vd->getStorageDuration() == clang::SD_Static)
        return true;
    }
    WarnWrongSubject(s, attr, "classes and variables with static storage duration");
    return false;
  }

  bool diagAppertainsToStmt(clang::Sema& s, const ParsedAttr& attr,
                            const clang::Stmt*) const override {
    WarnWrongSubject(s, attr, "classes and variables with static storage duration");
    return false;
  }

  AttrHandling handleDeclAttribute(clang::Sema& s, clang::Decl* d,
                                   const ParsedAttr& attr) const override {
    if (const auto* vd = llvm::dyn_cast<clang::VarDecl>(d)) CheckPageVariableType(s, vd, attr);
    Annotate(s, d, attr, kPageAttr);
    return AttributeApplied;
  }
};

struct TransactionAttrInfo : ParsedAttrInfo {
  TransactionAttrInfo() {
    static constexpr Spelling kSpellings[] = {{ParsedAttr::AS_CXX11, "mmsb::transaction"}};
    Spellings = kSpellings;
  }

  bool diagAppertainsToDecl(clang::Sema& s, const ParsedAttr& attr,
                            const clang::Decl* d) const override {
    if (llvm::isa<clang::FunctionDecl>(d)) return true;
    WarnWrongSubject(s, attr, "functions");
    return false;
  }

  bool diagAppertainsToStmt(clang::Sema& s, const ParsedAttr& attr,
                            const clang::Stmt*) const override {
    WarnWrongSubject(s, attr, "functions");
    return false;
  }

  AttrHandling handleDeclAttribute(clang::Sema& s, clang::Decl* d,
                                   const ParsedAttr& attr) const override {
    Annotate(s, d, attr, kTransactionAttr);
    return AttributeApplied;
  }
};

clang::ParsedAttrInfoRegistry::Add<PageAttrInfo> g_page_attr("mmsb-page", "[[mmsb::page]]");
clang::ParsedAttrInfoRegistry::Add<TransactionAttrInfo> g_tx_attr("mmsb-transaction",
                                                                  "[[mmsb::transaction]]");

}  // namespace

bool HasMmsbAnnotation(const clang::Decl* d, llvm::StringRef name) {
  if (d == nullptr) return false;
  for (const clang::Decl* redecl : d->redecls()) {
    for (const auto* a : redecl->specific_attrs<clang::AnnotateAttr>()) {
      if (a->getAnnotation() == name) return true;
    }
  }
  return false;
}

bool IsPageRecord(const clang::RecordDecl* rd) {
  if (rd == nullptr) return false;
  if (HasMmsbAnnotation(rd, kPageAttr)) return true;
  if (const auto* cxx = llvm::dyn_cast<clang::CXXRecordDecl>(rd)) {
    if (const clang::CXXRecordDecl* pattern = cxx->getTemplateInstantiationPattern())
      return pattern != cxx && HasMmsbAnnotation(pattern, kPageAttr);
  }
  return false;
}

bool IsPageType(clang::QualType t) {
  if (t.isNull()) return false;
  t = t.getNonReferenceType();
  if (const auto* rt = t->getAs<clang::RecordType>()) return IsPageRecord(rt->getDecl());
  return false;
}

bool IsPageTypeOrArrayOf(const clang::ASTContext& ctx, clang::QualType t) {
  if (t.isNull()) return false;
  t = t.getNonReferenceType();
  while (const clang::ArrayType* at = ctx.getAsArrayType(t)) t = at->getElementType();
  return IsPageType(t);
}

bool IsPageVariable(const clang::VarDecl* vd) {
  if (vd == nullptr || vd->getStorageDuration() != clang::SD_Static) return false;
  if (vd->getType()->isReferenceType()) return false;
  return HasMmsbAnnotation(vd, kPageAttr) ||
         IsPageTypeOrArrayOf(vd->getASTContext(), vd->getType());
}

bool IsTransactionFunction(const clang::FunctionDecl* fd) {
  if (fd == nullptr) return false;
  if (HasMmsbAnnotation(fd, kTransactionAttr)) return true;
  if (const clang::FunctionDecl* pattern = fd->getTemplateInstantiationPattern())
    return pattern != fd && HasMmsbAnnotation(pattern, kTransactionAttr);
  return false;
}

unsigned AttributeUseCount() { return g_attribute_uses.load(std::memory_order_relaxed); }
void ResetAttributeUseCount() { g_attribute_uses.store(0, std::memory_order_relaxed); }

}  // namespace mmsb::rewriter
