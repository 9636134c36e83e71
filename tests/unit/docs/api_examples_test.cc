// The examples of docs/API.md, compiled and run.
//
// Every ```cpp block in docs/API.md appears verbatim (modulo indentation) in this file, and
// check_api_doc.py (ctest docs_api_doc_matches_sources) fails when one does not, or when a
// namespace-scope name of a public header is missing from the document. The examples are written
// as a user writes them: qualified names, errors handled with Status/Expected. Each test runs its
// examples and checks what they did, so a change of behaviour breaks the documentation's build.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/held_marks.h"
#include "mmsb/kernels.h"
#include "mmsb/mmsb.h"
#include "mmsb/query.h"

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

// ---- mmsb/status.h
// -------------------------------------------------------------------------------

mmsb::Expected<int> ParsePercent(std::string_view text) {
  if (text.empty()) return mmsb::InvalidArgument("empty percentage");
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return mmsb::InvalidArgument("not a number: '" + std::string(text) + "'");
    value = value * 10 + (c - '0');
    if (value > 100) return mmsb::InvalidArgument("over 100: " + std::string(text));
  }
  return value;
}

mmsb::Status SetThreshold(std::string_view flag, int* threshold) {
  mmsb::Expected<int> percent = ParsePercent(flag);
  if (!percent.ok()) return percent.status().WithContext("--threshold");
  *threshold = *percent;
  return mmsb::Status::Ok();
}

mmsb::Status Configure(std::string_view flag) {
  int threshold = 0;
  MMSB_RETURN_IF_ERROR(SetThreshold(flag, &threshold));
  MMSB_CHECK(threshold <= 100);  // a broken invariant aborts; it is not an error to return
  std::printf("threshold %d%%\n", threshold);
  return mmsb::Status::Ok();
}

TEST(DocsApiStatus, ExpectedCarriesAValueOrATypedError) {
  EXPECT_TRUE(Configure("42").ok());
  const mmsb::Status bad = Configure("4x");
  EXPECT_EQ(bad.code(), mmsb::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.ToString(), "invalid_argument: --threshold: not a number: '4x'");
  EXPECT_EQ(mmsb::StatusCode::kInvalidArgument, Configure("101").code());
  EXPECT_EQ(std::string(mmsb::StatusCodeName(mmsb::StatusCode::kCorruption)), "corruption");
  EXPECT_EQ(mmsb::Status().ToString(), "ok");
  // Equality compares codes only.
  EXPECT_TRUE(mmsb::NotFound("a") == mmsb::NotFound("b"));
  EXPECT_FALSE(mmsb::NotFound("a") == mmsb::Internal("a"));
  // An Expected built from an OK status is an internal error, never a value.
  mmsb::Expected<int> from_ok{mmsb::Status::Ok()};
  EXPECT_EQ(from_ok.status().code(), mmsb::StatusCode::kInternal);
  // One convenience constructor per code.
  const mmsb::Status all[] = {
      mmsb::NotFound(""),      mmsb::InvalidDelta(""), mmsb::InvalidArgument(""),
      mmsb::Corruption(""),    mmsb::IOError(""),      mmsb::Unsupported(""),
      mmsb::GraphCycle(""),    mmsb::OutOfMemory(""),  mmsb::FailedPrecondition(""),
      mmsb::AlreadyExists(""), mmsb::Internal("")};
  for (std::size_t i = 0; i < std::size(all); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(all[i].code()), i + 1) << all[i].ToString();
  }
}

TEST(DocsApiStatusDeathTest, ValueOfAnErrorAndBrokenChecksAbortWithTheMessage) {
  EXPECT_DEATH(
      {
        mmsb::Expected<int> e = mmsb::NotFound("no such page");
        (void)e.value();
      },
      "Expected::value\\(\\) on an error: not_found: no such page");
  EXPECT_DEATH(mmsb::AbortWithStatus(mmsb::Corruption("bad record"), "loading"),
               "mmsb: fatal: loading: corruption: bad record");
  EXPECT_DEATH(MMSB_CHECK(1 + 1 == 3), "check failed at .*: 1 \\+ 1 == 3");
}

// ---- mmsb/types.h
// --------------------------------------------------------------------------------

std::string Where(mmsb::PageId page, mmsb::Epoch epoch, mmsb::Location location) {
  if (page == mmsb::kInvalidPageId) return "no page";
  return "page " + std::to_string(page) + " at epoch " + std::to_string(epoch) + " on " +
         mmsb::LocationName(location);
}

// Shadow bytes (one per granule) a page of `bytes` bytes needs.
std::uint64_t Granules(std::uint64_t bytes) { return mmsb::GranuleCount(bytes); }

TEST(DocsApiTypes, NamesAndGranules) {
  EXPECT_EQ(Where(3, 7, mmsb::Location::kGpu), "page 3 at epoch 7 on gpu");
  EXPECT_EQ(Where(mmsb::kInvalidPageId, 7, mmsb::Location::kCpu), "no page");
  EXPECT_EQ(Granules(1), 1u);
  EXPECT_EQ(Granules(4096), 64u);
  EXPECT_EQ(Granules(4097), 65u);
  std::printf("granule: %llu bytes; %s, %s, %s\n",
              static_cast<unsigned long long>(mmsb::kGranuleSize),
              mmsb::LocationName(mmsb::Location::kCpu), mmsb::LocationName(mmsb::Location::kGpu),
              mmsb::LocationName(mmsb::Location::kUnified));
  static_assert(mmsb::kGranuleSize == std::uint64_t{1} << mmsb::kGranuleShift);
  static_assert(mmsb::kInvalidPageId == 0);
  EXPECT_EQ(mmsb::kGranuleSize, 64u);
  EXPECT_STREQ(mmsb::LocationName(mmsb::Location::kUnified), "unified");
}

// ---- mmsb/mmsb.h
// ---------------------------------------------------------------------------------

mmsb::Status RunOneEpoch() {
  mmsb::Options options;
  options.arena_bytes = std::size_t{1} << 30;  // address space for heap pages (reserved lazily)
  options.verify = true;                       // also diff every page in full, as an oracle
  MMSB_RETURN_IF_ERROR(mmsb::start(options));
  mmsb::Expected<mmsb::Page*> page = mmsb::CreatePage(4096);
  if (!page.ok()) return page.status();
  *mmsb::rt::w(&(*page)->data()[100]) = 7;  // a store through the write barrier
  mmsb::Expected<mmsb::Epoch> epoch = mmsb::commit();
  if (!epoch.ok()) return epoch.status();
  const mmsb::Stats stats = mmsb::GetStats();
  std::printf("epoch %llu: %llu delta(s), %llu byte(s) changed\n",
              static_cast<unsigned long long>(mmsb::current_epoch()),
              static_cast<unsigned long long>(stats.deltas),
              static_cast<unsigned long long>(stats.delta_bytes));
  mmsb::stop();  // frees every page
  return mmsb::Status::Ok();
}

TEST(DocsApiBus, StartCommitStop) {
  ASSERT_FALSE(mmsb::started());
  ::testing::internal::CaptureStdout();
  ASSERT_OK(RunOneEpoch());
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "epoch 1: 1 delta(s), 1 byte(s) changed\n");
  EXPECT_FALSE(mmsb::started());
  EXPECT_EQ(mmsb::current_epoch(), 0u) << "a stopped bus has no epoch";
  ASSERT_OK(mmsb::start());
  EXPECT_EQ(mmsb::start().code(), mmsb::StatusCode::kFailedPrecondition) << "already started";
  mmsb::stop();
  mmsb::stop();  // a no-op when stopped
}

// ---- mmsb/type_desc.h
// ----------------------------------------------------------------------------

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
  auto lookup = [](std::string_view name, void*) { return mmsb::FindType(name); };
  std::optional<mmsb::FieldPath> field = mmsb::ResolveField(type, offset, lookup);
  if (!field) return "padding";
  const auto* leaf = static_cast<const std::uint8_t*>(object) + field->offset;
  return type.name + "." + field->path + " = " +
         mmsb::FormatScalar(field->kind, leaf, field->size) + " (" +
         mmsb::ScalarKindName(field->kind) + ")";
}

TEST_F(DocsApi, TypeDescriptorsResolveOffsetsToFieldNames) {
  auto type = RegisterBodyType();
  ASSERT_TRUE(type.ok()) << type.status().ToString();
  EXPECT_EQ(mmsb::FindType("Body"), *type);
  Body b{{1.0f, 2.5f, 3.0f}, {0, 0, 9, 0}, 70.5};
  EXPECT_EQ(DescribeByte(**type, &b, offsetof(Body, pos) + 5), "Body.pos.y = 2.5 (f32)");
  EXPECT_EQ(DescribeByte(**type, &b, offsetof(Body, hits) + 8), "Body.hits[2] = 9 (u32)");
  EXPECT_EQ(DescribeByte(**type, &b, offsetof(Body, mass)), "Body.mass = 70.5 (f64)");
  EXPECT_EQ(DescribeByte(**type, &b, offsetof(Body, hits) + 16), "padding");
  // Without a lookup a nested record is opaque bytes.
  auto opaque = mmsb::ResolveField(**type, offsetof(Body, pos) + 5);
  ASSERT_TRUE(opaque.has_value());
  EXPECT_EQ(opaque->path, "pos");
  // The same name with another layout is refused; the same layout is the same registration.
  EXPECT_EQ(*RegisterBodyType(), *type);
  mmsb::TypeDescriptor other{"Body", 8, 8, {{"n", 0, 8, mmsb::ScalarKind::kU64, 8, {}, ""}}};
  EXPECT_EQ(mmsb::RegisterType(other).status().code(), mmsb::StatusCode::kAlreadyExists);
  mmsb::TypeDescriptor broken{"Broken", 4, 4, {{"n", 0, 8, mmsb::ScalarKind::kU64, 8, {}, ""}}};
  EXPECT_FALSE(broken.Validate().ok()) << "a field past the end of the record";
  const char c = 'q';
  const bool t = true;
  EXPECT_EQ(mmsb::FormatScalar(mmsb::ScalarKind::kChar, &c, 1), "'q'");
  EXPECT_EQ(mmsb::FormatScalar(mmsb::ScalarKind::kBool, &t, 1), "true");
  EXPECT_EQ(mmsb::FormatScalar(mmsb::ScalarKind::kBytes, "\x01\xab", 2), "0x01ab");
}

// ---- mmsb/page.h and mmsb/barrier.h
// --------------------------------------------------------------

mmsb::Status TrackHeapBody() {
  mmsb::PageOptions options;
  options.type = mmsb::FindType("Body");  // registered earlier: deltas resolve to field names
  options.name = "player";                // optional stable identity
  mmsb::Expected<mmsb::Page*> page = mmsb::CreatePage(sizeof(Body), options);
  if (!page.ok()) return page.status();
  auto* body = reinterpret_cast<Body*>((*page)->data());  // zeroed storage
  mmsb::rt::w(&body->pos)->y = 2.5f;                      // marks the whole Vec3
  *mmsb::rt::w(&body->hits[2]) += 1;                      // marks one element
  if (auto e = mmsb::commit(); !e.ok()) return e.status();
  const mmsb::PageInfo info = (*page)->Info();
  std::printf("page %llu '%s' (%s, %zu bytes) changed in epoch %llu\n",
              static_cast<unsigned long long>(info.id), info.name.c_str(), info.type->name.c_str(),
              info.size, static_cast<unsigned long long>(info.epoch));
  return mmsb::Status::Ok();
}

alignas(64) Body g_body;  // caller-owned storage that outlives the bus

mmsb::Status TrackStaticBody() {
  mmsb::PageOptions options;
  options.type = mmsb::FindType("Body");
  options.name = "g_body";  // the plugin uses the mangled variable name
  mmsb::Expected<mmsb::Page*> page = mmsb::RegisterStaticPage(&g_body, sizeof g_body, options);
  if (!page.ok()) return page.status();
  g_body.mass = 80.0;        // a plain store: the barrier does not see it ...
  mmsb::MarkEscaped(*page);  // ... but an escaped page is diffed in full at every commit
  if (auto e = mmsb::commit(); !e.ok()) return e.status();
  mmsb::Page* found = mmsb::PageOf(&g_body.hits[1]);  // the page holding an address
  if (found != mmsb::FindPageByName("g_body")) return mmsb::Internal("PageOf disagrees");
  return mmsb::Status::Ok();
}

mmsb::Status FreeEverything() {
  for (const mmsb::PageInfo& info : mmsb::ListPages()) {
    mmsb::Expected<mmsb::Page*> page = mmsb::GetPage(info.id);
    if (!page.ok()) return page.status();         // NotFound: freed meanwhile
    MMSB_RETURN_IF_ERROR(mmsb::FreePage(*page));  // a static page is unregistered, not freed
  }
  return mmsb::PageCount() == 0 ? mmsb::Status::Ok() : mmsb::Internal("pages left");
}

TEST_F(DocsApi, PagesHeapStaticAndFree) {
  ASSERT_TRUE(RegisterBodyType().ok());
  ::testing::internal::CaptureStdout();
  ASSERT_OK(TrackHeapBody());
  const std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(out, "page 1 'player' (Body, 40 bytes) changed in epoch 1\n");
  mmsb::Page* player = mmsb::FindPageByName("player");
  ASSERT_NE(player, nullptr);
  EXPECT_EQ(mmsb::GetStats().delta_bytes, 3u) << "2.5f is 00 00 20 40: two bytes; hits[2]: one";
  EXPECT_TRUE(mmsb::rt::IsTracked(player->data()));
  EXPECT_FALSE(player->is_static());

  ASSERT_OK(TrackStaticBody());
  mmsb::Page* body = mmsb::PageOf(&g_body);
  ASSERT_NE(body, nullptr);
  EXPECT_TRUE(body->is_static());
  EXPECT_TRUE(body->escaped());
  EXPECT_EQ(body->epoch(), 2u) << "the plain store to g_body.mass was captured";
  EXPECT_EQ(mmsb::PageCount(), 2u);
  EXPECT_EQ(mmsb::PageOf(&tmp_), nullptr) << "untracked memory";
  EXPECT_FALSE(mmsb::rt::IsTracked(&tmp_));

  const mmsb::PageId id = player->id();
  ASSERT_OK(FreeEverything());
  EXPECT_EQ(mmsb::FindPage(id), nullptr);
  EXPECT_EQ(mmsb::GetPage(id).status().code(), mmsb::StatusCode::kNotFound);
  EXPECT_FALSE(mmsb::FreePage(id).ok());
  EXPECT_EQ(mmsb::CreatePage(0).status().code(), mmsb::StatusCode::kInvalidArgument);
  mmsb::PageOptions gpu;
  gpu.location = mmsb::Location::kGpu;
  EXPECT_EQ(mmsb::CreatePage(64, gpu).status().code(), mmsb::StatusCode::kUnsupported)
      << "no device attached";
}

void Bump(std::uint32_t* counters, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) ++*mmsb::rt::w(&counters[i]);  // element by element
}

void Fill(std::uint8_t* bytes, std::size_t n, std::uint8_t value) {
  std::memset(mmsb::rt::w(bytes, n), value, n);  // one mark for the range, then the store
}

void CopyIn(void* dst, const void* src, std::size_t n) {
  mmsb::rt::MarkRange(dst, n);
  std::memcpy(dst, src, n);
}

TEST_F(DocsApi, BarrierFormsProduceExactDeltas) {
  mmsb::Page* page = *mmsb::CreatePage(4096);
  std::vector<std::uint32_t> untracked(8);
  Bump(untracked.data(), untracked.size());  // harmless outside pages
  EXPECT_EQ(untracked[7], 1u);
  Bump(reinterpret_cast<std::uint32_t*>(page->data()), 8);
  Fill(page->data() + 1000, 100, 0xab);
  const char text[] = "hello";
  CopyIn(page->data() + 3000, text, 5);
  ASSERT_TRUE(mmsb::commit().ok());
  EXPECT_EQ(mmsb::GetStats().delta_bytes, 8u + 100u + 5u);
  Fill(page->data() + 1000, 100, 0xab);  // the same bytes again: no delta
  ASSERT_TRUE(mmsb::commit().ok());
  EXPECT_EQ(mmsb::GetStats().deltas, 1u);
}

// ---- mmsb/delta.h
// --------------------------------------------------------------------------------

void PrintChange(const mmsb::Delta& d) {
  std::printf("page %llu since epoch %llu: %u byte(s), %s\n",
              static_cast<unsigned long long>(d.page()),
              static_cast<unsigned long long>(d.base_epoch()), d.changed_bytes(),
              d.form() == mmsb::Delta::Form::kSparse ? "sparse" : "dense");
  d.ForEachRun([](std::uint32_t offset, std::uint32_t length, const std::uint8_t* bytes) {
    std::printf("  [%u, +%u) first new byte 0x%02x\n", offset, length, bytes[0]);
  });
}

mmsb::Status DiffAndApply() {
  std::vector<std::uint8_t> before(256, 0);
  std::vector<std::uint8_t> now = before;
  now[10] = 1;
  now[11] = 2;
  now[200] = 9;
  now[201] = 0;  // unchanged: never part of a delta
  const mmsb::Delta d = mmsb::Diff(/*page=*/7, /*base_epoch=*/0, before, now);
  PrintChange(d);
  std::vector<std::uint8_t> replica = before;
  MMSB_RETURN_IF_ERROR(d.ApplyTo(replica));
  return replica == now ? mmsb::Status::Ok() : mmsb::Internal("apply went wrong");
}

mmsb::Expected<mmsb::Delta> TwoRuns() {
  // Runs sorted, non-overlapping, non-adjacent; bytes concatenated in run order.
  mmsb::Expected<mmsb::Delta> d = mmsb::Delta::FromRuns(
      /*page=*/3, /*base_epoch=*/0, /*page_size=*/128, {{4, 2}, {64, 1}}, {0xaa, 0xbb, 0xcc});
  if (!d.ok()) return d.status();
  // The builder takes changed bytes in increasing offset order and picks the smaller form.
  std::uint8_t now[128] = {};
  now[4] = 0xaa;
  now[5] = 0xbb;
  now[64] = 0xcc;
  mmsb::DeltaBuilder builder(/*page=*/3, /*base_epoch=*/0, /*page_size=*/128);
  builder.AddRun(4, &now[4], 2);
  builder.AddMask64(64, /*mask=*/0b1, &now[64]);  // bit i selects byte 64 + i
  const mmsb::Delta built = builder.Finish();
  if (!(built == *d)) return mmsb::Internal("builder and FromRuns disagree");
  d->ConvertTo(mmsb::Delta::Form::kDense);  // same change, one mask bit per page byte
  return d;
}

mmsb::Status UndoTwoCommits() {
  const std::vector<std::uint8_t> v0(64, 0);
  std::vector<std::uint8_t> v1 = v0, v2;
  v1[0] = 1;
  v2 = v1;
  v2[1] = 2;
  const mmsb::Delta d1 = mmsb::Diff(/*page=*/1, /*base_epoch=*/0, v0, v1);
  const mmsb::Delta d2 = mmsb::Diff(/*page=*/1, /*base_epoch=*/1, v1, v2);
  mmsb::Expected<mmsb::Delta> both = mmsb::Compose(d2, d1);  // d2 after d1: v0 -> v2
  if (!both.ok()) return both.status();
  mmsb::Expected<mmsb::Delta> undo = mmsb::Invert(*both, v0);  // v2 -> v0
  if (!undo.ok()) return undo.status();
  std::vector<std::uint8_t> page = v2;
  MMSB_RETURN_IF_ERROR(undo->ApplyTo(page));
  return page == v0 ? mmsb::Status::Ok() : mmsb::Internal("undo went wrong");
}

mmsb::Status ShipDelta(const mmsb::Delta& d) {
  std::vector<std::uint8_t> wire = mmsb::EncodeDelta(d);  // versioned, XXH3-checksummed
  mmsb::PageImage image{d.page(), /*epoch=*/5, mmsb::Location::kCpu,
                        std::vector<std::uint8_t>(d.page_size())};
  const std::vector<std::uint8_t> image_wire = mmsb::EncodePageImage(image);
  wire.insert(wire.end(), image_wire.begin(), image_wire.end());
  // The receiver treats the bytes as untrusted: a damaged record is an error, never a crash.
  std::size_t used = 0;
  mmsb::Expected<mmsb::Delta> back = mmsb::DecodeDelta(wire, &used, /*max_page_size=*/1 << 20);
  if (!back.ok()) return back.status().WithContext("delta");
  mmsb::Expected<mmsb::PageImage> img = mmsb::DecodePageImage(std::span(wire).subspan(used));
  if (!img.ok()) return img.status().WithContext("page image");
  MMSB_RETURN_IF_ERROR(back->ApplyTo(img->bytes));
  return *back == d ? mmsb::Status::Ok() : mmsb::Internal("round trip changed the delta");
}

std::size_t CountTouchedChanges(std::span<const std::uint8_t> twin,
                                std::span<const std::uint8_t> page) {
  // One shadow byte per 64-byte granule, as the barrier keeps them: only granule 1 was written.
  std::vector<std::uint8_t> touched(mmsb::GranuleCount(page.size()), 0);
  touched[1] = 1;
  const mmsb::Delta tracked = mmsb::DiffGranules(/*page=*/1, /*base_epoch=*/0, twin, page, touched);
  // The SIMD kernel underneath, and the scalar reference it is tested against.
  std::vector<std::uint64_t> masks(touched.size());
  const std::size_t differing = mmsb::DiffMask(twin, page, masks);
  const mmsb::Delta reference = mmsb::DiffScalar(/*page=*/1, /*base_epoch=*/0, twin, page);
  std::printf("%s: %u tracked, %zu differing, %u by the scalar diff\n", mmsb::DiffTargetName(),
              tracked.changed_bytes(), differing, reference.changed_bytes());
  return tracked.changed_bytes();
}

TEST(DocsApiDelta, DiffApplyComposeInvertEncode) {
  ::testing::internal::CaptureStdout();
  ASSERT_OK(DiffAndApply());
  EXPECT_EQ(::testing::internal::GetCapturedStdout(),
            "page 7 since epoch 0: 3 byte(s), sparse\n  [10, +2) first new byte 0x01\n  [200, +1) "
            "first new byte 0x09\n");

  mmsb::Expected<mmsb::Delta> d = TwoRuns();
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->form(), mmsb::Delta::Form::kDense);
  EXPECT_TRUE(d->sparse_runs().empty()) << "a dense delta stores a mask";
  EXPECT_EQ(d->Runs(), (std::vector<mmsb::ByteRun>{{4, 2}, {64, 1}}));
  const std::vector<std::uint8_t> mask = d->Mask();
  ASSERT_EQ(mask.size(), 16u);
  EXPECT_EQ(mask[0], 0b00110000);
  EXPECT_EQ(mask[8], 0b00000001);
  EXPECT_EQ(d->EncodedSize(), mmsb::EncodeDelta(*d).size());
  std::vector<std::uint8_t> appended = {0xff};
  mmsb::EncodeDeltaTo(*d, appended);
  EXPECT_EQ(appended.size(), 1 + d->EncodedSize());
  d->set_page(4);
  d->set_base_epoch(9);
  EXPECT_EQ(d->page(), 4u);
  EXPECT_EQ(d->base_epoch(), 9u);
  EXPECT_EQ(d->page_size(), 128u);
  EXPECT_FALSE(d->empty());
  EXPECT_EQ(mmsb::Delta::FromRuns(3, 0, 128, {{4, 2}, {5, 1}}, {1, 2, 3}).status().code(),
            mmsb::StatusCode::kInvalidDelta)
      << "overlapping runs";

  ASSERT_OK(UndoTwoCommits());
  ASSERT_OK(ShipDelta(*d));
  std::vector<std::uint8_t> wire = mmsb::EncodeDelta(*d);
  wire[wire.size() / 2] ^= 0x40;
  EXPECT_FALSE(mmsb::DecodeDelta(wire).ok()) << "a flipped bit fails the checksum";

  std::vector<std::uint8_t> twin(256, 0), page(256, 0);
  page[70] = 1;   // granule 1, touched
  page[200] = 1;  // granule 3: a write the barrier did not mark is not seen by DiffGranules
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(CountTouchedChanges(twin, page), 1u);
  EXPECT_NE(::testing::internal::GetCapturedStdout().find(
                ": 1 tracked, 2 differing, 2 by the scalar diff"),
            std::string::npos);
}

// ---- mmsb/commit.h
// -------------------------------------------------------------------------------

// Observes every commit: counts created pages and changed bytes.
class ChangeCounter : public mmsb::CommitSink {
 public:
  const char* name() const override { return "change-counter"; }
  mmsb::Status OnCommit(const mmsb::CommitBatch& batch) override {
    // Everything the batch points at is valid only during this call: copy what you keep.
    for (const mmsb::PageCreatedRecord& created : batch.created) created_bytes += created.size;
    for (const mmsb::Delta& d : batch.deltas) changed_bytes += d.changed_bytes();
    freed += batch.freed.size();
    live_pages = batch.live_pages.size();
    last_epoch = batch.epoch;
    return mmsb::Status::Ok();
  }
  mmsb::Status AfterCommit(mmsb::Epoch epoch) override {  // outside the commit lock
    after_commit_epoch = epoch;
    return mmsb::Status::Ok();
  }
  std::uint64_t created_bytes = 0, changed_bytes = 0, freed = 0, live_pages = 0;
  mmsb::Epoch last_epoch = 0, after_commit_epoch = 0;
};

// Runs inside every commit before the sinks: keeps `sum` (8 bytes) equal to the byte sum of
// `data`. Its writes are diffed into the same epoch.
class ByteSumStage : public mmsb::CommitStage {
 public:
  ByteSumStage(const mmsb::Page* data, mmsb::Page* sum) : data_(data), sum_(sum) {}
  const char* name() const override { return "byte-sum"; }
  mmsb::Status Process(const mmsb::CommitBatch& batch) override {
    for (const mmsb::Delta& d : batch.deltas) {
      if (d.page() != data_->id()) continue;
      std::uint64_t total = 0;
      for (std::size_t i = 0; i < data_->size(); ++i) total += data_->data()[i];
      std::memcpy(mmsb::rt::w(sum_->data(), sizeof total), &total, sizeof total);
    }
    return mmsb::Status::Ok();
  }

 private:
  const mmsb::Page* data_;
  mmsb::Page* sum_;
};

mmsb::Status WatchCommits(std::shared_ptr<ChangeCounter> counter, mmsb::Page* data,
                          mmsb::Page* sum) {
  MMSB_RETURN_IF_ERROR(mmsb::AddStage(std::make_shared<ByteSumStage>(data, sum)));
  MMSB_RETURN_IF_ERROR(mmsb::AddSink(counter));  // the bus keeps a reference
  std::memset(mmsb::rt::w(data->data(), 10), 3, 10);
  if (auto e = mmsb::commit(); !e.ok()) return e.status();
  return mmsb::RemoveSink(counter.get());  // no further calls
}

TEST_F(DocsApi, SinksSeeEveryCommitAndStagesWriteIntoIt) {
  mmsb::Page* data = *mmsb::CreatePage(100);
  mmsb::Page* sum = *mmsb::CreatePage(8);
  auto counter = std::make_shared<ChangeCounter>();
  ASSERT_OK(WatchCommits(counter, data, sum));
  std::uint64_t total = 0;
  std::memcpy(&total, sum->data(), 8);
  EXPECT_EQ(total, 30u);
  EXPECT_EQ(sum->epoch(), 1u) << "the stage's write belongs to the same epoch";
  EXPECT_EQ(counter->created_bytes, 108u);
  EXPECT_EQ(counter->changed_bytes, 10u + 1u);
  EXPECT_EQ(counter->live_pages, 2u);
  EXPECT_EQ(counter->last_epoch, 1u);
  EXPECT_EQ(counter->after_commit_epoch, 1u);
  ASSERT_OK(mmsb::FreePage(data));
  ASSERT_TRUE(mmsb::commit().ok());
  EXPECT_EQ(counter->freed, 0u) << "removed sinks see nothing";
  EXPECT_EQ(mmsb::RemoveSink(counter.get()).code(), mmsb::StatusCode::kNotFound);
}

mmsb::Status StartVerifying(std::vector<mmsb::VerifyMiss>* misses) {
  mmsb::Options options;
  options.verify = true;  // or MMSB_VERIFY=1 in the environment
  options.on_verify_miss = [misses](const mmsb::VerifyMiss& miss) { misses->push_back(miss); };
  return mmsb::start(options);
}

TEST(DocsApiVerify, AStoreThatBypassesTheBarrierIsReportedWithItsField) {
  std::vector<mmsb::VerifyMiss> misses;
  ASSERT_OK(StartVerifying(&misses));
  ASSERT_TRUE(RegisterBodyType().ok());
  mmsb::PageOptions options;
  options.type = mmsb::FindType("Body");
  mmsb::Page* page = *mmsb::CreatePage(sizeof(Body), options);
  ASSERT_TRUE(mmsb::commit().ok());
  reinterpret_cast<Body*>(page->data())->hits[1] = 5;  // no barrier
  ASSERT_TRUE(mmsb::commit().ok());
  ASSERT_EQ(misses.size(), 1u);
  EXPECT_EQ(misses[0].field, "Body.hits[1]");
  EXPECT_EQ(misses[0].offset, offsetof(Body, hits) + 4);
  EXPECT_EQ(misses[0].length, 1u);
  EXPECT_EQ(mmsb::GetStats().verify_misses, 1u);
  EXPECT_EQ(page->epoch(), 2u) << "the committed delta is the full one";
  mmsb::stop();
}

// ---- mmsb/graph.h
// --------------------------------------------------------------------------------

// celsius: 4 floats. fahrenheit = f(celsius) (user edge); backup mirrors celsius (passthrough);
// first holds celsius[0] (projection of bytes [0, 4)).
mmsb::Status BuildTemperatureGraph(const mmsb::Page& celsius, const mmsb::Page& fahrenheit,
                                   const mmsb::Page& backup, const mmsb::Page& first) {
  const mmsb::PageId parents[] = {celsius.id()};
  MMSB_RETURN_IF_ERROR(mmsb::AddUserEdges(
      parents, fahrenheit.id(), [](std::span<const mmsb::Page* const> in, mmsb::Page& out) {
        const auto* c = reinterpret_cast<const float*>(in[0]->data());
        auto* f = reinterpret_cast<float*>(out.data());
        for (int i = 0; i < 4; ++i) f[i] = c[i] * 9 / 5 + 32;  // the child is diffed in full
        return mmsb::Status::Ok();
      }));
  MMSB_RETURN_IF_ERROR(mmsb::AddPassthroughEdge(celsius.id(), backup.id()));
  MMSB_RETURN_IF_ERROR(mmsb::AddProjectionEdge(celsius.id(), first.id(),
                                               {/*src_offset=*/0, /*length=*/4, /*dst_offset=*/0}));
  for (const mmsb::EdgeInfo& e : mmsb::ListEdges()) {
    std::printf("%llu -> %llu (kind %d), child height %d\n",
                static_cast<unsigned long long>(e.parent), static_cast<unsigned long long>(e.child),
                static_cast<int>(e.kind), mmsb::NodeHeight(e.child));
  }
  return mmsb::Status::Ok();
}

TEST_F(DocsApi, DerivedPagesAreRecomputedInsideTheCommit) {
  mmsb::Page* celsius = *mmsb::CreatePage(16);
  mmsb::Page* fahrenheit = *mmsb::CreatePage(16);
  mmsb::Page* backup = *mmsb::CreatePage(16);
  mmsb::Page* first = *mmsb::CreatePage(4);
  ::testing::internal::CaptureStdout();
  ASSERT_OK(BuildTemperatureGraph(*celsius, *fahrenheit, *backup, *first));
  EXPECT_EQ(::testing::internal::GetCapturedStdout(),
            "1 -> 2 (kind 2), child height 1\n1 -> 3 (kind 0), child height 1\n1 -> 4 (kind 1), "
            "child height 1\n");
  *mmsb::rt::w(reinterpret_cast<float*>(celsius->data()) + 0) = 100.0f;
  const mmsb::Epoch e = *mmsb::commit();
  EXPECT_EQ(reinterpret_cast<const float*>(fahrenheit->data())[0], 212.0f);
  EXPECT_EQ(reinterpret_cast<const float*>(fahrenheit->data())[1], 32.0f);
  EXPECT_EQ(std::memcmp(backup->data(), celsius->data(), 16), 0);
  EXPECT_EQ(reinterpret_cast<const float*>(first->data())[0], 100.0f);
  EXPECT_EQ(fahrenheit->epoch(), e);
  EXPECT_EQ(mmsb::GetStats().nodes_recomputed, 3u);
  EXPECT_EQ(mmsb::NodeHeight(celsius->id()), 0);
  EXPECT_EQ(mmsb::AddPassthroughEdge(backup->id(), celsius->id()).code(),
            mmsb::StatusCode::kGraphCycle);
  EXPECT_EQ(mmsb::AddPassthroughEdge(celsius->id(), backup->id()).code(),
            mmsb::StatusCode::kAlreadyExists);
  EXPECT_EQ(mmsb::AddPassthroughEdge(celsius->id(), first->id()).code(),
            mmsb::StatusCode::kInvalidArgument)
      << "sizes differ";
  ASSERT_OK(mmsb::RemoveEdge(celsius->id(), backup->id()));
  EXPECT_EQ(mmsb::RemoveEdge(celsius->id(), backup->id()).code(), mmsb::StatusCode::kNotFound);
  EXPECT_EQ(mmsb::ListEdges().size(), 2u);

  // A failing recompute rolls the whole commit back.
  const mmsb::PageId parents[] = {first->id()};
  ASSERT_OK(mmsb::AddUserEdges(parents, backup->id(),
                               [](std::span<const mmsb::Page* const>, mmsb::Page&) {
                                 return mmsb::Internal("sensor offline");
                               }));
  *mmsb::rt::w(reinterpret_cast<float*>(celsius->data()) + 0) = 20.0f;
  mmsb::Expected<mmsb::Epoch> failed = mmsb::commit();
  EXPECT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("sensor offline"), std::string::npos);
  EXPECT_EQ(mmsb::current_epoch(), e);
  EXPECT_EQ(reinterpret_cast<const float*>(celsius->data())[0], 20.0f)
      << "a failed commit never writes over the program's memory: the write stays pending";
  EXPECT_EQ(mmsb::GetStats().failed_commits, 1u);
}

// ---- mmsb/events.h
// -------------------------------------------------------------------------------

struct EventCounts {
  std::map<std::string, int> by_type;
  int batches = 0;
};

mmsb::Expected<std::vector<mmsb::SubscriptionId>> CountEvents(EventCounts* counts) {
  // One call per commit, with that commit's events of the selected types.
  mmsb::Expected<mmsb::SubscriptionId> batches = mmsb::Subscribe(
      [counts](std::span<const mmsb::Event>) { ++counts->batches; },
      mmsb::EventBit(mmsb::EventType::kPageChanged) | mmsb::EventBit(mmsb::EventType::kCommitDone));
  if (!batches.ok()) return batches.status();
  // One call per event, every type.
  mmsb::Expected<mmsb::SubscriptionId> each = mmsb::SubscribeEach(
      [counts](const mmsb::Event& e) { ++counts->by_type[mmsb::EventTypeName(e.type)]; });
  if (!each.ok()) return each.status();
  return std::vector<mmsb::SubscriptionId>{*batches, *each};
}

TEST_F(DocsApi, SubscribersGetOneBatchPerCommit) {
  EventCounts counts;
  auto ids = CountEvents(&counts);
  ASSERT_TRUE(ids.ok());
  mmsb::Page* a = *mmsb::CreatePage(64);
  mmsb::Page* b = *mmsb::CreatePage(64);
  ASSERT_OK(mmsb::AddPassthroughEdge(a->id(), b->id()));
  ASSERT_TRUE(mmsb::commit().ok());  // two PageCreated
  *mmsb::rt::w(&a->data()[0]) = 1;
  ASSERT_TRUE(mmsb::commit().ok());  // a changes, b is recomputed
  ASSERT_TRUE(mmsb::commit().ok());  // nothing changed
  EXPECT_EQ(counts.batches, 3);
  EXPECT_EQ(counts.by_type["PageCreated"], 2);
  EXPECT_EQ(counts.by_type["DeltaApplied"], 2);
  EXPECT_EQ(counts.by_type["PageChanged"], 2);
  EXPECT_EQ(counts.by_type["PropagationDone"], 1);
  EXPECT_EQ(counts.by_type["CommitDone"], 3);
  for (mmsb::SubscriptionId id : *ids) ASSERT_OK(mmsb::Unsubscribe(id));
  EXPECT_EQ(mmsb::Unsubscribe((*ids)[0]).code(), mmsb::StatusCode::kNotFound);
  ASSERT_TRUE(mmsb::commit().ok());
  EXPECT_EQ(counts.batches, 3);

  // The encoding the log records.
  const mmsb::Event events[] = {
      {mmsb::EventType::kCommitDone, 4, mmsb::kInvalidPageId, 10, 2, 0, mmsb::Location::kCpu}};
  const std::vector<std::uint8_t> wire = mmsb::EncodeEvents(events);
  mmsb::Expected<std::vector<mmsb::Event>> back = mmsb::DecodeEvents(wire);
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0], events[0]);
  EXPECT_EQ(mmsb::kEventTypeCount, 7);
  EXPECT_EQ(mmsb::kAllEvents & mmsb::EventBit(mmsb::EventType::kCheckpoint),
            mmsb::EventBit(mmsb::EventType::kCheckpoint));
}

// ---- mmsb/stats.h
// --------------------------------------------------------------------------------

std::string CommitLatencyLine() {
  const mmsb::Stats stats = mmsb::GetStats();  // a consistent snapshot
  const mmsb::LatencyHistogram& h = stats.commit_latency;
  char line[160];
  std::snprintf(line, sizeof line, "%llu commits, p50 <= %llu ns, p99 <= %llu ns, max %llu ns",
                static_cast<unsigned long long>(h.count()),
                static_cast<unsigned long long>(h.PercentileNs(50)),
                static_cast<unsigned long long>(h.PercentileNs(99)),
                static_cast<unsigned long long>(h.max_ns()));
  return line;
}

TEST_F(DocsApi, StatsSnapshotPrintsAndSerialises) {
  mmsb::Page* p = *mmsb::CreatePage(64);
  for (int i = 0; i < 3; ++i) {
    *mmsb::rt::w(&p->data()[i]) = 1;
    ASSERT_TRUE(mmsb::commit().ok());
  }
  EXPECT_EQ(CommitLatencyLine().rfind("3 commits, p50 <= ", 0), 0u);
  const mmsb::Stats s = mmsb::GetStats();
  EXPECT_EQ(s.commits, 3u);
  EXPECT_EQ(s.deltas, 3u);
  const std::string json = s.ToJson();
  for (const char* key :
       {"\"epoch\":3", "\"commits\":3", "\"deltas\":3", "\"commit_latency_ns\":{\"count\":3"}) {
    EXPECT_NE(json.find(key), std::string::npos) << key << " in " << json;
  }
  EXPECT_FALSE(s.ToString().empty());
  mmsb::LatencyHistogram h;
  h.Record(100);
  h.Record(3000);
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.sum_ns(), 3100u);
  EXPECT_EQ(h.min_ns(), 100u);
  EXPECT_EQ(h.mean_ns(), 1550.0);
  EXPECT_EQ(h.buckets()[6], 1u) << "100 is in [64, 128)";
  EXPECT_GE(h.PercentileNs(100), 3000u);
}

// ---- mmsb/env.h
// ----------------------------------------------------------------------------------

std::span<const std::uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Replaces `dir`/notes atomically and durably, then reads it back.
mmsb::Expected<std::string> ReplaceNotes(mmsb::Env* env, const std::string& dir,
                                         std::string_view text) {
  MMSB_RETURN_IF_ERROR(env->CreateDir(dir));
  const std::string tmp = mmsb::JoinPath(dir, "notes.tmp");
  const std::string path = mmsb::JoinPath(dir, "notes");
  {
    mmsb::Expected<std::unique_ptr<mmsb::WritableFile>> out = env->NewWritableFile(tmp);
    if (!out.ok()) return out.status();
    MMSB_RETURN_IF_ERROR((*out)->Append(Bytes(text)));
    MMSB_RETURN_IF_ERROR((*out)->Sync());  // the bytes and the size are durable
    MMSB_RETURN_IF_ERROR((*out)->Close());
  }
  MMSB_RETURN_IF_ERROR(env->RenameFile(tmp, path));
  MMSB_RETURN_IF_ERROR(env->SyncDir(dir));  // the rename is durable
  mmsb::Expected<std::unique_ptr<mmsb::RandomAccessFile>> in = env->NewRandomAccessFile(path);
  if (!in.ok()) return in.status();
  std::string back((*in)->Size(), '\0');
  std::size_t got = 0;
  MMSB_RETURN_IF_ERROR(
      (*in)->Read(0, back.size(), reinterpret_cast<std::uint8_t*>(back.data()), &got));
  back.resize(got);
  return back;
}

// One writer per directory, across processes.
mmsb::Status WithDirectoryLock(mmsb::Env* env, const std::string& dir) {
  mmsb::Expected<std::unique_ptr<mmsb::FileLock>> lock = env->LockFile(mmsb::JoinPath(dir, "LOCK"));
  if (!lock.ok()) return lock.status();  // FailedPrecondition naming the holder
  // ... the directory is ours until `lock` is destroyed ...
  return mmsb::Status::Ok();
}

TEST(DocsApiEnv, PosixEnvWritesRenamesReadsAndLocks) {
  TempDir tmp;
  mmsb::Env* env = mmsb::Env::Default();
  const std::string dir = tmp.Sub("state");
  mmsb::Expected<std::string> back = ReplaceNotes(env, dir, "epoch 42 was fine\n");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, "epoch 42 was fine\n");
  EXPECT_TRUE(env->FileExists(mmsb::JoinPath(dir, "notes")));
  EXPECT_FALSE(env->FileExists(mmsb::JoinPath(dir, "notes.tmp")));
  EXPECT_TRUE(env->IsDirectory(dir));
  EXPECT_EQ(*env->GetFileSize(mmsb::JoinPath(dir, "notes")), 18u);
  EXPECT_EQ(*env->GetChildren(dir), std::vector<std::string>{"notes"});
  ASSERT_OK(env->TruncateFile(mmsb::JoinPath(dir, "notes"), 5));
  EXPECT_EQ(*env->GetFileSize(mmsb::JoinPath(dir, "notes")), 5u);
  auto mapped = env->NewMappedFile(mmsb::JoinPath(dir, "notes"));
  ASSERT_TRUE(mapped.ok());
  EXPECT_EQ((*mapped)->Size(), 5u);
  ASSERT_OK(WithDirectoryLock(env, dir));
  {
    auto held = env->LockFile(mmsb::JoinPath(dir, "LOCK"));
    ASSERT_TRUE(held.ok());
    EXPECT_EQ(WithDirectoryLock(env, dir).code(), mmsb::StatusCode::kFailedPrecondition);
  }
  ASSERT_OK(WithDirectoryLock(env, dir));
  ASSERT_OK(env->RemoveFile(mmsb::JoinPath(dir, "notes")));
  EXPECT_EQ(env->NewRandomAccessFile(mmsb::JoinPath(dir, "notes")).status().code(),
            mmsb::StatusCode::kNotFound);
  EXPECT_GT(env->NowUnixNanos(), 0u);
  EXPECT_EQ(mmsb::JoinPath("a/", "b"), "a/b");
}

// ---- mmsb/log.h
// ----------------------------------------------------------------------------------

// A log written without the bus: page 1 is created in epoch 1 and changed in epoch 2.
mmsb::Status WriteTwoEpochs(const std::string& dir) {
  mmsb::LogOptions options;
  options.durability = mmsb::Durability::kSync;  // an fsync per commit
  mmsb::Expected<std::unique_ptr<mmsb::LogWriter>> writer = mmsb::LogWriter::Open(dir, options);
  if (!writer.ok()) return writer.status();
  mmsb::LogBatch batch = (*writer)->NewBatch();
  batch.AddPageCreate(
      {/*id=*/1, /*size=*/64, mmsb::Location::kCpu, /*is_static=*/false, "counters", ""});
  if (auto e = (*writer)->Commit(batch); !e.ok()) return e.status();  // epoch 1
  batch.Clear();
  std::vector<std::uint8_t> before(64, 0), after(64, 0);
  after[3] = 1;
  // A page created in epoch 1 starts at epoch 0: its first delta's base epoch.
  MMSB_RETURN_IF_ERROR(batch.AddDelta(mmsb::Diff(/*page=*/1, /*base_epoch=*/0, before, after)));
  // Commit's two halves: order the group now, wait for the disk later (outside your own locks).
  mmsb::Expected<mmsb::CommitTicket> ticket = (*writer)->Append(batch);  // epoch 2
  if (!ticket.ok()) return ticket.status();
  MMSB_RETURN_IF_ERROR((*writer)->WaitDurable(*ticket));
  return (*writer)->Close();
}

// Lists a log's records; damage is reported and skipped.
mmsb::Status ListRecords(const std::string& path) {
  mmsb::LogReaderOptions options;
  options.mode = mmsb::RecoveryMode::kSalvage;
  mmsb::Expected<std::unique_ptr<mmsb::LogReader>> reader = mmsb::LogReader::Open(path, options);
  if (!reader.ok()) return reader.status();
  mmsb::LogEntry entry;
  for (;;) {
    mmsb::Expected<bool> more = (*reader)->Next(&entry);
    if (!more.ok()) return more.status();
    if (!*more) break;
    const std::string file = std::filesystem::path((*reader)->files()[entry.file_index]).filename();
    std::printf("%s:%llu epoch %llu %s", file.c_str(),
                static_cast<unsigned long long>(entry.offset),
                static_cast<unsigned long long>(entry.epoch), mmsb::LogRecordTypeName(entry.type));
    if (entry.type == mmsb::LogRecordType::kDelta)
      std::printf(" page %llu, %u byte(s)", static_cast<unsigned long long>(entry.delta.page()),
                  entry.delta.changed_bytes());
    std::printf("\n");
  }
  for (const mmsb::LogProblem& p : (*reader)->problems()) {
    std::printf("%s: %s\n", p.is_error() ? "error" : "note", mmsb::LogProblemKindName(p.kind));
  }
  return mmsb::Status::Ok();
}

TEST(DocsApiLog, WriterAndReaderWithoutTheBus) {
  TempDir tmp;
  const std::string dir = tmp.Sub("run.tlog");
  ASSERT_OK(WriteTwoEpochs(dir));
  ::testing::internal::CaptureStdout();
  ASSERT_OK(ListRecords(dir));
  std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("epoch 1 page-create\n"), std::string::npos) << out;
  EXPECT_NE(out.find("epoch 2 delta page 1, 1 byte(s)\n"), std::string::npos) << out;
  EXPECT_NE(out.find("epoch 2 commit\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("error"), std::string::npos) << out;
  mmsb::Expected<mmsb::LogState> state = mmsb::Replay(dir);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(state->epoch, 2u);
  EXPECT_EQ(state->FindPageByName("counters")->bytes[3], 1);

  // A crash in the middle of a write leaves a torn tail: readers cut it, the next writer too.
  const std::string segment = dir + "/00000001.seg";
  {
    std::ofstream(segment, std::ios::app | std::ios::binary) << "\x20\x00\x00";
  }
  ::testing::internal::CaptureStdout();
  ASSERT_OK(ListRecords(dir));
  out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("note: torn tail"), std::string::npos) << out;
  auto writer = mmsb::LogWriter::Open(dir);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ASSERT_EQ((*writer)->recovery_problems().size(), 1u);
  EXPECT_EQ((*writer)->recovery_problems()[0].kind, mmsb::LogProblem::Kind::kTornTail);
  EXPECT_EQ((*writer)->last_epoch(), 2u);
  EXPECT_EQ((*writer)->page_id_high(), 1u);
  EXPECT_EQ(mmsb::LogWriter::Open(dir).status().code(), mmsb::StatusCode::kFailedPrecondition)
      << "one writer at a time";
  // Other record kinds, in one epoch, and an event outside any batch.
  mmsb::LogBatch batch = (*writer)->NewBatch();
  batch.AddTypeDescriptor({"Pair",
                           8,
                           4,
                           {{"a", 0, 4, mmsb::ScalarKind::kU32, 4, {}, ""},
                            {"b", 4, 4, mmsb::ScalarKind::kU32, 4, {}, ""}}});
  batch.AddPageCreate({2, 8, mmsb::Location::kCpu, false, "pair", "Pair"});
  batch.AddEdgeChange({mmsb::EdgeOp::kAdd,
                       {1, 2, mmsb::EdgeKind::kProjection, {0, 8, 0}, mmsb::DerivedPolicy::kLog}});
  batch.AddPageFree(2);
  batch.AddEvent(3, Bytes("app event"));
  EXPECT_EQ(batch.record_count(), 4u) << "events are not counted";
  EXPECT_EQ(batch.page_id_high(), 2u);
  auto e3 = (*writer)->Commit(batch);
  ASSERT_TRUE(e3.ok()) << e3.status().ToString();
  EXPECT_EQ(*e3, 3u);
  ASSERT_OK((*writer)->AppendEvent(3, Bytes("late event")));
  ASSERT_OK((*writer)->Flush());
  ASSERT_OK((*writer)->Sync());
  EXPECT_EQ((*writer)->counters().commits, 1u);
  EXPECT_EQ(std::string(mmsb::DurabilityName((*writer)->options().durability)), "group");
  ASSERT_OK((*writer)->Close());
  mmsb::ReplayOptions ro;
  ro.collect_events = true;
  mmsb::ReplayReport report;
  ASSERT_TRUE(mmsb::Replay(dir, ro, &report).ok());
  EXPECT_EQ(report.events.size(), 2u);
  EXPECT_EQ(report.epoch, 3u);
}

// The bus's log: every commit from here on is durable when commit() returns.
mmsb::Status LogARun(const std::string& dir) {
  mmsb::LogOptions options;
  options.durability = mmsb::Durability::kGroup;  // concurrent commits share one fsync
  mmsb::Expected<std::shared_ptr<mmsb::LogSink>> log = mmsb::AttachLog(dir, options);
  if (!log.ok()) return log.status();
  mmsb::Expected<mmsb::Page*> page = mmsb::CreatePage(64);
  if (!page.ok()) return page.status();
  for (std::uint8_t i = 1; i <= 3; ++i) {
    *mmsb::rt::w(&(*page)->data()[0]) = i;
    if (auto e = mmsb::commit(); !e.ok()) return e.status();
  }
  mmsb::Expected<mmsb::Epoch> checkpoint = (*log)->Checkpoint();  // commits, then snapshots
  if (!checkpoint.ok()) return checkpoint.status();
  std::printf(
      "bus epoch %llu = log epoch %llu, bus page %llu = log page %llu, checkpoint at %llu\n",
      static_cast<unsigned long long>(mmsb::current_epoch()),
      static_cast<unsigned long long>((*log)->LogEpoch(mmsb::current_epoch())),
      static_cast<unsigned long long>((*page)->id()),
      static_cast<unsigned long long>((*log)->LogPageId((*page)->id())),
      static_cast<unsigned long long>(*checkpoint));
  MMSB_RETURN_IF_ERROR(mmsb::RemoveSink(log->get()));  // stop logging, then close
  return (*log)->Close();
}

TEST_F(DocsApi, TheBusLogsEveryCommit) {
  const std::string dir = tmp_.Sub("run.tlog");
  ::testing::internal::CaptureStdout();
  ASSERT_OK(LogARun(dir));
  EXPECT_EQ(::testing::internal::GetCapturedStdout(),
            "bus epoch 4 = log epoch 4, bus page 1 = log page 1, checkpoint at 4\n");
  EXPECT_TRUE(std::filesystem::exists(dir + "/ckpt-00000000000000000004.ckpt"));
  // A second run continues the log: its epochs and page ids follow the first run's.
  mmsb::stop();
  ASSERT_OK(mmsb::start());
  auto log = mmsb::AttachLog(dir);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_TRUE((*log)->wants_events()) << "LogOptions::log_events is on by default";
  mmsb::Page* p = *mmsb::CreatePage(64);
  EXPECT_EQ((*log)->LogPageId(p->id()), 2u);
  ASSERT_OK((*log)->AppendEvent(1, Bytes("marker")));
  (*log)->RequestCheckpoint();  // the next commit writes one
  ASSERT_TRUE(mmsb::commit().ok());
  EXPECT_EQ((*log)->LogEpoch(1), 5u);
  EXPECT_TRUE(std::filesystem::exists(dir + "/ckpt-00000000000000000005.ckpt"));
  EXPECT_EQ((*log)->writer().last_epoch(), 5u);
  ASSERT_OK((*log)->Close());
  mmsb::Expected<mmsb::LogState> state = mmsb::Replay(dir);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->epoch, 5u);
  ASSERT_EQ(state->pages.size(), 1u) << "the first run's page is gone at the second run's start";
  EXPECT_EQ(state->pages.begin()->first, 2u);
}

// ---- mmsb/replay.h
// -------------------------------------------------------------------------------

// The state of one epoch, rebuilt from the newest checkpoint at or before it plus the log.
mmsb::Status PrintEpoch(const std::string& log, mmsb::Epoch epoch) {
  mmsb::ReplayOptions options;
  options.epoch = epoch;  // default: mmsb::kLatestEpoch
  mmsb::ReplayReport report;
  mmsb::Expected<mmsb::LogState> state = mmsb::Replay(log, options, &report);
  if (!state.ok()) return state.status();  // NotFound when the log ends before `epoch`
  std::printf(
      "epoch %llu: %zu page(s), %llu byte(s), %llu epoch(s) applied after checkpoint %llu\n",
      static_cast<unsigned long long>(state->epoch), state->pages.size(),
      static_cast<unsigned long long>(state->PageBytes()),
      static_cast<unsigned long long>(report.epochs_applied),
      static_cast<unsigned long long>(report.checkpoint_epoch));
  for (const auto& [id, page] : state->pages) {
    std::printf("  page %llu '%s' %s, last changed in epoch %llu\n",
                static_cast<unsigned long long>(id), page.name.c_str(), page.type_name.c_str(),
                static_cast<unsigned long long>(page.epoch));
  }
  return report.has_errors() ? mmsb::Corruption(report.problems[0].ToString()) : mmsb::Status::Ok();
}

// Steps through every epoch from the first, as a debugger would.
mmsb::Expected<std::vector<std::uint64_t>> HashEveryEpoch(const std::string& log) {
  mmsb::ReplayOptions options;
  options.use_checkpoints = false;  // start at the beginning
  mmsb::Expected<std::unique_ptr<mmsb::Replayer>> replayer = mmsb::Replayer::Open(log, options);
  if (!replayer.ok()) return replayer.status();
  std::vector<std::uint64_t> hashes;
  for (;;) {
    mmsb::Expected<bool> stepped = (*replayer)->Step();
    if (!stepped.ok()) return stepped.status();
    if (!*stepped) break;
    hashes.push_back((*replayer)->state().Hash());
  }
  return hashes;
}

// What changed between two epochs, by field name where the log has the type.
mmsb::Status PrintFieldChanges(const std::string& log, mmsb::Epoch from, mmsb::Epoch to) {
  mmsb::DiffOptions options;
  options.type_name = "Body";  // only pages of this type
  mmsb::Expected<mmsb::StateDiff> diff = mmsb::DiffEpochs(log, from, to, options);
  if (!diff.ok()) return diff.status();
  for (const mmsb::PageDiff& page : diff->pages) {
    std::printf("%s page %llu (%llu byte(s))\n", mmsb::PageDiffKindName(page.kind),
                static_cast<unsigned long long>(page.id),
                static_cast<unsigned long long>(page.changed_bytes));
    for (const mmsb::FieldChange& f : page.fields) {
      std::printf("  %s.%s: %s -> %s\n", page.type_name.c_str(), f.path.c_str(),
                  f.old_value.c_str(), f.new_value.c_str());
    }
  }
  return mmsb::Status::Ok();
}

TEST_F(DocsApi, ReplayStepAndDiffALoggedRun) {
  ASSERT_TRUE(RegisterBodyType().ok());
  const std::string dir = tmp_.Sub("run.tlog");
  auto log = mmsb::AttachLog(dir);
  ASSERT_TRUE(log.ok());
  mmsb::PageOptions po;
  po.type = mmsb::FindType("Body");
  po.name = "ball";
  mmsb::Page* page = *mmsb::CreatePage(sizeof(Body), po);
  auto* ball = reinterpret_cast<Body*>(page->data());
  *mmsb::rt::w(&ball->mass) = 1.5;
  ASSERT_TRUE(mmsb::commit().ok());  // 1
  *mmsb::rt::w(&ball->hits[3]) = 4;
  *mmsb::rt::w(&ball->pos.z) = -1.0f;
  ASSERT_TRUE(mmsb::commit().ok());        // 2
  ASSERT_TRUE((*log)->Checkpoint().ok());  // 3
  *mmsb::rt::w(&ball->mass) = 2.0;
  ASSERT_TRUE(mmsb::commit().ok());  // 4

  ::testing::internal::CaptureStdout();
  ASSERT_OK(PrintEpoch(dir, 4));
  EXPECT_EQ(::testing::internal::GetCapturedStdout(),
            "epoch 4: 1 page(s), 40 byte(s), 1 epoch(s) applied after checkpoint 3\n"
            "  page 1 'ball' Body, last changed in epoch 4\n");
  EXPECT_EQ(PrintEpoch(dir, 9).code(), mmsb::StatusCode::kNotFound);

  auto hashes = HashEveryEpoch(dir);
  ASSERT_TRUE(hashes.ok()) << hashes.status().ToString();
  ASSERT_EQ(hashes->size(), 4u);
  EXPECT_EQ(hashes->back(), mmsb::Replay(dir)->Hash()) << "stepping and replaying agree";
  EXPECT_NE((*hashes)[1], (*hashes)[2]) << "the hash covers the epoch number too";

  ::testing::internal::CaptureStdout();
  ASSERT_OK(PrintFieldChanges(dir, 1, 4));
  EXPECT_EQ(::testing::internal::GetCapturedStdout(),
            "changed page 1 (5 byte(s))\n  Body.pos.z: 0 -> -1\n  Body.hits[3]: 0 -> 4\n  "
            "Body.mass: 1.5 -> 2\n");

  // The same through the lower-level pieces, and as JSON.
  mmsb::ReplayOptions at;
  at.epoch = 1;
  const mmsb::LogState one = *mmsb::Replay(dir, at);
  const mmsb::LogState latest = *mmsb::Replay(dir);
  const mmsb::StateDiff diff = mmsb::DiffStates(one, latest);
  ASSERT_EQ(diff.pages.size(), 1u);
  EXPECT_EQ(diff.pages[0].fields.size(), 3u);
  EXPECT_NE(mmsb::StateDiffToJson(diff).find("\"mmsb.diff/1\""), std::string::npos);
  EXPECT_NE(mmsb::LogStateToJson(latest, nullptr, false).find("\"mmsb.state/1\""),
            std::string::npos);
  EXPECT_EQ(latest.FindType("Body")->size, sizeof(Body));
  EXPECT_EQ(latest.FindPage(1)->name, "ball");
  EXPECT_EQ(std::memcmp(latest.FindPage(1)->bytes.data(), page->data(), sizeof(Body)), 0)
      << "bit-identical to the live page";
}

// At start-up, after the static pages registered: bring them back from the last run's log.
mmsb::Status RestoreFrom(const std::string& log) {
  mmsb::Expected<mmsb::RestoreReport> report = mmsb::RestoreStaticPages(log);
  if (!report.ok()) return report.status();
  for (const std::string& name : report->restored) std::printf("restored %s\n", name.c_str());
  for (const std::string& name : report->not_in_log) std::printf("new: %s\n", name.c_str());
  for (const std::string& name : report->mismatched)
    std::printf("layout changed, kept: %s\n", name.c_str());
  return mmsb::Status::Ok();
}

TEST_F(DocsApi, StaticPagesComeBackByName) {
  ASSERT_TRUE(RegisterBodyType().ok());
  const std::string dir = tmp_.Sub("run.tlog");
  std::memset(&g_body, 0, sizeof g_body);
  mmsb::PageOptions po;
  po.type = mmsb::FindType("Body");
  po.name = "g_body";
  ASSERT_TRUE(mmsb::RegisterStaticPage(&g_body, sizeof g_body, po).ok());
  auto log = mmsb::AttachLog(dir);
  ASSERT_TRUE(log.ok());
  *mmsb::rt::w(&g_body.hits[0]) = 11;
  ASSERT_TRUE(mmsb::commit().ok());
  ASSERT_OK((*log)->Close());
  log->reset();
  mmsb::stop();

  // The next run. (Descriptors from the previous bus died with it: register them again.)
  ASSERT_OK(mmsb::start());
  std::memset(&g_body, 0, sizeof g_body);
  ASSERT_TRUE(RegisterBodyType().ok());
  po.type = mmsb::FindType("Body");
  ASSERT_TRUE(mmsb::RegisterStaticPage(&g_body, sizeof g_body, po).ok());
  alignas(64) static std::uint64_t fresh[8];
  mmsb::PageOptions fo;
  fo.name = "fresh";
  ASSERT_TRUE(mmsb::RegisterStaticPage(fresh, sizeof fresh, fo).ok());
  ::testing::internal::CaptureStdout();
  ASSERT_OK(RestoreFrom(dir));
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "restored g_body\nnew: fresh\n");
  EXPECT_EQ(g_body.hits[0], 11u);
  ASSERT_TRUE(mmsb::commit().ok());
  EXPECT_EQ(mmsb::PageOf(&g_body)->epoch(), 1u) << "the restored bytes are committed like a write";
  mmsb::RestoreOptions ro;
  ro.epoch = 7;
  EXPECT_EQ(mmsb::RestoreStaticPages(dir, ro).status().code(), mmsb::StatusCode::kNotFound);
}

// ---- mmsb/checkpoint.h
// ---------------------------------------------------------------------------

// Compacts a log into one self-contained checkpoint file, checked by reading it back.
mmsb::Status CompactTo(const std::string& log, const std::string& file) {
  mmsb::Expected<mmsb::LogState> state = mmsb::Replay(log);
  if (!state.ok()) return state.status();
  mmsb::Expected<std::uint64_t> size =
      mmsb::WriteCheckpointFile(file, mmsb::ContentsOf(*state, /*log_id=*/0));
  if (!size.ok()) return size.status();
  mmsb::Expected<mmsb::LogState> back = mmsb::LoadCheckpoint(file);  // all or nothing
  if (!back.ok()) return back.status();
  std::printf("%llu bytes, epoch %llu\n", static_cast<unsigned long long>(*size),
              static_cast<unsigned long long>(back->epoch));
  return back->Hash() == state->Hash() ? mmsb::Status::Ok() : mmsb::Internal("checkpoint differs");
}

// A checkpoint inside a log written with LogWriter: later replays start from it, and the
// segments it covers are retired.
mmsb::Expected<std::string> CheckpointLog(const std::string& log) {
  mmsb::Expected<mmsb::LogState> state = mmsb::Replay(log);
  if (!state.ok()) return state.status();
  mmsb::Expected<std::unique_ptr<mmsb::LogWriter>> writer = mmsb::LogWriter::Open(log);
  if (!writer.ok()) return writer.status();
  mmsb::Expected<std::string> path =
      mmsb::WriteLogCheckpoint(**writer, mmsb::ContentsOf(*state, (*writer)->log_id()));
  if (!path.ok()) return path.status();
  MMSB_RETURN_IF_ERROR((*writer)->Close());
  return path;
}

TEST(DocsApiCheckpoint, WriteLoadAndNoteCheckpoints) {
  TempDir tmp;
  const std::string dir = tmp.Sub("run.tlog");
  ASSERT_OK(WriteTwoEpochs(dir));
  ::testing::internal::CaptureStdout();
  ASSERT_OK(CompactTo(dir, tmp.Sub("snapshot.ckpt")));
  EXPECT_NE(::testing::internal::GetCapturedStdout().find(" bytes, epoch 2\n"), std::string::npos);
  auto path = CheckpointLog(dir);
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_EQ(std::filesystem::path(*path).filename(), "ckpt-00000000000000000002.ckpt");
  mmsb::ReplayReport report;
  ASSERT_TRUE(mmsb::Replay(dir, {}, &report).ok());
  EXPECT_EQ(report.checkpoint_epoch, 2u);
  // A damaged checkpoint is refused whole.
  {
    std::fstream f(tmp.Sub("snapshot.ckpt"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  EXPECT_EQ(mmsb::LoadCheckpoint(tmp.Sub("snapshot.ckpt")).status().code(),
            mmsb::StatusCode::kCorruption);
  // By hand: one raw page.
  const std::uint8_t bytes[16] = {1, 2, 3};
  mmsb::CheckpointContents contents;
  contents.epoch = 9;
  contents.page_id_high = 1;
  contents.pages.push_back(
      {/*id=*/1, /*epoch=*/9, mmsb::Location::kCpu, /*is_static=*/true, "table", "", bytes});
  mmsb::CheckpointOptions no_sync;
  no_sync.sync = false;
  ASSERT_TRUE(mmsb::WriteCheckpointFile(tmp.Sub("hand.ckpt"), contents, no_sync).ok());
  auto st = mmsb::LoadCheckpoint(tmp.Sub("hand.ckpt"));
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->FindPageByName("table")->bytes[2], 3);
}

// ---- mmsb/instrument.h
// --------------------------------------------------------------------------- What plugin-generated
// code calls. Shown here as the rewriter emits it, for readers of `mmsb-rewrite` output; programs
// do not write these calls themselves.

struct Tally {
  std::uint64_t n;
  static void* operator new(std::size_t size) {  // what the plugin adds to a page type
    void* p = ::mmsb::rt::AllocPageStorage(size, alignof(Tally), nullptr);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  static void operator delete(void* p) { ::mmsb::rt::FreePageStorage(p); }
};

alignas(64) Tally g_tally;  // the plugin also puts it in the `mmsb_pages` section

void RegisterTally() {  // the plugin emits a namespace-scope registrar instead
  static const ::mmsb::TypeDescriptor* type =
      ::mmsb::rt::InternType({"Tally", 8, 8, {{"n", 0, 8, ::mmsb::ScalarKind::kU64, 8, {}, ""}}});
  ::mmsb::rt::StaticPageRegistrar registrar(&g_tally, sizeof g_tally, "_Z7g_tally", type);
}

void CountTwice() {  // [[mmsb::transaction]] void CountTwice() { ++g_tally.n; ++g_tally.n; }
  ::mmsb::rt::TransactionScope _mmsb_tx;
  ++::mmsb::rt::ws(&(g_tally.n));
  ++::mmsb::rt::ws(&(g_tally.n));
}  // commits here: one epoch

// ---- Threads: commits and transactions

std::mutex g_tally_mu;  // guards g_tally: MMSB does not serialise the program's writes

void CountOnThreads() {  // each transaction commits whole, whichever thread commits
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 100; ++i) {
        ::mmsb::rt::TransactionScope tx;               // what [[mmsb::transaction]] inserts
        std::lock_guard<std::mutex> lock(g_tally_mu);  // released before the commit at tx's end
        ++::mmsb::rt::ws(&g_tally.n);
        ++::mmsb::rt::ws(&g_tally.n);
      }
    });
  }
  for (auto& th : threads) th.join();
}

TEST(DocsApiInstrument, GeneratedCodeStartsTheBusRegistersAndCommits) {
  ASSERT_FALSE(mmsb::started());
  g_tally.n = 0;
  ::mmsb::rt::EnsureStarted();  // what the registrar and operator new do first
  ASSERT_TRUE(mmsb::started());
  RegisterTally();
  CountTwice();
  EXPECT_EQ(mmsb::current_epoch(), 1u);
  EXPECT_EQ(g_tally.n, 2u);
  mmsb::Page* page = mmsb::FindPageByName("_Z7g_tally");
  ASSERT_NE(page, nullptr);
  EXPECT_EQ(page->type()->name, "Tally");
  EXPECT_EQ(page->epoch(), 1u);
  auto* heap = new Tally{5};
  EXPECT_NE(mmsb::PageOf(heap), nullptr) << "a page of its own";
  ::mmsb::rt::MarkEscapedAt(&heap->n);
  EXPECT_TRUE(mmsb::PageOf(heap)->escaped());
  heap->n = 6;  // no barrier: the escaped page is diffed in full
  ASSERT_TRUE(mmsb::commit().ok());
  EXPECT_EQ(mmsb::PageOf(heap)->epoch(), 2u);
  delete heap;
  EXPECT_EQ(mmsb::PageCount(), 1u);
  mmsb::stop();
}

// ---- mmsb/held_marks.h
// ---------------------------------------------------------------------------

void FillRow(float* row, int n, float v) {  // for (int i = 0; i < n; ++i) row[i] = v;
  {
    ::mmsb::rt::ScopedMark mark(row, static_cast<std::size_t>(n) * sizeof(float));
    for (int i = 0; i < n; ++i) row[i] = v;  // no barrier per store: the loop stays vectorisable
  }  // marked again here, after the stores
}

void ClearRow(float* row,
              int n) {  // std::memset(row, 0, n * sizeof(float)), as the plugin emits it
  std::memset(::mmsb::rt::MarkFromHeld(row), 0, static_cast<std::size_t>(n) * sizeof(float));
}

TEST(DocsApiHeldMarks, LoopAndCallMarksMakeExactDeltas) {
  ASSERT_FALSE(mmsb::started());
  ASSERT_TRUE(mmsb::start().ok());
  auto page = mmsb::CreatePage(4096);
  ASSERT_TRUE(page.ok());
  auto* row = reinterpret_cast<float*>((*page)->data() + 1024);
  ASSERT_TRUE(mmsb::commit().ok());
  const mmsb::Stats before = mmsb::GetStats();
  FillRow(row, 64, 1.5f);
  ASSERT_TRUE(mmsb::commit().ok());
  const mmsb::Stats filled = mmsb::GetStats();
  EXPECT_EQ(filled.delta_bytes - before.delta_bytes, 64 * sizeof(float) / 2)
      << "1.5f is 0x3fc00000: two of its four bytes change from zero";
  ClearRow(row, 64);
  ASSERT_TRUE(mmsb::commit().ok());
  EXPECT_EQ(mmsb::GetStats().delta_bytes - filled.delta_bytes, 64 * sizeof(float) / 2);
  EXPECT_EQ((*page)->epoch(), mmsb::current_epoch());
  mmsb::stop();
}

// Records a page's first 8 bytes as committed, at every commit.
class DocsRecordingSink : public mmsb::CommitSink {
 public:
  DocsRecordingSink(std::vector<std::uint64_t>* seen, const mmsb::Page* page)
      : seen_(seen), page_(page) {}
  const char* name() const override { return "docs-recording"; }
  mmsb::Status OnCommit(const mmsb::CommitBatch&) override {
    std::uint64_t n = 0;
    std::memcpy(&n, mmsb::CommittedImage(page_).data(), sizeof n);
    seen_->push_back(n);
    return mmsb::Status::Ok();
  }

 private:
  std::vector<std::uint64_t>* seen_;
  const mmsb::Page* page_;
};

TEST(DocsApiThreads, TransactionsOnTwoThreadsEachCommitWhole) {
  ASSERT_OK(mmsb::start());
  g_tally.n = 0;
  mmsb::PageOptions po;  // RegisterTally's descriptor belongs to the previous bus
  po.name = "_Z7g_tally";
  ASSERT_TRUE(mmsb::RegisterStaticPage(&g_tally, sizeof g_tally, po).ok());
  ASSERT_TRUE(mmsb::commit().ok());
  std::vector<std::uint64_t> seen;
  ASSERT_OK(mmsb::AddSink(
      std::make_shared<DocsRecordingSink>(&seen, mmsb::FindPageByName("_Z7g_tally"))));
  CountOnThreads();
  ASSERT_FALSE(seen.empty());
  // Every epoch holds an even count: no commit split a transaction's two increments.
  for (std::uint64_t n : seen) EXPECT_EQ(n % 2, 0u) << "a transaction was split";
  EXPECT_EQ(seen.back(), 400u);
  mmsb::stop();
}

// ---- mmsb/mirror.h, mmsb/device.h, mmsb/kernels.h -----------------------------------------------

// Mirrors a page on the best device there is; every commit then updates the device copy.
mmsb::Status MirrorOnDevice(mmsb::Page* page) {
  std::unique_ptr<mmsb::DeviceBackend> backend =
      mmsb::MakeDefaultBackend();  // CUDA, else the CPU reference
  std::printf("device: %s\n",
              backend->info().is_reference ? "CPU reference" : backend->info().name.c_str());
  MMSB_RETURN_IF_ERROR(mmsb::AttachDevice(std::move(backend)));
  mmsb::Expected<mmsb::DeviceSpan> copy = mmsb::Mirror(page);  // holds the last committed bytes
  if (!copy.ok()) return copy.status();  // OutOfMemory: the page is unaffected
  *mmsb::rt::w(&page->data()[5]) = 42;
  if (auto e = mmsb::commit(); !e.ok()) return e.status();  // one staging copy, one apply
  std::uint8_t on_device = 0;
  MMSB_RETURN_IF_ERROR(mmsb::AttachedDevice()->CopyToHost(&on_device, copy->data + 5, 1));
  MMSB_RETURN_IF_ERROR(mmsb::AttachedDevice()->Synchronize());
  return on_device == 42 ? mmsb::Status::Ok() : mmsb::Internal("mirror is behind");
}

// Device code wrote the mirror; bring its writes back as host writes, logged at the next commit.
mmsb::Expected<mmsb::PullReport> AfterKernel(mmsb::Page* page) {
  mmsb::Expected<mmsb::PullReport> report = mmsb::Pull(page, mmsb::ConflictPolicy::kGpuWins);
  if (!report.ok()) return report.status();  // FailedPrecondition on a conflict under kError
  if (auto e = mmsb::commit(); !e.ok()) return e.status();
  return report;
}

// The same with a scope: its snapshot separates the kernel's writes from everything before.
mmsb::Status ScopedKernel(mmsb::Page* page, std::uint8_t value) {
  mmsb::GpuWriteScope scope(page);
  MMSB_RETURN_IF_ERROR(scope.status());
  mmsb::DeviceBackend* device = mmsb::AttachedDevice();
  MMSB_RETURN_IF_ERROR(device->CopyToDevice(scope.span().data + 7, &value, 1));  // "the kernel"
  MMSB_RETURN_IF_ERROR(device->Synchronize());
  mmsb::Expected<mmsb::PullReport> pulled = scope.End();
  return pulled.ok() ? mmsb::Status::Ok() : pulled.status();
}

TEST_F(DocsApi, MirrorsPullsAndWriteScopes) {
  mmsb::Page* page = *mmsb::CreatePage(256);
  ::testing::internal::CaptureStdout();
  ASSERT_OK(MirrorOnDevice(page));
  EXPECT_EQ(::testing::internal::GetCapturedStdout().rfind("device: ", 0), 0u);
  EXPECT_EQ(mmsb::AttachDevice(std::make_shared<mmsb::CpuBackend>()).code(),
            mmsb::StatusCode::kAlreadyExists);
  mmsb::DeviceStats ds = mmsb::GetDeviceStats();
  EXPECT_EQ(ds.mirrors, 1u);
  EXPECT_EQ(ds.syncs, 1u);
  EXPECT_EQ(ds.deltas_shipped, 1u);

  // A "kernel" writes the device copy; a pull makes it a host write.
  mmsb::DeviceSpan copy = *mmsb::DeviceCopy(page);
  const std::uint8_t nine = 9;
  ASSERT_OK(mmsb::AttachedDevice()->CopyToDevice(copy.data + 100, &nine, 1));
  ASSERT_OK(mmsb::AttachedDevice()->Synchronize());
  auto report = AfterKernel(page);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->bytes, 1u);
  EXPECT_EQ(report->applied_bytes, 1u);
  EXPECT_EQ(page->data()[100], 9);
  EXPECT_EQ(page->epoch(), mmsb::current_epoch()) << "the pulled byte was committed";

  // Both sides change byte 7 to different values: a conflict; kError writes nothing.
  *mmsb::rt::w(&page->data()[7]) = 1;
  {
    mmsb::GpuWriteScope scope(page);
    ASSERT_OK(scope.status());
    const std::uint8_t two = 2;
    ASSERT_OK(mmsb::AttachedDevice()->CopyToDevice(scope.span().data + 7, &two, 1));
    ASSERT_OK(mmsb::AttachedDevice()->Synchronize());
    auto ended = scope.End();
    EXPECT_EQ(ended.status().code(), mmsb::StatusCode::kFailedPrecondition);
  }
  EXPECT_EQ(page->data()[7], 1);
  ASSERT_TRUE(mmsb::commit().ok());
  ASSERT_OK(ScopedKernel(page, 3));
  EXPECT_EQ(page->data()[7], 3);
  EXPECT_EQ(std::string(mmsb::ConflictPolicyName(mmsb::ConflictPolicy::kGpuWins)), "gpu-wins");

  ASSERT_OK(mmsb::Unmirror(page));
  EXPECT_EQ(mmsb::DeviceCopy(page).status().code(), mmsb::StatusCode::kNotFound);
  ASSERT_OK(mmsb::DetachDevice());
  EXPECT_EQ(mmsb::AttachedDevice(), nullptr);
  EXPECT_EQ(mmsb::GetDeviceStats().mirrors, 0u);
}

// Pages that live on the device, or in memory both sides address.
mmsb::Status DevicePages(mmsb::Page** on_gpu, mmsb::Page** unified) {
  mmsb::DeviceOptions options;
  options.conflict_policy = mmsb::ConflictPolicy::kCpuWins;  // for commits and default pulls
  options.managed_limit_bytes = std::uint64_t{64} << 20;     // at most 64 MiB of unified pages
  MMSB_RETURN_IF_ERROR(mmsb::AttachDevice(std::make_shared<mmsb::CpuBackend>(), options));
  mmsb::PageOptions gpu;
  gpu.location = mmsb::Location::kGpu;  // device code writes it; commits pull the changes
  mmsb::Expected<mmsb::Page*> g = mmsb::CreatePage(4096, gpu);
  if (!g.ok()) return g.status();
  mmsb::PageOptions managed;
  managed.location = mmsb::Location::kUnified;  // one copy; every commit diffs it in full
  mmsb::Expected<mmsb::Page*> u = mmsb::CreatePage(4096, managed);
  if (!u.ok()) return u.status();  // Unsupported without managed memory
  MMSB_RETURN_IF_ERROR(mmsb::Prefetch(*u, mmsb::MemoryPlace::kDevice));
  *on_gpu = *g;
  *unified = *u;
  return mmsb::Status::Ok();
}

TEST_F(DocsApi, GpuAndUnifiedPages) {
  mmsb::Page* on_gpu = nullptr;
  mmsb::Page* unified = nullptr;
  ASSERT_OK(DevicePages(&on_gpu, &unified));
  ASSERT_TRUE(mmsb::commit().ok());
  const std::uint8_t five = 5;
  ASSERT_OK(mmsb::AttachedDevice()->CopyToDevice(mmsb::DeviceCopy(on_gpu)->data + 10, &five, 1));
  ASSERT_OK(mmsb::AttachedDevice()->Synchronize());
  unified->data()[20] = 6;  // no barrier needed
  ASSERT_TRUE(mmsb::commit().ok());
  EXPECT_EQ(on_gpu->data()[10], 5) << "pulled before the commit";
  EXPECT_EQ(on_gpu->epoch(), 2u);
  EXPECT_EQ(unified->epoch(), 2u);
  EXPECT_EQ(mmsb::DeviceCopy(unified)->data, unified->data()) << "the managed storage itself";
  EXPECT_EQ(mmsb::Prefetch(on_gpu, mmsb::MemoryPlace::kHost).code(),
            mmsb::StatusCode::kFailedPrecondition);
  EXPECT_EQ(mmsb::DetachDevice().code(), mmsb::StatusCode::kFailedPrecondition)
      << "device pages are live";
  EXPECT_EQ(mmsb::Unmirror(on_gpu).code(), mmsb::StatusCode::kFailedPrecondition);
  EXPECT_EQ(mmsb::Pull(unified).status().code(), mmsb::StatusCode::kFailedPrecondition);
  ASSERT_OK(mmsb::FreePage(on_gpu));
  ASSERT_OK(mmsb::FreePage(unified));
  ASSERT_OK(mmsb::DetachDevice());
}

// The backend's primitives, driven directly (as the runtime does). Device pointers are opaque.
mmsb::Status MergeOnDevice(mmsb::DeviceBackend& device) {
  constexpr std::size_t kBytes = 256;
  std::vector<std::uint8_t> page(kBytes, 1), delta(kBytes, 2), mask(kBytes, 0);
  mask[3] = 0xff;                                          // take byte 3 from the delta
  mmsb::Expected<void*> d_page = device.Allocate(kBytes);  // 256-byte aligned
  mmsb::Expected<void*> d_delta = device.Allocate(kBytes);
  mmsb::Expected<void*> d_mask = device.Allocate(kBytes);
  if (!d_page.ok() || !d_delta.ok() || !d_mask.ok()) return mmsb::OutOfMemory("allocation failed");
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(*d_page, page.data(), kBytes));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(*d_delta, delta.data(), kBytes));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(*d_mask, mask.data(), kBytes));
  MMSB_RETURN_IF_ERROR(device.MaskedMerge(*d_page, *d_page, *d_delta, *d_mask, kBytes));
  mmsb::Expected<void*> before = device.Clone(*d_delta, kBytes);  // enqueued copy
  if (!before.ok()) return before.status();
  MMSB_RETURN_IF_ERROR(device.Zero(*d_delta, kBytes));
  MMSB_RETURN_IF_ERROR(device.CopyRange(*d_delta, 0, *d_page, 0, 8));
  std::uint64_t masks[kBytes / 64];
  MMSB_RETURN_IF_ERROR(device.CompareMask(*d_delta, *before, kBytes, masks));
  MMSB_RETURN_IF_ERROR(device.CopyToHost(page.data(), *d_page, kBytes));
  MMSB_RETURN_IF_ERROR(device.Synchronize());  // the first error since the last Synchronize
  std::printf("byte 3 = %u, byte 4 = %u, first granule mask %016llx\n", page[3], page[4],
              static_cast<unsigned long long>(masks[0]));
  for (void* p : {*d_page, *d_delta, *d_mask, *before}) device.Free(p);
  return mmsb::Status::Ok();
}

// Changed runs between two device buffers, then a gather and a scatter of them.
mmsb::Status RunsOnDevice(mmsb::DeviceBackend& device) {
  std::vector<std::uint8_t> base(128, 0), now(128, 0);
  now[5] = now[6] = 7;
  now[90] = 8;
  auto* d_base = static_cast<std::uint8_t*>(*device.Allocate(128));
  auto* d_now = static_cast<std::uint8_t*>(*device.Allocate(128));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(d_base, base.data(), 128));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(d_now, now.data(), 128));
  const mmsb::DiffTarget target{d_now, d_base, /*size=*/128, /*first_granule=*/0};
  auto* d_target = static_cast<mmsb::DiffTarget*>(*device.Allocate(sizeof target));
  auto* d_runs = static_cast<mmsb::DiffRun*>(*device.Allocate(8 * sizeof(mmsb::DiffRun)));
  auto* d_packed = static_cast<std::uint8_t*>(*device.Allocate(128));
  auto* d_totals = static_cast<mmsb::DiffTotals*>(*device.Allocate(sizeof(mmsb::DiffTotals)));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(d_target, &target, sizeof target));
  MMSB_RETURN_IF_ERROR(
      device.DiffToRuns(d_target, 1, /*num_granules=*/2, d_runs, 8, d_packed, 128, d_totals));
  mmsb::DiffTotals totals;
  mmsb::DiffRun runs[8];
  MMSB_RETURN_IF_ERROR(device.CopyToHost(&totals, d_totals, sizeof totals));
  MMSB_RETURN_IF_ERROR(device.CopyToHost(runs, d_runs, sizeof runs));
  MMSB_RETURN_IF_ERROR(device.Synchronize());
  std::printf("%llu runs, %llu bytes:", static_cast<unsigned long long>(totals.runs),
              static_cast<unsigned long long>(totals.bytes));
  for (std::uint64_t i = 0; i < totals.runs && i < 8; ++i)
    std::printf(" [%u, %u)", runs[i].begin, runs[i].end);
  std::printf("\n");
  // Gather the changed runs of `now` into a packed buffer, scatter them into `base`.
  const mmsb::PackedRun packed[] = {{5, 2, 0}, {90, 1, 2}};
  auto* d_packed_runs = static_cast<mmsb::PackedRun*>(*device.Allocate(sizeof packed));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(d_packed_runs, packed, sizeof packed));
  MMSB_RETURN_IF_ERROR(device.Gather(d_packed, d_now, d_packed_runs, 2));
  MMSB_RETURN_IF_ERROR(device.Scatter(d_base, d_packed, d_packed_runs, 2));
  MMSB_RETURN_IF_ERROR(device.CopyToHost(base.data(), d_base, 128));
  MMSB_RETURN_IF_ERROR(device.Synchronize());
  for (void* p : std::initializer_list<void*>{d_base, d_now, d_target, d_runs, d_packed, d_totals,
                                              d_packed_runs}) {
    device.Free(p);
  }
  return base == now ? mmsb::Status::Ok() : mmsb::Internal("scatter went wrong");
}

// One batched apply: a sparse run into one page (the runtime packs whole commits this way).
mmsb::Status ApplyOneRun(mmsb::DeviceBackend& device) {
  auto* d_page = static_cast<std::uint8_t*>(*device.Allocate(64));
  MMSB_RETURN_IF_ERROR(device.Zero(d_page, 64));
  const mmsb::ApplyTarget target{d_page, /*secondary=*/nullptr, /*size=*/64};
  const mmsb::SparseSegment segments[] = {{/*target=*/0, /*offset=*/10, /*src=*/0},
                                          {0, 0, /*src=*/3}};  // + sentinel
  const std::uint8_t payload[] = {'a', 'b', 'c'};
  auto* d_target = static_cast<mmsb::ApplyTarget*>(*device.Allocate(sizeof target));
  auto* d_segments = static_cast<mmsb::SparseSegment*>(*device.Allocate(sizeof segments));
  auto* d_payload = static_cast<std::uint8_t*>(*device.Allocate(sizeof payload));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(d_target, &target, sizeof target));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(d_segments, segments, sizeof segments));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(d_payload, payload, sizeof payload));
  mmsb::ApplyBatchView batch;
  batch.targets = d_target;
  batch.num_targets = 1;
  batch.sparse = d_segments;
  batch.num_sparse = 1;
  batch.payload = d_payload;
  batch.payload_bytes = sizeof payload;
  MMSB_RETURN_IF_ERROR(device.ApplyBatch(batch));
  char back[4] = {};
  MMSB_RETURN_IF_ERROR(device.CopyToHost(back, d_page + 10, 3));
  MMSB_RETURN_IF_ERROR(device.Synchronize());
  for (void* p : std::initializer_list<void*>{d_page, d_target, d_segments, d_payload})
    device.Free(p);
  return std::string(back) == "abc" ? mmsb::Status::Ok() : mmsb::Internal("apply went wrong");
}

// Pinned staging and managed memory.
mmsb::Status HostSideMemory(mmsb::DeviceBackend& device) {
  std::uint64_t free_bytes = 0, total_bytes = 0;
  MMSB_RETURN_IF_ERROR(device.MemoryInfo(&free_bytes, &total_bytes));
  mmsb::Expected<void*> pinned = device.AllocatePinned(1 << 20);  // host-accessible
  if (!pinned.ok()) return pinned.status();
  std::memset(*pinned, 0, 1 << 20);
  device.FreePinned(*pinned);
  if (!device.info().managed_memory) return mmsb::Status::Ok();
  mmsb::Expected<void*> managed = device.AllocateManaged(1 << 20);
  if (!managed.ok()) return managed.status();
  static_cast<std::uint8_t*>(*managed)[0] = 1;  // host and device address the same bytes
  MMSB_RETURN_IF_ERROR(device.Prefetch(*managed, 1 << 20, mmsb::MemoryPlace::kDevice));
  MMSB_RETURN_IF_ERROR(device.Synchronize());
  device.FreeManaged(*managed);
  return mmsb::Status::Ok();
}

TEST(DocsApiDevice, BackendPrimitivesOnTheDefaultBackend) {
  std::unique_ptr<mmsb::DeviceBackend> device = mmsb::MakeDefaultBackend();
  ::testing::internal::CaptureStdout();
  ASSERT_OK(MergeOnDevice(*device));
  ASSERT_OK(RunsOnDevice(*device));
  EXPECT_EQ(::testing::internal::GetCapturedStdout(),
            "byte 3 = 2, byte 4 = 1, first granule mask fffffffffffffff7\n2 runs, 3 bytes: [5, 7) "
            "[90, 91)\n");
  ASSERT_OK(ApplyOneRun(*device));
  ASSERT_OK(HostSideMemory(*device));
  if (device->info().is_reference) EXPECT_EQ(device->native_stream(), nullptr);
}

// The CPU reference as a fake device that fails on demand.
mmsb::Status SurviveADeviceFault(mmsb::Page* page) {
  mmsb::CpuBackendOptions options;
  options.capacity_bytes = std::uint64_t{256} << 20;  // a 256 MiB "device"
  auto device = std::make_shared<mmsb::CpuBackend>(options);
  MMSB_RETURN_IF_ERROR(mmsb::AttachDevice(device));
  if (auto m = mmsb::Mirror(page); !m.ok()) return m.status();
  device->FailNthOperation(1, mmsb::OutOfMemory("injected fault"), /*deferred=*/true);
  *mmsb::rt::w(&page->data()[0]) = 1;
  mmsb::Expected<mmsb::Epoch> e = mmsb::commit();  // the sync fails; the host state goes on
  std::printf("commit: %s; device errors: %llu\n", e.status().ToString().c_str(),
              static_cast<unsigned long long>(mmsb::GetDeviceStats().device_errors));
  return mmsb::Status::Ok();
}

TEST_F(DocsApi, TheCpuReferenceInjectsFaults) {
  mmsb::Page* page = *mmsb::CreatePage(64);
  ::testing::internal::CaptureStdout();
  ASSERT_OK(SurviveADeviceFault(page));
  const std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("injected fault"), std::string::npos) << out;
  EXPECT_NE(out.find("device errors: 1"), std::string::npos) << out;
  EXPECT_EQ(page->data()[0], 1);
  EXPECT_EQ(mmsb::current_epoch(), 1u) << "the epoch advanced; the device copy is stale";
  *mmsb::rt::w(&page->data()[1]) = 2;
  auto next = mmsb::commit();
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  std::uint8_t back[2] = {};
  ASSERT_OK(mmsb::AttachedDevice()->CopyToHost(back, mmsb::DeviceCopy(page)->data, 2));
  EXPECT_EQ(back[0], 1);
  EXPECT_EQ(back[1], 2);
  auto* cpu = static_cast<mmsb::CpuBackend*>(mmsb::AttachedDevice());
  EXPECT_GE(cpu->counters().apply_batches + mmsb::GetDeviceStats().full_uploads, 1u);
  cpu->set_capacity(0);
  mmsb::Page* other = *mmsb::CreatePage(64);
  EXPECT_EQ(mmsb::Mirror(other).status().code(), mmsb::StatusCode::kOutOfMemory);
}

TEST(DocsApiKernels, CudaBackendOrAClearReason) {
  mmsb::Expected<std::unique_ptr<mmsb::DeviceBackend>> cuda = mmsb::MakeCudaBackend({/*device=*/0});
  if (!mmsb::CudaBuilt()) {
    EXPECT_EQ(cuda.status().code(), mmsb::StatusCode::kUnsupported);
  } else if (cuda.ok()) {
    EXPECT_FALSE((*cuda)->info().is_reference);
    EXPECT_GT((*cuda)->info().compute_capability, 0);
  } else {
    EXPECT_EQ(cuda.status().code(), mmsb::StatusCode::kUnsupported) << cuda.status().ToString();
  }
}

}  // namespace

// ---- mmsb/provenance.h
// ---------------------------------------------------------------------------

// A sink that prints what committed each epoch.
class WhoCommitted : public mmsb::CommitSink {
 public:
  const char* name() const override { return "who"; }
  mmsb::Status OnCommit(const mmsb::CommitBatch& batch) override {
    for (const mmsb::CommitProvenance& p : batch.transactions) {
      std::printf("epoch %llu: %s:%u (thread %u, #%llu)\n",
                  static_cast<unsigned long long>(batch.epoch), p.file ? p.file : "?", p.line,
                  p.thread, static_cast<unsigned long long>(p.sequence));
    }
    return mmsb::Status::Ok();
  }
};

TEST(DocsApiProvenance, SinksSeeWhatCommitted) {
  ASSERT_TRUE(mmsb::start().ok());
  ASSERT_TRUE(mmsb::AddSink(std::make_shared<WhoCommitted>()).ok());
  ::testing::internal::CaptureStdout();
  const int line = __LINE__ + 1;
  ASSERT_TRUE(mmsb::commit().ok());
  const std::string out = ::testing::internal::GetCapturedStdout();
  mmsb::stop();
  EXPECT_NE(out.find("api_examples_test.cc:" + std::to_string(line)), std::string::npos) << out;
}

// ---- mmsb/query.h
// --------------------------------------------------------------------------------

// When did the hits counter first reach 3, and what committed that epoch?
mmsb::Status FirstThirdHit(const std::string& log) {
  auto index = mmsb::query::LogIndex::Open(log);
  if (!index.ok()) return index.status();
  auto p = mmsb::query::Predicate::Parse(**index, "Counters.hits[0] >= 3");
  if (!p.ok()) return p.status();
  auto r = mmsb::query::Bisect(**index, *p);
  if (!r.ok()) return r.status();
  if (!r->found) return mmsb::NotFound("never");
  auto history = mmsb::query::FieldHistory(**index, "Counters.hits[0]");
  if (!history.ok()) return history.status();
  for (const mmsb::query::FieldChangeAt& c : history->changes) {
    std::printf("epoch %llu: %s -> %s\n", static_cast<unsigned long long>(c.epoch),
                c.old_value.c_str(), c.new_value.c_str());
  }
  auto commit = (*index)->Commit(r->epoch);
  if (!commit.ok()) return commit.status();
  std::printf("first at epoch %llu, by %s\n", static_cast<unsigned long long>(r->epoch),
              commit->transactions.empty() ? "?" : commit->transactions[0].site.ToString().c_str());
  return mmsb::Status::Ok();
}

TEST(DocsApiQuery, BisectAndHistory) {
  TempDir tmp;
  const std::string dir = tmp.Sub("run.tlog");
  {
    auto w = mmsb::LogWriter::Open(dir);
    ASSERT_TRUE(w.ok());
    mmsb::TypeDescriptor t;
    t.name = "Counters";
    t.size = 16;
    t.align = 4;
    mmsb::FieldDescriptor f;
    f.name = "hits";
    f.size = 16;
    f.kind = mmsb::ScalarKind::kI32;
    f.elem_size = 4;
    f.extents = {4};
    t.fields = {f};
    std::vector<std::uint8_t> bytes(16, 0);
    for (std::int32_t v = 1; v <= 5; ++v) {
      mmsb::LogBatch b = (*w)->NewBatch();
      if (v == 1) {
        b.AddTypeDescriptor(t);
        b.AddPageCreate({1, 16, mmsb::Location::kCpu, true, "g_counters", "Counters"});
      }
      std::vector<std::uint8_t> before = bytes;
      std::memcpy(bytes.data(), &v, 4);
      ASSERT_TRUE(b.AddDelta(mmsb::Diff(1, v == 1 ? 0 : v - 1, before, bytes)).ok());
      ASSERT_TRUE((*w)->Commit(b).ok());
    }
    ASSERT_TRUE((*w)->Close().ok());
  }
  ::testing::internal::CaptureStdout();
  ASSERT_TRUE(FirstThirdHit(dir).ok());
  const std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("epoch 2: 1 -> 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("first at epoch 3, by ?"), std::string::npos) << out;
}
