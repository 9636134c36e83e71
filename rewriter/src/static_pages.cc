// Static pages: a [[mmsb::page]] variable with static storage duration moves to the page section
// and registers under its mangled name (plus the file name where other TUs cannot name it).

#include <string>

#include "mmsb/rewriter/attributes.h"

#include "clang/AST/Attr.h"
#include "clang/AST/DeclTemplate.h"
#include "clang/AST/ExprCXX.h"
#include "clang/AST/Mangle.h"
#include "clang/AST/RecordLayout.h"
#include "clang/AST/StmtCXX.h"
#include "clang/Lex/Lexer.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"
#include "page_visitor.h"

namespace mmsb::rewriter {

std::string PageVisitor::TranslationUnitSuffix(const clang::VarDecl* vd) const {
  const clang::NamedDecl* owner = vd;
  if (vd->isStaticLocal()) {
    // Unique when its function is: the mangled name includes the function's.
    for (const clang::DeclContext* dc = vd->getDeclContext(); dc != nullptr; dc = dc->getParent()) {
      if (const auto* fd = llvm::dyn_cast<clang::FunctionDecl>(dc)) {
        owner = fd;
        if (!llvm::isa<clang::CXXMethodDecl>(fd) ||
            !llvm::cast<clang::CXXMethodDecl>(fd)->getParent()->isLambda())
          break;
      }
    }
  }
  if (owner->isExternallyVisible()) return "";
  clang::OptionalFileEntryRef fe = sm_.getFileEntryRefForID(sm_.getMainFileID());
  return "@" + (fe ? llvm::sys::path::filename(fe->getName()).str() : std::string("<stdin>"));
}

std::string PageVisitor::QualifiedName(const clang::NamedDecl* nd) const {
  std::string out = nd->getNameAsString();
  for (const clang::DeclContext* dc = nd->getDeclContext(); dc != nullptr; dc = dc->getParent()) {
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

std::string PageVisitor::MangledName(const clang::VarDecl* vd) const {
  std::string out;
  llvm::raw_string_ostream os(out);
  if (mangle_->shouldMangleDeclName(vd)) {
    mangle_->mangleName(clang::GlobalDecl(vd), os);
  } else {
    os << vd->getName();
  }
  return out;
}

void PageVisitor::InstrumentStaticPage(const clang::VarDecl* vd) {
  if (a_.options_.report_only) return;
  if (vd->isThisDeclarationADefinition() != clang::VarDecl::Definition) return;
  if (vd->isTemplated() || vd->getType().isConstQualified() || vd->isConstexpr()) return;
  if (vd->getType()->isDependentType() || vd->getType()->isIncompleteType()) return;
  if (vd->hasAttr<clang::SectionAttr>()) return;  // already instrumented (or user-placed)
  const std::string mangled = MangledName(vd) + TranslationUnitSuffix(vd);
  if (!InsertAt(vd->getTypeSpecStartLoc(), "__attribute__((section(\"mmsb_pages\"), aligned(64))) ",
                kSiteSection)) {
    AddFinding(
        DiagKind::kUnrewritableDecl, vd->getLocation(),
        {"static page " + Quote(vd->getName()), "its declaration is inside a macro expansion"});
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
                           CxxStringLiteral(mangled) + ", " + VarDescriptor(vd) + ")";
  const bool inline_var =
      vd->isInline() || !sm_.isInMainFile(sm_.getExpansionLoc(vd->getLocation()));
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
                  " " + WithoutWarnings("static ::mmsb::rt::StaticPageRegistrar " + reg_name +
                                        args + ";"),
                  kSiteLocalRegistrar)) {
      AddFinding(
          DiagKind::kUnrewritableDecl, vd->getLocation(),
          {"static page " + Quote(vd->getName()), "its declaration is inside a macro expansion"});
    }
    return;
  }
  if (vd->isStaticDataMember()) {
    // Registered by an inline static member of the class, which can name the member whatever
    // its access. Every TU that sees the class sees the same registrar, so the class must be a
    // page variable in its own declaration, not only in this definition.
    const auto* cls = llvm::dyn_cast<clang::CXXRecordDecl>(vd->getDeclContext());
    const clang::VarDecl* in_class = vd->getCanonicalDecl();
    const bool declared_page =
        IsPageTypeOrArrayOf(ctx_, in_class->getType()) || in_class->hasAttr<clang::AnnotateAttr>();
    std::string why;
    if (cls == nullptr || cls->isTemplated() || cls->getName().empty() ||
        cls->isLocalClass() != nullptr) {
      why = "a member of a class template, local or unnamed class";
    } else if (!declared_page) {
      why = "its declaration in the class is not [[mmsb::page]]";
    } else if (!lo_.CPlusPlus17) {
      why = "registering a static data member needs C++17";
    } else if (!registered_members_.insert(mangled).second) {
      return;
    } else if (!InsertAt(
                   cls->getBraceRange().getEnd(),
                   " " +
                       WithoutWarnings("static inline ::mmsb::rt::StaticPageRegistrar " + reg_name +
                                       "{(void*)&(" + vd->getName().str() + "), sizeof(" +
                                       vd->getName().str() + "), " + CxxStringLiteral(mangled) +
                                       ", " + VarDescriptor(vd) + "};") +
                       " ",
                   kSiteMemberRegistrar + static_cast<int>(registered_members_.size()))) {
      why = "its class is defined inside a macro expansion";
    }
    if (!why.empty()) {
      AddFinding(DiagKind::kUnrewritableDecl, vd->getLocation(),
                 {"static data member page " + Quote(vd->getName()), why});
    }
    return;
  }
  clang::FileID fid;
  unsigned off = 0;
  if (!FileOffsets(sm_.getExpansionLoc(vd->getLocation()), &fid, &off)) return;
  std::string& trailer = a_.trailers_[fid];
  trailer += WithoutWarnings(std::string(inline_var ? "inline" : "static") +
                             " ::mmsb::rt::StaticPageRegistrar " + reg_name + args + ";") +
             "\n";
}

void PageVisitor::LabelPageSymbol(const clang::VarDecl* vd) {
  if (a_.options_.report_only) return;
  const clang::VarDecl* canon = vd->getCanonicalDecl();
  if (!labelled_.insert(canon).second) return;
  if (!canon->hasExternalFormalLinkage() || canon->isStaticDataMember() ||
      !canon->getDeclContext()->getRedeclContext()->isFileContext() || canon->isTemplated() ||
      canon->isInline())
    return;
  for (const clang::VarDecl* r : canon->redecls()) {
    if (r->hasAttr<clang::AsmLabelAttr>()) return;  // the user's own symbol name
  }
  // Every declaration this translation unit sees gets the label, or none does (clang rejects a
  // label added after a use of the variable).
  std::vector<std::pair<clang::FileID, unsigned>> at;
  for (const clang::VarDecl* r : canon->redecls()) {
    clang::SourceLocation end = sm_.getExpansionLoc(r->getLocation());
    if (const clang::TypeSourceInfo* tsi = r->getTypeSourceInfo()) {
      clang::SourceLocation type_end = sm_.getExpansionLoc(tsi->getTypeLoc().getEndLoc());
      if (type_end.isValid() && sm_.isBeforeInTranslationUnit(end, type_end)) end = type_end;
    }
    clang::FileID fid;
    unsigned off = 0;
    if (!FileOffsets(clang::Lexer::getLocForEndOfToken(end, 0, sm_, lo_), &fid, &off)) return;
    at.emplace_back(fid, off);
  }
  const std::string label = " __asm__(" + CxxStringLiteral(PageSymbol(MangledName(canon))) + ")";
  for (const auto& [fid, off] : at) {
    if (NewSite(fid, off, off, kSiteAsmLabel))
      a_.edits_.push_back({fid, off, label, PageAnalyzer::Slot::kOpen});
  }
}

std::string PageSymbol(llvm::StringRef mangled) { return "_mmsb_page." + mangled.str(); }

}  // namespace mmsb::rewriter
