// The examples of docs/API.md on status.h, types.h, mmsb.h, type_desc.h, page.h and barrier.h,
// compiled and run. See docs_api_test.h for how docs/API.md is checked against these files.
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

#include "docs_api_test.h"
#include "temp_dir.h"

namespace {

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

// Vec3, Body, RegisterBodyType and DescribeByte are in docs_api_test.h: the chapters that
// follow use them too.

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

}  // namespace
