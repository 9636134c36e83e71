// Type descriptors: validation, offset -> field path resolution, and value formatting.
#include "mmsb/type_desc.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace mmsb {

const char* ScalarKindName(ScalarKind k) {
  switch (k) {
    case ScalarKind::kBytes:
      return "bytes";
    case ScalarKind::kBool:
      return "bool";
    case ScalarKind::kChar:
      return "char";
    case ScalarKind::kI8:
      return "i8";
    case ScalarKind::kU8:
      return "u8";
    case ScalarKind::kI16:
      return "i16";
    case ScalarKind::kU16:
      return "u16";
    case ScalarKind::kI32:
      return "i32";
    case ScalarKind::kU32:
      return "u32";
    case ScalarKind::kI64:
      return "i64";
    case ScalarKind::kU64:
      return "u64";
    case ScalarKind::kF32:
      return "f32";
    case ScalarKind::kF64:
      return "f64";
    case ScalarKind::kPointer:
      return "pointer";
    case ScalarKind::kRecord:
      return "record";
  }
  return "unknown";
}

namespace {

// Natural size of a scalar kind, or 0 when any size is allowed.
std::uint32_t KindSize(ScalarKind k) {
  switch (k) {
    case ScalarKind::kBool:
    case ScalarKind::kChar:
    case ScalarKind::kI8:
    case ScalarKind::kU8:
      return 1;
    case ScalarKind::kI16:
    case ScalarKind::kU16:
      return 2;
    case ScalarKind::kI32:
    case ScalarKind::kU32:
    case ScalarKind::kF32:
      return 4;
    case ScalarKind::kI64:
    case ScalarKind::kU64:
    case ScalarKind::kF64:
      return 8;
    case ScalarKind::kPointer:
      return sizeof(void*);
    case ScalarKind::kBytes:
    case ScalarKind::kRecord:
      return 0;
  }
  return 0;
}

}  // namespace

Status TypeDescriptor::Validate() const {
  if (name.empty()) return InvalidArgument("type descriptor has no name");
  if (size == 0) return InvalidArgument(fmt::format("type '{}' has size 0", name));
  if (align == 0 || (align & (align - 1)) != 0) {
    return InvalidArgument(
        fmt::format("type '{}' has alignment {}, not a power of two", name, align));
  }
  std::uint64_t prev_end = 0;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const FieldDescriptor& f = fields[i];
    const std::string where = fmt::format("type '{}' field '{}'", name, f.name);
    if (f.name.empty())
      return InvalidArgument(fmt::format("type '{}' field {} has no name", name, i));
    if (f.size == 0 || f.elem_size == 0) return InvalidArgument(where + " has size 0");
    if (std::uint64_t{f.offset} + f.size > size) {
      return InvalidArgument(fmt::format("{} [{}, +{}) lies outside the {}-byte record", where,
                                         f.offset, f.size, size));
    }
    if (f.offset < prev_end) {
      return InvalidArgument(
          fmt::format("{} at offset {} overlaps or precedes the previous field", where, f.offset));
    }
    std::uint64_t elems = 1;
    for (std::uint32_t e : f.extents) {
      if (e == 0) return InvalidArgument(where + " has an array extent of 0");
      elems *= e;
      if (elems > size) break;
    }
    if (elems * f.elem_size != f.size) {
      return InvalidArgument(fmt::format("{}: element size {} x {} element(s) != size {}", where,
                                         f.elem_size, elems, f.size));
    }
    if (const std::uint32_t ks = KindSize(f.kind); ks != 0 && ks != f.elem_size) {
      return InvalidArgument(fmt::format("{}: a {} element has {} bytes, not {}", where,
                                         ScalarKindName(f.kind), ks, f.elem_size));
    }
    if (f.kind == ScalarKind::kRecord && f.record_type.empty()) {
      return InvalidArgument(where + " is a nested record without a record type name");
    }
    prev_end = std::uint64_t{f.offset} + f.size;
  }
  return Status::Ok();
}

std::optional<FieldPath> ResolveField(const TypeDescriptor& type, std::uint32_t offset,
                                      const TypeDescriptor* (*lookup)(std::string_view name,
                                                                      void* ctx),
                                      void* ctx) {
  if (lookup == nullptr) return ResolveField(type, offset);
  return ResolveField(type, offset,
                      [lookup, ctx](std::string_view name) { return lookup(name, ctx); });
}

std::optional<FieldPath> ResolveField(const TypeDescriptor& type, std::uint32_t offset,
                                      const TypeLookup& lookup) {
  std::string prefix;
  const TypeDescriptor* t = &type;
  std::uint32_t base = 0;  // offset of *t inside the outermost record
  // Nested records descend iteratively; the depth is bounded to survive cyclic descriptors.
  for (int depth = 0; depth < 64; ++depth) {
    if (offset < base || offset - base >= t->size) return std::nullopt;
    const std::uint32_t rel = offset - base;
    auto it =
        std::upper_bound(t->fields.begin(), t->fields.end(), rel,
                         [](std::uint32_t o, const FieldDescriptor& f) { return o < f.offset; });
    if (it == t->fields.begin()) return std::nullopt;
    const FieldDescriptor& f = *std::prev(it);
    if (rel >= f.offset + f.size) return std::nullopt;  // padding
    std::uint64_t index = (rel - f.offset) / f.elem_size;
    const std::uint32_t elem_off = f.offset + static_cast<std::uint32_t>(index) * f.elem_size;
    std::string path = prefix + f.name;
    if (!f.extents.empty()) {
      // Row-major: the innermost extent varies fastest.
      std::vector<std::uint64_t> idx(f.extents.size());
      for (std::size_t k = f.extents.size(); k-- > 0;) {
        idx[k] = index % f.extents[k];
        index /= f.extents[k];
      }
      for (std::uint64_t v : idx) path += fmt::format("[{}]", v);
    }
    if (f.kind == ScalarKind::kRecord && lookup) {
      if (const TypeDescriptor* nested = lookup(f.record_type);
          nested != nullptr && nested->size == f.elem_size) {
        prefix = path + ".";
        t = nested;
        base += elem_off;
        continue;
      }
    }
    FieldPath out;
    out.path = std::move(path);
    out.offset = base + elem_off;
    out.size = f.elem_size;
    out.kind = f.kind == ScalarKind::kRecord ? ScalarKind::kBytes : f.kind;
    return out;
  }
  return std::nullopt;
}

std::string FormatScalar(ScalarKind kind, const void* p, std::uint32_t size) {
  auto load = [&](auto v) {
    std::memcpy(&v, p, sizeof(v));
    return v;
  };
  if (const std::uint32_t ks = KindSize(kind); ks == 0 || ks != size) kind = ScalarKind::kBytes;
  switch (kind) {
    case ScalarKind::kBool:
      return load(std::uint8_t{}) ? "true" : "false";
    case ScalarKind::kChar: {
      const auto c = load(char{});
      if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') return fmt::format("'{}'", c);
      return fmt::format("'\\x{:02x}'", static_cast<unsigned char>(c));
    }
    case ScalarKind::kI8:
      return fmt::format("{}", load(std::int8_t{}));
    case ScalarKind::kU8:
      return fmt::format("{}", load(std::uint8_t{}));
    case ScalarKind::kI16:
      return fmt::format("{}", load(std::int16_t{}));
    case ScalarKind::kU16:
      return fmt::format("{}", load(std::uint16_t{}));
    case ScalarKind::kI32:
      return fmt::format("{}", load(std::int32_t{}));
    case ScalarKind::kU32:
      return fmt::format("{}", load(std::uint32_t{}));
    case ScalarKind::kI64:
      return fmt::format("{}", load(std::int64_t{}));
    case ScalarKind::kU64:
      return fmt::format("{}", load(std::uint64_t{}));
    case ScalarKind::kF32:
      return fmt::format("{}", load(float{}));
    case ScalarKind::kF64:
      return fmt::format("{}", load(double{}));
    case ScalarKind::kPointer:
      return fmt::format("0x{:x}", load(std::uintptr_t{}));
    default:
      break;
  }
  // Opaque bytes: hex, in memory order, elided past 32 bytes.
  const auto* b = static_cast<const std::uint8_t*>(p);
  std::string out = "0x";
  const std::uint32_t shown = std::min<std::uint32_t>(size, 32);
  for (std::uint32_t i = 0; i < shown; ++i) out += fmt::format("{:02x}", b[i]);
  if (shown < size) out += fmt::format("...(+{} bytes)", size - shown);
  return out;
}

}  // namespace mmsb
