// The library model: which standard and C library functions write through their pointer or
// reference arguments without keeping them, which hand storage through, and which standard class
// templates hold their elements by value. Library code is not instrumented; these tables decide
// whether page storage passed to it is marked for the epoch, followed, or escaped.

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

namespace {

// Standard and C library functions that write through pointer or reference arguments without
// keeping them: a page passed to one is marked for the current epoch instead of escaping.
const llvm::StringSet<>& NonRetainingNames() {
  static const llvm::StringSet<> names = {
      // C library.
      "memcpy", "memmove", "memset", "memccpy", "bzero", "explicit_bzero", "strcpy", "strncpy",
      "stpcpy", "stpncpy", "strcat", "strncat", "strxfrm", "sprintf", "snprintf", "vsprintf",
      "vsnprintf", "wmemcpy", "wmemmove", "wmemset", "wcscpy", "wcsncpy", "fread", "read", "pread",
      "recv", "fgets", "strftime", "mbstowcs", "wcstombs", "sscanf", "frexp", "modf", "remquo",
      // <algorithm>, <numeric>, <memory>, <utility>, <charconv> (and their std::ranges forms).
      "fill", "fill_n", "copy", "copy_n", "copy_if", "copy_backward", "move", "move_backward",
      "swap", "iter_swap", "swap_ranges", "exchange", "transform", "generate", "generate_n",
      "replace", "replace_if", "replace_copy", "replace_copy_if", "remove", "remove_if",
      "remove_copy", "remove_copy_if", "unique", "unique_copy", "reverse", "reverse_copy", "rotate",
      "rotate_copy", "shuffle", "sort", "stable_sort", "partial_sort", "partial_sort_copy",
      "nth_element", "partition", "stable_partition", "partition_copy", "inplace_merge", "merge",
      "set_union", "set_intersection", "set_difference", "set_symmetric_difference", "iota",
      "adjacent_difference", "partial_sum", "inclusive_scan", "exclusive_scan",
      "transform_inclusive_scan", "transform_exclusive_scan", "make_heap", "push_heap", "pop_heap",
      "sort_heap", "next_permutation", "prev_permutation", "uninitialized_copy",
      "uninitialized_copy_n", "uninitialized_fill", "uninitialized_fill_n", "uninitialized_move",
      "uninitialized_move_n", "uninitialized_default_construct",
      "uninitialized_default_construct_n", "uninitialized_value_construct",
      "uninitialized_value_construct_n", "to_chars", "from_chars", "for_each", "for_each_n"};
  return names;
}

// Standard functions that return (a pointer to or a reference into) an argument and neither
// write through nor keep it: page storage flows through them.
const llvm::StringSet<>& TransparentNames() {
  static const llvm::StringSet<> names = {"begin",
                                          "end",
                                          "data",
                                          "addressof",
                                          "next",
                                          "prev",
                                          "to_address",
                                          "launder",
                                          "forward",
                                          "get",
                                          "__addressof",
                                          "assume_aligned",
                                          "as_writable_bytes"};
  return names;
}

}  // namespace

llvm::StringRef PageVisitor::LibraryName(const clang::FunctionDecl* fd) const {
  if (fd == nullptr) return {};
  if (fd->getBuiltinID() != 0 && fd->getIdentifier() != nullptr) {
    llvm::StringRef name = fd->getName();
    name.consume_front("__builtin_");
    return name;
  }
  if (!sm_.isInSystemHeader(sm_.getExpansionLoc(fd->getLocation()))) return {};
  if (const auto* md = llvm::dyn_cast<clang::CXXMethodDecl>(fd)) {
    if (md->getOverloadedOperator() != clang::OO_Call || !md->getParent()->isInStdNamespace() ||
        md->getParent()->getIdentifier() == nullptr)
      return {};
    llvm::StringRef name = md->getParent()->getName();  // std::ranges::__fill_fn
    name.consume_front("__");
    name.consume_back("_fn");
    return name;
  }
  if (fd->getIdentifier() == nullptr) return {};
  if (fd->isInStdNamespace() || fd->isExternC() ||
      fd->getDeclContext()->getRedeclContext()->isTranslationUnit())
    return fd->getName();
  return {};
}

bool PageVisitor::IsNonRetaining(const clang::FunctionDecl* fd) const {
  llvm::StringRef name = LibraryName(fd);
  if (name.empty()) return false;
  if (name == "move" || name == "forward") return fd->getNumParams() > 1;  // the algorithm
  if (fd->getBuiltinID() != 0) return !TransparentNames().contains(name);
  return NonRetainingNames().contains(name);
}

bool PageVisitor::IsTransparent(const clang::FunctionDecl* fd) const {
  llvm::StringRef name = LibraryName(fd);
  if (name.empty()) return false;
  if (name == "move") return fd->getNumParams() == 1;  // the cast, not the algorithm
  return TransparentNames().contains(name);
}

bool PageVisitor::IsValueContainer(llvm::StringRef name) {
  static const llvm::StringSet<> names = {"vector",
                                          "deque",
                                          "list",
                                          "forward_list",
                                          "array",
                                          "map",
                                          "multimap",
                                          "set",
                                          "multiset",
                                          "unordered_map",
                                          "unordered_multimap",
                                          "unordered_set",
                                          "unordered_multiset",
                                          "optional",
                                          "variant",
                                          "pair",
                                          "tuple",
                                          "stack",
                                          "queue",
                                          "priority_queue",
                                          "valarray",
                                          "any",
                                          "inplace_vector",
                                          "flat_map",
                                          "flat_set",
                                          "flat_multimap",
                                          "flat_multiset",
                                          "expected"};
  return names.contains(name);
}

bool PageVisitor::IsPureLibraryCall(const clang::FunctionDecl* fd) const {
  if (fd->getBuiltinID() != 0 && fd->getName().starts_with("__builtin_")) {
    // Compiler builtins neither call back nor synchronise, except the atomic, sync and
    // non-local jump families. (Library builtins such as printf or raise go by the list below.)
    const llvm::StringRef name = fd->getName();
    return !name.contains("atomic") && !name.contains("sync") && !name.contains("jmp");
  }
  if (!InSystemHeader(fd) || IsInMmsbNamespace(fd)) return false;
  // Pure computations of the C and C++ libraries: they only read their arguments and return a
  // value (the math functions, <cstdlib>'s abs family, std::min/max/clamp on scalars).
  static const llvm::StringSet<> kPure = {
      "abs",   "labs",           "llabs",       "fabs",        "fabsf",     "fabsl",
      "sqrt",  "sqrtf",          "sqrtl",       "cbrt",        "cbrtf",     "exp",
      "expf",  "exp2",           "exp2f",       "expm1",       "log",       "logf",
      "log2",  "log2f",          "log10",       "log1p",       "pow",       "powf",
      "sin",   "sinf",           "cos",         "cosf",        "tan",       "tanf",
      "asin",  "acos",           "atan",        "atan2",       "atan2f",    "sinh",
      "cosh",  "tanh",           "floor",       "floorf",      "ceil",      "ceilf",
      "round", "roundf",         "lround",      "trunc",       "truncf",    "fmod",
      "fmodf", "fmin",           "fminf",       "fmax",        "fmaxf",     "fma",
      "fmaf",  "hypot",          "hypotf",      "copysign",    "nearbyint", "rint",
      "isnan", "isinf",          "isfinite",    "signbit",     "min",       "max",
      "clamp", "popcount",       "countl_zero", "countr_zero", "bit_cast",  "rotl",
      "rotr",  "has_single_bit", "bit_width",   "bit_floor",   "bit_ceil"};
  if (!fd->getDeclName().isIdentifier() || !kPure.contains(fd->getName())) return false;
  // Scalar parameters and result only: nothing of a user type is copied, compared or called.
  auto scalar = [](clang::QualType t) {
    t = t.getNonReferenceType();
    return t->isArithmeticType() || t->isEnumeralType();
  };
  if (!scalar(fd->getReturnType())) return false;
  for (const clang::ParmVarDecl* p : fd->parameters()) {
    if (!scalar(p->getType())) return false;
  }
  return true;
}

}  // namespace mmsb::rewriter
