// The [[mmsb::page]] and [[mmsb::transaction]] attributes.
//
// Both are registered with Clang's ParsedAttrInfo registry by attributes.cc (a static registrar,
// so linking or loading attributes.o is enough). A correctly placed attribute is recorded on the
// declaration as an AnnotateAttr whose annotation is the attribute's full name; these helpers
// read it back. Misplaced attributes are diagnosed (-Wignored-attributes) and dropped.
//
// Thread-safety: the helpers are pure functions of the AST. AttributeUseCount is a process-wide
// relaxed counter; a compiler instance resets it before parsing.
#pragma once

#include "clang/AST/Decl.h"
#include "clang/AST/DeclCXX.h"
#include "clang/AST/Type.h"
#include "llvm/ADT/StringRef.h"

namespace mmsb::rewriter {

inline constexpr llvm::StringLiteral kPageAttr = "mmsb::page";
inline constexpr llvm::StringLiteral kTransactionAttr = "mmsb::transaction";

// True when `d` (or a redeclaration it inherits from) carries the annotation `name`.
bool HasMmsbAnnotation(const clang::Decl* d, llvm::StringRef name);

// A record marked [[mmsb::page]] (any redeclaration, or the template pattern it instantiates).
bool IsPageRecord(const clang::RecordDecl* rd);

// The record is a page type: `t` (references stripped) is a page record.
bool IsPageType(clang::QualType t);

// `t` is a page type or an array (of arrays) of page types.
bool IsPageTypeOrArrayOf(const clang::ASTContext& ctx, clang::QualType t);

// A variable that is a page: static storage duration and either [[mmsb::page]] or a page type.
bool IsPageVariable(const clang::VarDecl* vd);

// A function marked [[mmsb::transaction]].
bool IsTransactionFunction(const clang::FunctionDecl* fd);

// Number of well-placed mmsb attributes seen since the last reset. Zero after a parse means the
// translation unit has nothing to rewrite.
unsigned AttributeUseCount();
void ResetAttributeUseCount();

}  // namespace mmsb::rewriter
