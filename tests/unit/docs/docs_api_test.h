// Shared by the tests of docs/API.md's examples (tests/unit/docs/api_*_test.cc), one file per
// group of chapters.
//
// Every ```cpp block in docs/API.md appears verbatim (modulo indentation) in one of these files,
// and check_api_doc.py (ctest docs_api_doc_matches_sources) fails when one does not, or when a
// namespace-scope name of a public header is missing from the document. The examples are written
// as a user writes them: qualified names, errors handled with Status/Expected. Each test runs its
// examples and checks what they did, so a change of behaviour breaks the documentation's build.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "mmsb/mmsb.h"

#include "temp_dir.h"

namespace {

using mmsb::testing::TempDir;

#define ASSERT_OK(expr)                    \
  do {                                     \
    const ::mmsb::Status _s = (expr);      \
    ASSERT_TRUE(_s.ok()) << _s.ToString(); \
  } while (0)

// Most examples assume a started bus, as a program has after mmsb::start() (or after the first
// instrumented page registers).
class DocsApi : public ::testing::Test {
 protected:
  void SetUp() override {
    mmsb::Options options;
    options.arena_bytes = std::size_t{1} << 30;
    options.propagation_threads = 1;
    ASSERT_OK(mmsb::start(options));
  }
  void TearDown() override { mmsb::stop(); }
  TempDir tmp_;
};

// ---- mmsb/type_desc.h: the example type, which the later chapters' examples write and log.
// Each test file uses some of these helpers, not all.
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunused-function"

struct Vec3 {
  float x, y, z;
};
struct Body {
  Vec3 pos;
  std::uint32_t hits[4];
  double mass;
};

mmsb::Expected<const mmsb::TypeDescriptor*> RegisterBodyType() {
  mmsb::TypeDescriptor vec3{"Vec3", sizeof(Vec3), alignof(Vec3), {}};
  vec3.fields = {{"x", offsetof(Vec3, x), 4, mmsb::ScalarKind::kF32, 4, {}, ""},
                 {"y", offsetof(Vec3, y), 4, mmsb::ScalarKind::kF32, 4, {}, ""},
                 {"z", offsetof(Vec3, z), 4, mmsb::ScalarKind::kF32, 4, {}, ""}};
  mmsb::TypeDescriptor body{"Body", sizeof(Body), alignof(Body), {}};
  body.fields = {
      {"pos",
       offsetof(Body, pos),
       sizeof(Vec3),
       mmsb::ScalarKind::kRecord,
       sizeof(Vec3),
       {},
       "Vec3"},
      {"hits", offsetof(Body, hits), sizeof(Body::hits), mmsb::ScalarKind::kU32, 4, {4}, ""},
      {"mass", offsetof(Body, mass), 8, mmsb::ScalarKind::kF64, 8, {}, ""}};
  MMSB_RETURN_IF_ERROR(body.Validate());  // RegisterType validates too
  if (auto v = mmsb::RegisterType(vec3); !v.ok()) return v.status();
  return mmsb::RegisterType(body);  // the interned copy, valid until mmsb::stop()
}

std::string DescribeByte(const mmsb::TypeDescriptor& type, const void* object,
                         std::uint32_t offset) {
  auto lookup = [](std::string_view name) { return mmsb::FindType(name); };
  std::optional<mmsb::FieldPath> field = mmsb::ResolveField(type, offset, lookup);
  if (!field) return "padding";
  const auto* leaf = static_cast<const std::uint8_t*>(object) + field->offset;
  return type.name + "." + field->path + " = " +
         mmsb::FormatScalar(field->kind, leaf, field->size) + " (" +
         mmsb::ScalarKindName(field->kind) + ")";
}

#pragma clang diagnostic pop

}  // namespace
