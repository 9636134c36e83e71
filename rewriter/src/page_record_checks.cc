// Page records: a [[mmsb::page]] class must be trivially copyable and hold no pointers (with a
// note per reason it is not); its definition gets MMSB's operator new/delete and _mmsb_type();
// each instantiation of a page class template gets a descriptor. Uses of a page type that go
// untracked (std::make_shared, a page inside a standard value container) are reported here too.

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

void PageVisitor::CheckPageRecord(const clang::CXXRecordDecl* rd) {
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

void PageVisitor::ExplainNotTriviallyCopyable(const clang::CXXRecordDecl* rd) {
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

void PageVisitor::InstrumentPageRecord(const clang::CXXRecordDecl* rd) {
  if (a_.options_.report_only) return;
  // Instrumented already (a rewritten header seen again, e.g. from a PCH built with the plugin):
  // its operator new is MMSB's, which comes before _mmsb_type.
  for (const clang::Decl* d : rd->decls()) {
    const auto* nd = llvm::dyn_cast<clang::NamedDecl>(d);
    if (nd != nullptr && nd->getDeclName().isIdentifier() && nd->getName() == "_mmsb_type") return;
  }
  for (const clang::Decl* d : rd->decls()) {
    const auto* nd = llvm::dyn_cast<clang::NamedDecl>(d);
    if (nd == nullptr) continue;
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
  // A class template's layout depends on its arguments: each instantiation this TU sees gets
  // an overload of _mmsb_describe, found by argument-dependent lookup when the template's
  // _mmsb_type() is instantiated (DescribeInstantiation); others fall back to no descriptor.
  std::string desc = "_mmsb_describe(static_cast<" + name + "*>(nullptr))";
  if (!rd->isDependentType()) {
    desc = "(" + InternNested(rd) + "::mmsb::rt::InternLayout(" + Descriptor(rd) + "))";
  }
  const std::string fail = lo_.CXXExceptions ? "throw ::std::bad_alloc();" : "__builtin_trap();";
  std::string text =
      " public: static void* operator new(::std::size_t _mmsb_n) { void* _mmsb_p = "
      "::mmsb::rt::AllocPageStorage(_mmsb_n, alignof(" +
      name + "), _mmsb_n == sizeof(" + name + ") ? " + name +
      "::_mmsb_type() : nullptr); if (!_mmsb_p) " + fail +
      " return _mmsb_p; }"
      " static void* operator new(::std::size_t, void* _mmsb_p) noexcept { return _mmsb_p; }"
      " static void operator delete(void* _mmsb_p) noexcept { "
      "::mmsb::rt::FreePageStorage(_mmsb_p); }"
      " static void operator delete(void*, void*) noexcept {}"
      " static const ::mmsb::TypeDescriptor* _mmsb_type() noexcept { " +
      std::string(rd->isDependentType() ? "using ::mmsb::rt::_mmsb_describe; " : "") +
      "static const ::mmsb::TypeDescriptor* const _mmsb_d = " + desc + "; return _mmsb_d; } ";
  if (!InsertAt(rd->getBraceRange().getEnd(), " " + WithoutWarnings(text) + " ", kSiteRecord)) {
    AddFinding(DiagKind::kUnrewritableDecl, rd->getLocation(),
               {"page type " + Quote(RecordName(rd)),
                "its definition is inside a macro expansion or a system header"});
  }
}

void PageVisitor::DescribeInstantiation(const clang::CXXRecordDecl* rd) {
  if (a_.options_.report_only || rd->isInvalidDecl() || rd->isDependentType()) return;
  const auto* spec = llvm::dyn_cast<clang::ClassTemplateSpecializationDecl>(rd);
  if (spec == nullptr) return;
  const clang::CXXRecordDecl* pattern = spec->getSpecializedTemplate()->getTemplatedDecl();
  if (!pattern->getDeclContext()->getRedeclContext()->isFileContext()) return;
  const std::string type = TypeName(ctx_.getRecordType(rd));
  for (const char* bad : {"(lambda", "(unnamed", "(anonymous", "<anonymous", "(local"}) {
    if (type.find(bad) != std::string::npos) return;
  }
  if (!described_.insert(type).second) return;
  std::string open, close;
  for (const clang::DeclContext* dc = pattern->getDeclContext(); !dc->isTranslationUnit();
       dc = dc->getParent()) {
    const auto* ns = llvm::dyn_cast<clang::NamespaceDecl>(dc);
    if (ns == nullptr) {
      if (llvm::isa<clang::LinkageSpecDecl>(dc)) continue;
      return;
    }
    open = (ns->isAnonymousNamespace() ? std::string("namespace { ")
                                       : (ns->isInline() ? "inline namespace " : "namespace ") +
                                             ns->getName().str() + " { ") +
           open;
    close += "} ";
  }
  a_.trailers_[sm_.getMainFileID()] +=
      WithoutWarnings(open + "inline const ::mmsb::TypeDescriptor* _mmsb_describe(::" + type +
                      "*) noexcept { return (" + InternNested(rd) + "::mmsb::rt::InternLayout(" +
                      Descriptor(rd) + ")); } " + close) +
      "\n";
}

void PageVisitor::CheckSharedAllocation(const clang::CallExpr* ce, const clang::FunctionDecl* fd) {
  if (fd == nullptr || !fd->isInStdNamespace() || fd->getIdentifier() == nullptr) return;
  const llvm::StringRef name = fd->getName();
  if (name != "make_shared" && name != "allocate_shared" && name != "make_shared_for_overwrite" &&
      name != "allocate_shared_for_overwrite")
    return;
  const clang::TemplateArgumentList* args = fd->getTemplateSpecializationArgs();
  if (args == nullptr || args->size() == 0 ||
      args->get(0).getKind() != clang::TemplateArgument::Type)
    return;
  const clang::QualType t = args->get(0).getAsType();
  if (!IsPageTypeOrArrayOf(ctx_, t)) return;
  AddFinding(DiagKind::kUntrackedSharedAlloc, ce->getBeginLoc(),
             {Quote("std::" + name.str()), Quote(TypeName(t))});
}

void PageVisitor::CheckContainer(clang::QualType t, clang::SourceLocation loc) {
  t = t.getNonReferenceType();
  while (const clang::ArrayType* at = ctx_.getAsArrayType(t)) t = at->getElementType();
  const auto* spec =
      llvm::dyn_cast_or_null<clang::ClassTemplateSpecializationDecl>(t->getAsCXXRecordDecl());
  if (spec == nullptr || !spec->isInStdNamespace()) return;
  if (!IsValueContainer(spec->getName())) return;
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
}  // namespace mmsb::rewriter
