// Type descriptors: the layout metadata that turns a byte offset into a field name.
//
// The plugin emits one descriptor per [[mmsb::page]] type and registers it once per program.
// Descriptors are immutable after registration and owned by the registry, so a
// `const TypeDescriptor*` stays valid until mmsb::stop(). Nested records refer to their own
// registered descriptor by name.
//
// Thread-safety: RegisterType and FindType may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mmsb/status.h"

namespace mmsb {

enum class ScalarKind : std::uint8_t {
  kBytes = 0,  // opaque bytes, printed as hex
  kBool,
  kChar,
  kI8,
  kU8,
  kI16,
  kU16,
  kI32,
  kU32,
  kI64,
  kU64,
  kF32,
  kF64,
  kPointer,  // logged as a raw address
  kRecord,   // nested record: see FieldDescriptor::record_type
};

const char* ScalarKindName(ScalarKind k);

struct FieldDescriptor {
  std::string name;          // "x"
  std::uint32_t offset = 0;  // byte offset in the enclosing record
  std::uint32_t size = 0;    // total bytes, arrays included
  ScalarKind kind = ScalarKind::kBytes;
  std::uint32_t elem_size = 0;         // bytes of one element (== size when not an array)
  std::vector<std::uint32_t> extents;  // array extents, outermost first; empty for scalars
  std::string record_type;             // name of the nested record's descriptor (kRecord only)
};

struct TypeDescriptor {
  std::string name;  // "Particles"
  std::uint32_t size = 0;
  std::uint32_t align = 1;
  std::vector<FieldDescriptor> fields;  // sorted by offset

  // Checks the layout is self-consistent: fields inside the record, sorted, non-overlapping,
  // elem_size * product(extents) == size.
  Status Validate() const;
};

// One resolved leaf location inside a record: "Particles.x[12]" plus its value bytes' range.
struct FieldPath {
  std::string path;          // "x[12]" or "pos.y" (without the type name)
  std::uint32_t offset = 0;  // byte offset of the leaf element
  std::uint32_t size = 0;    // bytes of the leaf element
  ScalarKind kind = ScalarKind::kBytes;
};

// Finds the descriptor of a nested record type by name; null when it does not know it. A
// callback like every other of the public API (std::function).
using TypeLookup = std::function<const TypeDescriptor*(std::string_view name)>;

// Resolves the leaf element that contains `offset`, descending into nested records through
// `lookup` (may be empty, then records are treated as opaque bytes). Returns nullopt when the
// offset falls into padding.
std::optional<FieldPath> ResolveField(const TypeDescriptor& type, std::uint32_t offset,
                                      const TypeLookup& lookup = {});
// The earlier form: a function pointer and its context. Kept for programs that call it; new code
// passes a TypeLookup.
[[deprecated("pass a TypeLookup (a std::function) instead of a function pointer and context")]]
std::optional<FieldPath> ResolveField(const TypeDescriptor& type, std::uint32_t offset,
                                      const TypeDescriptor* (*lookup)(std::string_view name,
                                                                      void* ctx),
                                      void* ctx = nullptr);

// Formats `size` bytes at `p` as a value of `kind` ("1.5", "42", "0x7f12...", "true").
std::string FormatScalar(ScalarKind kind, const void* p, std::uint32_t size);

}  // namespace mmsb
