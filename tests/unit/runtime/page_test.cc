#include <algorithm>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "mmsb/instrument.h"

#include "bus_fixture.h"
#include "core/page_record.h"

namespace mmsb {
namespace {

using testing::BusTest;

TEST(PageLifecycle, CreateBeforeStartFailsWithFailedPrecondition) {
  stop();
  auto p = CreatePage(64);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(BusTest, NewPageIsZeroedAndHasUniqueId) {
  std::set<PageId> ids;
  for (std::size_t size : {1u, 63u, 64u, 100u, 4096u, 4097u, 100000u}) {
    Page* p = NewPage(size);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->size(), size);
    EXPECT_TRUE(std::all_of(p->data(), p->data() + size, [](std::uint8_t b) { return b == 0; }));
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p->data()) % 64, 0u);
    EXPECT_TRUE(rt::IsTracked(p->data()));
    EXPECT_TRUE(ids.insert(p->id()).second);
  }
  EXPECT_EQ(PageCount(), 7u);
}

TEST_F(BusTest, RecycledDirtySlotIsZeroedAgain) {
  Page* a = NewPage(4096);
  std::uint8_t* addr = a->data();
  *rt::w(&a->data()[17]) = 0xAB;
  ASSERT_TRUE(FreePage(a).ok());
  Page* b = NewPage(4096);
  ASSERT_EQ(b->data(), addr) << "size-class pool should hand back the freed slot";
  EXPECT_EQ(b->data()[17], 0);
}

TEST_F(BusTest, RecycledCleanSlotIsReusedWithoutWrites) {
  Page* a = NewPage(512);
  std::uint8_t* addr = a->data();
  ASSERT_TRUE(FreePage(a).ok());
  Page* b = NewPage(512);
  EXPECT_EQ(b->data(), addr);
  EXPECT_TRUE(std::all_of(b->data(), b->data() + 512, [](std::uint8_t v) { return v == 0; }));
}

// Freed small slots are recycled through a bounded per-class cache (then the arena's pool): many
// more pages than the cache holds, freed dirty, half written and half marked but unchanged, must
// come back zeroed, with no stale marks (a commit after re-creation sees only the new pages).
TEST_F(BusTest, RecycledSlotsBeyondTheCacheComeBackZeroedAndUnmarked) {
  constexpr int kPages = 300;
  std::vector<Page*> pages;
  for (int i = 0; i < kPages; ++i) pages.push_back(NewPage(256));
  ASSERT_TRUE(commit().ok());
  for (int i = 0; i < kPages; ++i) {
    if (i % 2 == 0) {
      *rt::w(&pages[i]->data()[i % 256]) = 0x77;
    } else {
      rt::w(&pages[i]->data()[200]);  // marked, unchanged
    }
    ASSERT_TRUE(FreePage(pages[i]).ok());
  }
  std::set<std::uint8_t*> reused;
  const rt::ShadowRegion& heap = rt::g_region;
  for (int i = 0; i < kPages; ++i) {
    Page* p = NewPage(256);
    ASSERT_NE(p, nullptr);
    reused.insert(p->data());
    EXPECT_TRUE(std::all_of(p->data(), p->data() + 256, [](std::uint8_t v) { return v == 0; }))
        << "page " << i;
    const std::uint8_t* shadow =
        heap.shadow + ((reinterpret_cast<std::uintptr_t>(p->data()) - heap.base) >> kGranuleShift);
    EXPECT_TRUE(
        std::all_of(shadow, shadow + 256 / kGranuleSize, [](std::uint8_t v) { return v == 0; }))
        << "page " << i << " kept a stale shadow mark of the slot's previous page";
  }
  EXPECT_EQ(reused.size(), static_cast<std::size_t>(kPages));
}

TEST_F(BusTest, UnzeroedRequestOnARecycledDirtySlotIsCapturedAtFirstCommit) {
  Page* a = NewPage(128);
  std::memset(rt::w(a->data(), 128), 0x11, 128);
  ASSERT_TRUE(commit().ok());
  std::uint8_t* addr = a->data();
  ASSERT_TRUE(FreePage(a).ok());
  Page* b = NewPage(128, {.zeroed = false});
  ASSERT_EQ(b->data(), addr);
  ASSERT_TRUE(commit().ok());
  EXPECT_EQ(b->epoch(), GetStats().epoch)
      << "leftover bytes of an unzeroed page are its first delta";
}

// A slot's "zero" flag covers its whole capacity: a small zeroed page on a dirty slot, freed
// untouched, must not leave the slot's tail beyond its size dirty but flagged clean, or a larger
// page on the same slot starts with stale bytes its first commit believes are zero.
TEST_F(BusTest, SmallPageOnADirtySlotLeavesNoStaleTailForTheNextPage) {
  Page* a = NewPage(256);
  std::memset(rt::w(a->data(), 256), 0x5A, 256);
  std::uint8_t* addr = a->data();
  ASSERT_TRUE(FreePage(a).ok());
  Page* b = NewPage(130);  // same size class (256), zeroed on the dirty slot, never written
  ASSERT_EQ(b->data(), addr);
  ASSERT_TRUE(FreePage(b).ok());
  Page* c = NewPage(256);
  ASSERT_EQ(c->data(), addr);
  EXPECT_TRUE(std::all_of(c->data(), c->data() + 256, [](std::uint8_t v) { return v == 0; }))
      << "the slot's tail kept the first page's bytes";
}

TEST_F(BusTest, LargePageStorageIsReturnedZeroed) {
  Page* a = NewPage(1 << 20);
  std::memset(rt::w(a->data(), a->size()), 0x5A, a->size());
  std::uint8_t* addr = a->data();
  ASSERT_TRUE(FreePage(a).ok());
  Page* b = NewPage(1 << 20);
  EXPECT_EQ(b->data(), addr);
  EXPECT_TRUE(std::all_of(b->data(), b->data() + b->size(), [](std::uint8_t v) { return v == 0; }));
}

TEST_F(BusTest, FindAndFreeById) {
  Page* p = NewPage(128, {.name = "answer"});
  EXPECT_EQ(FindPage(p->id()), p);
  EXPECT_EQ(FindPageByName("answer"), p);
  const PageId id = p->id();
  ASSERT_TRUE(FreePage(id).ok());
  EXPECT_EQ(FindPage(id), nullptr);
  EXPECT_EQ(FindPageByName("answer"), nullptr);
  auto again = FreePage(id);
  EXPECT_EQ(again.code(), StatusCode::kNotFound);
  auto got = GetPage(id);
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound);
}

TEST_F(BusTest, DoubleFreeOfHandleIsRejected) {
  Page* p = NewPage(64);
  ASSERT_TRUE(FreePage(p).ok());
  EXPECT_EQ(FreePage(p).code(), StatusCode::kFailedPrecondition);
}

TEST_F(BusTest, BadSizesAndLocationsAreTypedErrors) {
  EXPECT_EQ(CreatePage(0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CreatePage(std::size_t{1} << 32).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CreatePage(64, {.location = Location::kGpu}).status().code(), StatusCode::kUnsupported);
}

TEST_F(BusTest, ArenaExhaustionIsOutOfMemoryNotACrash) {
  auto p = CreatePage((std::size_t{1} << 30) + 4096);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kOutOfMemory);
}

TEST_F(BusTest, ListPagesIsSortedById) {
  for (int i = 0; i < 10; ++i) NewPage(64 * (i + 1));
  auto list = ListPages();
  ASSERT_EQ(list.size(), 10u);
  EXPECT_TRUE(
      std::is_sorted(list.begin(), list.end(), [](auto& a, auto& b) { return a.id < b.id; }));
  EXPECT_EQ(list[3].size, 256u);
}

TEST_F(BusTest, StaticPageMustBeAligned) {
  alignas(64) static std::uint8_t storage[256];
  auto bad = RegisterStaticPage(storage + 8, 64, {.name = "bad"});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  auto good = RegisterStaticPage(storage, sizeof storage, {.name = "good"});
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE((*good)->is_static());
  EXPECT_TRUE(rt::IsTracked(storage + 100));
  auto dup = RegisterStaticPage(storage, sizeof storage, {.name = "good"});
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
}

// Heap and static pages lie in one tracked range with one shadow map (mmsb/barrier.h, g_region),
// so a barrier needs one range check for either: a store-then-mark store marks the byte its offset
// in that range names, and the static page is tracked by its marks (not escaped): a byte stored
// without a barrier in an unmarked granule stays out of its delta, as in a heap page.
TEST_F(BusTest, StaticAndHeapPagesShareOneTrackedRangeAndShadow) {
  Options o;
  o.sample_verify = 0;  // the unmarked store below is the point, not a miss to report
  StartBus(o);
  alignas(64) static std::uint8_t storage[4096];
  auto s = RegisterStaticPage(storage, sizeof storage, {.name = "one_range_static"});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_FALSE((*s)->escaped()) << "the static window lies in the tracked range";
  Page* h = NewPage(4096);
  ASSERT_NE(h, nullptr);
  const rt::ShadowRegion& r = rt::g_region;
  const rt::ShadowRegion& st = rt::g_static_region;
  ASSERT_NE(st.span, 0u);
  EXPECT_GE(st.base, r.base);
  EXPECT_LE(st.base + st.span, r.base + r.span);
  EXPECT_EQ(st.shadow, r.shadow + ((st.base - r.base) >> kGranuleShift));
  Commit();
  auto mark_of = [&](const void* p) {
    return r.shadow[(reinterpret_cast<std::uintptr_t>(p) - r.base) >> kGranuleShift];
  };
  rt::ws(&storage[700]) = 5;
  rt::ws(&h->data()[900]) = 6;
  storage[3000] = 7;  // no barrier
  EXPECT_EQ(mark_of(&storage[700]), 1);
  EXPECT_EQ(mark_of(&h->data()[900]), 1);
  EXPECT_EQ(mark_of(&storage[3000]), 0);
  Commit();
  const auto& deltas = sink->batches.back().deltas;
  ASSERT_EQ(deltas.size(), 2u);
  for (const Delta& d : deltas) {
    EXPECT_TRUE(d.page() == (*s)->id() || d.page() == h->id());
    EXPECT_EQ(d.changed_bytes(), 1u) << "page " << d.page();
  }
}

TEST_F(BusTest, TypeRegistrationInternsAndRejectsConflicts) {
  TypeDescriptor t{
      "Point",
      8,
      4,
      {{"x", 0, 4, ScalarKind::kF32, 4, {}, ""}, {"y", 4, 4, ScalarKind::kF32, 4, {}, ""}}};
  auto a = RegisterType(t);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = RegisterType(t);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(FindType("Point"), *a);
  t.fields[1].kind = ScalarKind::kI32;
  EXPECT_EQ(RegisterType(t).status().code(), StatusCode::kAlreadyExists);
}

TEST_F(BusTest, ConcurrentCreateAndFreeKeepIdsUniqueAndCountsRight) {
  constexpr int kThreads = 4, kPerThread = 2000;
  std::vector<std::vector<PageId>> kept(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<Page*> mine;
      for (int i = 0; i < kPerThread; ++i) {
        auto p = CreatePage(64 + (i % 5) * 700);
        ASSERT_TRUE(p.ok());
        *rt::w(&(*p)->data()[0]) = static_cast<std::uint8_t>(t + 1);
        mine.push_back(*p);
        if (i % 3 == 0) {
          ASSERT_TRUE(FreePage(mine.front()).ok());
          mine.erase(mine.begin());
        }
      }
      for (Page* p : mine) {
        EXPECT_EQ(p->data()[0], t + 1) << "another thread got the same storage";
        kept[t].push_back(p->id());
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<PageId> all;
  std::size_t n = 0;
  for (auto& v : kept) {
    n += v.size();
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), n);
  EXPECT_EQ(PageCount(), n);
  Commit();
  Stats s = GetStats();
  EXPECT_EQ(s.pages_live, n);
  EXPECT_EQ(s.pages_created, std::uint64_t{kThreads} * kPerThread);
}

}  // namespace
}  // namespace mmsb

namespace mmsb {
namespace {

using PageOfTest = testing::BusTest;

TEST_F(PageOfTest, FindsHeapAndStaticPagesByInteriorAddress) {
  Page* heap = NewPage(1000);
  alignas(64) static std::uint8_t storage[256];
  auto st = RegisterStaticPage(storage, sizeof(storage), {.name = "storage"});
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(PageOf(heap->data()), heap);
  EXPECT_EQ(PageOf(heap->data() + 999), heap);
  EXPECT_EQ(PageOf(storage + 17), *st);
  int local = 0;
  EXPECT_EQ(PageOf(&local), nullptr);
  EXPECT_EQ(PageOf(storage + sizeof(storage)), nullptr);
}

}  // namespace
}  // namespace mmsb

namespace mmsb {
namespace {

using TypeCheckTest = testing::BusTest;

// Regression: a descriptor pointer kept across stop()/start() dangled, and a page created with it
// silently got whatever type reused the address.
TEST_F(TypeCheckTest, UnregisteredTypePointerIsRejected) {
  TypeDescriptor t{"T", 8, 8, {{"v", 0, 8, ScalarKind::kU64, 8, {}, ""}}};
  auto reg = RegisterType(t);
  ASSERT_TRUE(reg.ok());
  EXPECT_TRUE(CreatePage(8, {.type = *reg}).ok());
  auto bad = CreatePage(8, {.type = &t});  // the caller's copy, not the registered one
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("RegisterType"), std::string::npos);
  alignas(64) static std::uint8_t storage[64];
  EXPECT_EQ(RegisterStaticPage(storage, 64, {.type = &t, .name = "s"}).status().code(),
            StatusCode::kInvalidArgument);
}

// The derived diff reads these fields of every page it visits, and the graph prefetches only the
// record's first line for them (docs/Performance.md, "The page record's line"); the Page the
// program holds converts to its record and back through Rec(), which knows the Page is not at the
// record's start.
TEST_F(BusTest, ThePageRecordFieldsADiffReadsShareTheRecordsFirstCacheLine) {
  Page* p = NewPage(64);
  ASSERT_NE(p, nullptr);
  PageRecord* rec = Rec(p);
  const auto* base = reinterpret_cast<const char*>(rec);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(base) % 64, 0u);
  auto in_first_line = [&](const void* field, std::size_t bytes) {
    const auto at = static_cast<const char*>(field) - base;
    return at >= 0 && static_cast<std::size_t>(at) + bytes <= 64;
  };
  EXPECT_TRUE(in_first_line(&rec->twin, sizeof(rec->twin)));
  EXPECT_TRUE(in_first_line(&rec->twin_valid, 1));
  EXPECT_TRUE(in_first_line(&rec->maybe_nonzero, 1));
  EXPECT_TRUE(in_first_line(&rec->size_class, 1));
  EXPECT_TRUE(in_first_line(&rec->data_, sizeof(rec->data_)));
  EXPECT_TRUE(in_first_line(&rec->size_, sizeof(rec->size_)));
  EXPECT_TRUE(in_first_line(&rec->id_, sizeof(rec->id_)));
  EXPECT_TRUE(in_first_line(&rec->epoch_, sizeof(rec->epoch_)));
  EXPECT_TRUE(in_first_line(&rec->is_static_, 1));
  EXPECT_TRUE(in_first_line(&rec->escaped_, 1));
  // The conversion both ways: the record's fields are the page's.
  EXPECT_EQ(static_cast<Page*>(rec), p);
  EXPECT_EQ(rec->data_, p->data());
  EXPECT_EQ(rec->id_, p->id());
}

// A static variable's constant initialiser that points into a static page (`int* p = &g.a[3];`
// at namespace scope) runs no Escape: the rewriter emits a StaticEscape registrar, which may run
// before the page's own registrar (another TU). The page is escaped once registered, either
// order, and a store through the pointer (no barrier) is in the next commit.
TEST_F(BusTest, StaticEscapeBeforeOrAfterRegistrationEscapesThePage) {
  alignas(64) static std::uint64_t before[16];
  alignas(64) static std::uint64_t after[16];
  alignas(64) static std::uint64_t untouched[16];
  rt::StaticEscape early(&before[3]);  // the page is not registered yet
  rt::RegisterStatic(before, sizeof before, "static_escape_before", nullptr);
  rt::RegisterStatic(after, sizeof after, "static_escape_after", nullptr);
  rt::RegisterStatic(untouched, sizeof untouched, "static_escape_untouched", nullptr);
  rt::StaticEscape late(&after[15]);  // registered already
  Page* b = FindPageByName("static_escape_before");
  Page* a = FindPageByName("static_escape_after");
  Page* u = FindPageByName("static_escape_untouched");
  ASSERT_TRUE(b != nullptr && a != nullptr && u != nullptr);
  EXPECT_TRUE(b->escaped());
  EXPECT_TRUE(a->escaped());
  EXPECT_FALSE(u->escaped());
  Commit();
  before[3] = 7;  // no barrier: only the escape makes these stores visible
  after[15] = 9;
  Commit();
  ASSERT_FALSE(sink->batches.empty());
  std::set<PageId> changed;
  for (const Delta& d : sink->batches.back().deltas) changed.insert(d.page());
  EXPECT_EQ(changed, (std::set<PageId>{b->id(), a->id()}));
}

}  // namespace
}  // namespace mmsb
