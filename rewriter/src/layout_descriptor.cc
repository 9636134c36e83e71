// Layout descriptors: the field names, offsets, sizes, element types and array extents of page
// types, as ::mmsb::rt::InternLayout calls the rewritten code registers once per program. They make
// field-level diffs possible.

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

std::string PageVisitor::RecordName(const clang::RecordDecl* rd) const {
  return TypeName(ctx_.getRecordType(rd));
}

std::string PageVisitor::DisplayName(clang::QualType t) const {
  clang::PrintingPolicy pp(lo_);
  pp.SuppressTagKeyword = true;
  return t.getUnqualifiedType().getAsString(pp);
}

std::string PageVisitor::TypeName(clang::QualType t) const {
  clang::PrintingPolicy pp(lo_);
  pp.SuppressTagKeyword = true;
  pp.FullyQualifiedName = true;
  pp.SuppressUnwrittenScope = true;
  pp.AnonymousTagLocations = false;
  return t.getUnqualifiedType().getCanonicalType().getAsString(pp);
}

std::string PageVisitor::ScalarKind(clang::QualType t, std::string* record_type,
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
      case 8:
        return is_signed ? "kI8" : "kU8";
      case 16:
        return is_signed ? "kI16" : "kU16";
      case 32:
        return is_signed ? "kI32" : "kU32";
      case 64:
        return is_signed ? "kI64" : "kU64";
      default:
        return "kBytes";
    }
  }
  if (const auto* bt = t->getAs<clang::BuiltinType>()) {
    if (bt->getKind() == clang::BuiltinType::Float) return "kF32";
    if (bt->getKind() == clang::BuiltinType::Double) return "kF64";
  }
  return "kBytes";
}

std::string PageVisitor::Field(const std::string& name, uint64_t offset, clang::QualType t,
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
  std::string out = "{" + CxxStringLiteral(name) + ", " + std::to_string(offset) + "u, " +
                    std::to_string(size) + "u, ::mmsb::rt::kind::" + kind + ", " +
                    std::to_string(elem_size) + "u, {";
  for (size_t i = 0; i < extents.size(); ++i)
    out += (i ? ", " : "") + std::to_string(extents[i]) + "u";
  out += "}, " + CxxStringLiteral(record_type) + "}";
  return out;
}

std::string PageVisitor::Descriptor(const clang::RecordDecl* rd,
                                    std::vector<const clang::RecordDecl*>* nested_out) const {
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
                         "{" + CxxStringLiteral(bf_name) + ", " + std::to_string(bf_begin) + "u, " +
                             std::to_string(bf_end - bf_begin) + "u, ::mmsb::rt::kind::kBytes, " +
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
  return CxxStringLiteral(RecordName(rd)) + ", " + std::to_string(layout.getSize().getQuantity()) +
         "u, " + std::to_string(layout.getAlignment().getQuantity()) + "u, {" + fields + "}";
}

std::string PageVisitor::InternNested(const clang::RecordDecl* rd) const {
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
    out += "::mmsb::rt::InternLayout(" + Descriptor(*it) + "), ";
  return out;
}

std::string PageVisitor::VarDescriptor(const clang::VarDecl* vd) const {
  clang::QualType t = vd->getType().getUnqualifiedType();
  if (const auto* rt = t->getAs<clang::RecordType>()) {
    return "(" + InternNested(rt->getDecl()) + "::mmsb::rt::InternLayout(" +
           Descriptor(rt->getDecl()) + "))";
  }
  std::vector<const clang::RecordDecl*> nested;
  std::string field = Field(vd->getName().str(), 0, t, &nested);
  std::string pre;
  for (const clang::RecordDecl* n : nested)
    pre += InternNested(n) + "::mmsb::rt::InternLayout(" + Descriptor(n) + "), ";
  // Named after the variable: two variables of one non-record type may differ in field name.
  std::string name = vd->getQualifiedNameAsString() + TranslationUnitSuffix(vd);
  return "(" + pre + "::mmsb::rt::InternLayout(" + CxxStringLiteral(name) + ", " +
         std::to_string(ctx_.getTypeSizeInChars(t).getQuantity()) + "u, " +
         std::to_string(ctx_.getTypeAlignInChars(t).getQuantity()) + "u, {" + field + "}))";
}

}  // namespace mmsb::rewriter
