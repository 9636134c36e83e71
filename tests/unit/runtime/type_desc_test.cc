// Type descriptors: validation, field resolution (arrays, nested records, padding), formatting.
#include "mmsb/type_desc.h"

#include <cstring>

#include <gtest/gtest.h>

namespace mmsb {
namespace {

TypeDescriptor Vec3() {
  return {"Vec3",
          12,
          4,
          {{"x", 0, 4, ScalarKind::kF32, 4, {}, ""},
           {"y", 4, 4, ScalarKind::kF32, 4, {}, ""},
           {"z", 8, 4, ScalarKind::kF32, 4, {}, ""}}};
}

// struct Body { std::uint8_t tag; /* 3 padding */ Vec3 pos[2][3]; double m[4]; };
TypeDescriptor Body() {
  return {"Body",
          4 + 72 + 4 + 32,
          8,
          {{"tag", 0, 1, ScalarKind::kU8, 1, {}, ""},
           {"pos", 4, 72, ScalarKind::kRecord, 12, {2, 3}, "Vec3"},
           {"m", 80, 32, ScalarKind::kF64, 8, {4}, ""}}};
}

const TypeDescriptor* Lookup(std::string_view name) {
  static const TypeDescriptor vec3 = Vec3();
  return name == "Vec3" ? &vec3 : nullptr;
}

TEST(TypeDescriptor, ValidLayoutsPass) {
  EXPECT_TRUE(Vec3().Validate().ok());
  EXPECT_TRUE(Body().Validate().ok());
}

TEST(TypeDescriptor, InconsistentLayoutsAreRejected) {
  TypeDescriptor t = Vec3();
  t.fields[1].offset = 2;  // overlaps x
  EXPECT_EQ(t.Validate().code(), StatusCode::kInvalidArgument);
  t = Vec3();
  t.fields[2].offset = 10;  // runs past the record
  EXPECT_NE(t.Validate().message().find("outside"), std::string::npos);
  t = Body();
  t.fields[2].extents = {5};  // 5 * 8 != 32
  EXPECT_FALSE(t.Validate().ok());
  t = Body();
  t.fields[1].record_type.clear();
  EXPECT_FALSE(t.Validate().ok());
  t = Vec3();
  t.fields[0].elem_size = t.fields[0].size = 2;  // an f32 of 2 bytes
  EXPECT_FALSE(t.Validate().ok());
  t = Vec3();
  t.align = 3;
  EXPECT_FALSE(t.Validate().ok());
  EXPECT_FALSE(TypeDescriptor{}.Validate().ok());
}

TEST(ResolveField, ArraysAndNestedRecordsGiveFullPaths) {
  const TypeDescriptor b = Body();
  auto f = ResolveField(b, 0, Lookup);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->path, "tag");
  // pos[1][2].y: 4 + (1*3 + 2) * 12 + 4 = 68
  f = ResolveField(b, 68, Lookup);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->path, "pos[1][2].y");
  EXPECT_EQ(f->offset, 68u);
  EXPECT_EQ(f->size, 4u);
  EXPECT_EQ(f->kind, ScalarKind::kF32);
  f = ResolveField(b, 71, Lookup);  // last byte of the same float
  ASSERT_TRUE(f);
  EXPECT_EQ(f->path, "pos[1][2].y");
  f = ResolveField(b, 80 + 3 * 8 + 5, Lookup);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->path, "m[3]");
  EXPECT_EQ(f->offset, 104u);
}

TEST(ResolveField, PaddingAndOutOfRangeResolveToNothing) {
  EXPECT_FALSE(ResolveField(Body(), 2, Lookup));
  EXPECT_FALSE(ResolveField(Body(), 500, Lookup));
}

// The earlier callback form (a function pointer and its context) resolves the same paths.
TEST(ResolveField, FunctionPointerWithContextStillResolvesNestedRecords) {
  const TypeDescriptor vec3 = Vec3();
  auto lookup = [](std::string_view name, void* ctx) -> const TypeDescriptor* {
    const auto* known = static_cast<const TypeDescriptor*>(ctx);
    return name == known->name ? known : nullptr;
  };
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
  auto f = ResolveField(Body(), 68, lookup, const_cast<TypeDescriptor*>(&vec3));
#pragma clang diagnostic pop
  ASSERT_TRUE(f);
  EXPECT_EQ(f->path, "pos[1][2].y");
  EXPECT_EQ(f->kind, ScalarKind::kF32);
}

TEST(ResolveField, UnknownNestedTypeIsOpaqueBytes) {
  auto f = ResolveField(Body(), 68);  // no lookup
  ASSERT_TRUE(f);
  EXPECT_EQ(f->path, "pos[1][2]");
  EXPECT_EQ(f->kind, ScalarKind::kBytes);
  EXPECT_EQ(f->size, 12u);
}

TEST(FormatScalar, FormatsEachKind) {
  float f = 1.5f;
  EXPECT_EQ(FormatScalar(ScalarKind::kF32, &f, 4), "1.5");
  double d = -0.25;
  EXPECT_EQ(FormatScalar(ScalarKind::kF64, &d, 8), "-0.25");
  std::int32_t i = -42;
  EXPECT_EQ(FormatScalar(ScalarKind::kI32, &i, 4), "-42");
  std::uint64_t u = 18446744073709551615ull;
  EXPECT_EQ(FormatScalar(ScalarKind::kU64, &u, 8), "18446744073709551615");
  bool t = true;
  EXPECT_EQ(FormatScalar(ScalarKind::kBool, &t, 1), "true");
  char c = 'q';
  EXPECT_EQ(FormatScalar(ScalarKind::kChar, &c, 1), "'q'");
  std::uint8_t raw[3] = {0xde, 0xad, 0x01};
  EXPECT_EQ(FormatScalar(ScalarKind::kBytes, raw, 3), "0xdead01");
  EXPECT_EQ(FormatScalar(ScalarKind::kI32, raw, 3), "0xdead01")
      << "size mismatch falls back to hex";
  std::uint8_t big[40] = {};
  EXPECT_NE(FormatScalar(ScalarKind::kBytes, big, 40).find("(+8 bytes)"), std::string::npos);
}

}  // namespace
}  // namespace mmsb
