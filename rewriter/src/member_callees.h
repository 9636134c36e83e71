// Member functions called on page storage: which may write their object, and which library
// members are taken on trust to keep no address of it (PluginGuide, "Held marks").
#pragma once

#include "clang/AST/DeclCXX.h"
#include "clang/Basic/SourceManager.h"

namespace mmsb::rewriter {

// A non-static member function that may write its object: a non-const one, or a const one of a
// class with a mutable member (at any depth, bases included). A call of one on page storage is
// marked (held) unless the callee is instrumented.
bool IsWritingMember(const clang::CXXMethodDecl* md);

// The allowlist of library members that keep nothing: a member function, declared in a system
// header, of std::array, optional, variant, bitset, pair, tuple, complex or atomic (or
// monostate, nullopt_t) whose class and function template arguments are all inert (arithmetic,
// enumerations, arrays of them, these types of them): no user code runs in it, and these types
// hold their value inline and register no address. Every other member function's body is
// checked (PageVisitor::CalleeMayKeepThis), a system header's as a user header's.
bool LibraryMemberKeepsNothing(const clang::CXXMethodDecl* md, const clang::SourceManager& sm);

}  // namespace mmsb::rewriter
