// Arena (runtime/src/arena/arena.h): size classes, lazy zeroing of recycled slots, large blocks
// returned to the OS, the twin and shadow found by offset, owner lookup, the capacity that
// MMSB_ARENA_BYTES overrides, and the placement next to another range with one shadow map over
// both (what lets the barrier check one range for heap and static pages).
#include "arena/arena.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>

namespace mmsb {
namespace {

class ArenaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto arena = Arena::Create(std::size_t{64} << 20);
    ASSERT_TRUE(arena.ok()) << arena.status().ToString();
    arena_.reset(*arena);
  }

  Arena::Block Allocate(std::size_t size, bool zeroed) {
    auto block = arena_->Allocate(size, zeroed);
    EXPECT_TRUE(block.ok()) << block.status().ToString();
    return block.ok() ? *block : Arena::Block{};
  }

  static bool AllZero(const Arena::Block& b) {
    for (std::size_t i = 0; i < b.capacity; ++i) {
      if (b.data[i] != 0) return false;
    }
    return true;
  }

  std::unique_ptr<Arena> arena_;
};

TEST(ArenaClasses, EverySmallSizeGetsTheSmallestClassThatHoldsIt) {
  for (std::size_t size = 1; size <= Arena::kSmallMax + 1; ++size) {
    int expected = -1;
    for (int c = 0; c < Arena::kNumSmallClasses; ++c) {
      if (Arena::ClassSize(c) >= size) {
        expected = c;
        break;
      }
    }
    ASSERT_EQ(Arena::ClassFor(size), expected) << "size " << size;
  }
  EXPECT_EQ(Arena::ClassFor(std::size_t{1} << 40), -1);
}

TEST_F(ArenaTest, FreshSmallStorageIsZeroAndItsClassSized) {
  const Arena::Block b = Allocate(100, /*zeroed=*/true);
  ASSERT_NE(b.data, nullptr);
  EXPECT_EQ(b.capacity, 128u);
  EXPECT_EQ(b.size_class, Arena::ClassFor(100));
  EXPECT_TRUE(b.zero);
  EXPECT_TRUE(AllZero(b));
  EXPECT_TRUE(arena_->Contains(b.data));
  EXPECT_TRUE(arena_->Contains(b.data + b.capacity - 1));
}

TEST_F(ArenaTest, DirtySlotIsHandedBackAsIsUnlessZeroedStorageIsAskedFor) {
  Arena::Block a = Allocate(64, /*zeroed=*/true);
  std::memset(a.data, 0xab, a.capacity);
  arena_->Free(a, /*may_be_nonzero=*/true);

  // The same slot comes back (the free list is last in, first out), not zeroed: the caller did
  // not ask, and zeroing would be a write to every byte of every recycled page.
  Arena::Block b = Allocate(64, /*zeroed=*/false);
  ASSERT_EQ(b.data, a.data);
  EXPECT_FALSE(b.zero);
  EXPECT_EQ(b.data[0], 0xab);
  arena_->Free(b, /*may_be_nonzero=*/true);

  Arena::Block c = Allocate(64, /*zeroed=*/true);
  ASSERT_EQ(c.data, a.data);
  EXPECT_TRUE(c.zero);
  EXPECT_TRUE(AllZero(c));
}

TEST_F(ArenaTest, CleanSlotIsReusedWithoutZeroing) {
  Arena::Block a = Allocate(256, /*zeroed=*/true);
  arena_->Free(a, /*may_be_nonzero=*/false);
  Arena::Block b = Allocate(256, /*zeroed=*/false);
  ASSERT_EQ(b.data, a.data);
  EXPECT_TRUE(b.zero) << "a slot freed clean is known zero";
  EXPECT_TRUE(AllZero(b));
}

TEST_F(ArenaTest, LargeStorageIsPageGranularAndComesBackZeroAfterFree) {
  Arena::Block a = Allocate(Arena::kSmallMax + 1, /*zeroed=*/false);
  ASSERT_NE(a.data, nullptr);
  EXPECT_EQ(a.size_class, Arena::kLargeClass);
  EXPECT_EQ(a.capacity, 2 * Arena::kLargeAlign);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data) % Arena::kLargeAlign, 0u);
  EXPECT_TRUE(a.zero);
  std::memset(a.data, 0x5a, a.capacity);
  std::memset(arena_->TwinOf(a.data), 0x5a, a.capacity);
  arena_->Free(a, /*may_be_nonzero=*/true);

  // Freed large storage goes back to the OS (data and twin), so it is zero when reused.
  Arena::Block b = Allocate(2 * Arena::kLargeAlign, /*zeroed=*/false);
  ASSERT_EQ(b.data, a.data);
  EXPECT_TRUE(b.zero);
  EXPECT_TRUE(AllZero(b));
  const std::uint8_t* twin = arena_->TwinOf(b.data);
  for (std::size_t i = 0; i < b.capacity; ++i) ASSERT_EQ(twin[i], 0) << "twin byte " << i;
}

TEST_F(ArenaTest, ALargeFreeBlockIsSplitForASmallerRequest) {
  const std::size_t page = Arena::kLargeAlign;  // 2 pages and more are large storage
  Arena::Block a = Allocate(4 * page, /*zeroed=*/false);
  arena_->Free(a, /*may_be_nonzero=*/false);
  Arena::Block b = Allocate(2 * page, /*zeroed=*/false);
  Arena::Block c = Allocate(2 * page, /*zeroed=*/false);
  EXPECT_EQ(b.data, a.data);
  EXPECT_EQ(b.capacity, 2 * page);
  EXPECT_EQ(c.data, a.data + 2 * page) << "the tail of the split block";
  EXPECT_EQ(c.capacity, 2 * page);
}

TEST_F(ArenaTest, TwinAndShadowAreFoundByOffset) {
  Arena::Block a = Allocate(4096, /*zeroed=*/true);
  Arena::Block b = Allocate(4096, /*zeroed=*/true);
  ASSERT_NE(a.data, b.data);
  EXPECT_EQ(arena_->TwinOf(b.data) - arena_->TwinOf(a.data), b.data - a.data);
  // One shadow byte per 64-byte granule.
  EXPECT_EQ(arena_->ShadowOf(a.data + 64), arena_->ShadowOf(a.data) + 1);
  EXPECT_EQ(arena_->ShadowOf(a.data + 63), arena_->ShadowOf(a.data));
  EXPECT_EQ(arena_->ShadowOf(a.data),
            arena_->shadow() + (reinterpret_cast<std::uintptr_t>(a.data) - arena_->base()) / 64);
  int local = 0;
  EXPECT_FALSE(arena_->Contains(&local));
}

TEST_F(ArenaTest, FreeClearsTheBlocksShadowMarks) {
  Arena::Block a = Allocate(512, /*zeroed=*/true);
  std::memset(arena_->ShadowOf(a.data), 1, a.capacity / 64);
  arena_->Free(a, /*may_be_nonzero=*/true);
  Arena::Block b = Allocate(512, /*zeroed=*/false);
  ASSERT_EQ(b.data, a.data);
  for (std::size_t g = 0; g < b.capacity / 64; ++g)
    EXPECT_EQ(arena_->ShadowOf(b.data)[g], 0) << "granule " << g;
}

TEST_F(ArenaTest, OwnerIsFoundFromAnyInteriorAddressUntilCleared) {
  int small_owner = 0;
  int large_owner = 0;
  Arena::Block small = Allocate(200, /*zeroed=*/true);
  Arena::Block large = Allocate(3 * Arena::kLargeAlign, /*zeroed=*/true);
  arena_->SetOwner(small, &small_owner);
  arena_->SetOwner(large, &large_owner);
  EXPECT_EQ(arena_->FindOwner(small.data), &small_owner);
  EXPECT_EQ(arena_->FindOwner(small.data + 199), &small_owner);
  EXPECT_EQ(arena_->FindOwner(large.data), &large_owner);
  EXPECT_EQ(arena_->FindOwner(large.data + large.capacity - 1), &large_owner);
  arena_->ClearOwner(small);
  arena_->ClearOwner(large);
  EXPECT_EQ(arena_->FindOwner(small.data + 10), nullptr);
  EXPECT_EQ(arena_->FindOwner(large.data + 10), nullptr);
}

// MMSB_ARENA_BYTES for the duration of a test, restored after it.
class ScopedArenaBytes {
 public:
  explicit ScopedArenaBytes(const char* value) {
    if (const char* old = std::getenv("MMSB_ARENA_BYTES")) old_ = old;
    if (value == nullptr) {
      ::unsetenv("MMSB_ARENA_BYTES");
    } else {
      ::setenv("MMSB_ARENA_BYTES", value, 1);
    }
  }
  ~ScopedArenaBytes() {
    if (old_) {
      ::setenv("MMSB_ARENA_BYTES", old_->c_str(), 1);
    } else {
      ::unsetenv("MMSB_ARENA_BYTES");
    }
  }

 private:
  std::optional<std::string> old_;
};

// One shadow map over the data and the near range: the byte for address a is
// cover_shadow()[(a - cover_base()) >> 6] for data and near addresses alike, and the data's own
// shadow is that map's sub-range.
void ExpectOneShadowCovers(const Arena& arena, Arena::Near near) {
  ASSERT_TRUE(arena.covers_near());
  const std::uintptr_t lo = arena.cover_base();
  const std::uintptr_t hi = lo + arena.cover_span();
  EXPECT_LE(lo, arena.base());
  EXPECT_GE(hi, arena.base() + arena.capacity());
  EXPECT_LE(lo, near.lo);
  EXPECT_GE(hi, near.hi);
  // Whole granules: barriers compare a granule index with the span's granule count and test
  // alignment on the offset from the base (mmsb/barrier.h, g_region).
  EXPECT_EQ(lo % 64, 0u);
  EXPECT_EQ(arena.cover_span() % 64, 0u);
  EXPECT_LE(arena.cover_span(), arena.capacity() + (near.hi - near.lo) + Arena::kNearGap)
      << "the gap between the two ranges is bounded, so is the shadow map's address space";
  EXPECT_EQ(arena.shadow(), arena.cover_shadow() + ((arena.base() - lo) >> 6));
  const auto* data = reinterpret_cast<const std::uint8_t*>(arena.base());
  EXPECT_EQ(arena.ShadowOf(data + 4096), arena.cover_shadow() + ((arena.base() + 4096 - lo) >> 6));
  // The shadow is mapped and writable at both ends: the first granule and the near range's last.
  arena.cover_shadow()[0] = 1;
  arena.cover_shadow()[((near.hi - 64) - lo) >> 6] = 1;
}

// A stand-in for the program image: a mapped range the arena must not overlap.
struct Mapped {
  explicit Mapped(std::size_t n) : bytes(n) {
    void* m = mmap(nullptr, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    at = m == MAP_FAILED ? nullptr : static_cast<std::uint8_t*>(m);
  }
  ~Mapped() {
    if (at != nullptr) munmap(at, bytes);
  }
  Arena::Near Range(std::size_t skip = 0) const {
    return {reinterpret_cast<std::uintptr_t>(at) + skip,
            reinterpret_cast<std::uintptr_t>(at) + bytes};
  }
  std::size_t bytes;
  std::uint8_t* at;
};

TEST(ArenaNear, DataIsReservedBelowTheNearRangeUnderOneShadowMap) {
  Mapped image(std::size_t{2} << 20);
  ASSERT_NE(image.at, nullptr);
  const Arena::Near near = image.Range();
  auto arena = Arena::Create(std::size_t{64} << 20, near);
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  std::unique_ptr<Arena> a(*arena);
  ExpectOneShadowCovers(*a, near);
  // Below when that space was free (the usual case), never overlapping it.
  EXPECT_TRUE(a->base() + a->capacity() <= near.lo || a->base() >= near.hi);
}

TEST(ArenaNear, WhenTheSpaceBelowIsTakenTheDataStillLandsNearUnderOneShadowMap) {
  // The near range is the top 1 MiB of a mapping, so the space right below it is taken.
  const std::size_t capacity = std::size_t{64} << 20;
  Mapped image(capacity + (std::size_t{1} << 20));
  ASSERT_NE(image.at, nullptr);
  const Arena::Near near = image.Range(capacity);
  auto arena = Arena::Create(capacity, near);
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  std::unique_ptr<Arena> a(*arena);
  EXPECT_TRUE(a->base() + a->capacity() <= image.Range().lo || a->base() >= near.hi)
      << "an address in use is never replaced";
  ExpectOneShadowCovers(*a, near);
}

TEST(ArenaNear, ANearRangeWithUnalignedEndsIsCoveredInWholeGranules) {
  Mapped image(std::size_t{2} << 20);
  ASSERT_NE(image.at, nullptr);
  Arena::Near near = image.Range(3);
  near.hi -= 5;
  auto arena = Arena::Create(std::size_t{64} << 20, near);
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  std::unique_ptr<Arena> a(*arena);
  ExpectOneShadowCovers(*a, near);
}

TEST(ArenaNear, WithoutANearRangeTheShadowCoversTheDataAlone) {
  auto arena = Arena::Create(std::size_t{64} << 20);
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  std::unique_ptr<Arena> a(*arena);
  EXPECT_FALSE(a->covers_near());
  EXPECT_EQ(a->cover_base(), a->base());
  EXPECT_EQ(a->cover_span(), a->capacity());
  EXPECT_EQ(a->cover_shadow(), a->shadow());
}

TEST(ArenaCapacity, TheEnvironmentOverridesTheConfiguredCapacity) {
  {
    ScopedArenaBytes unset(nullptr);
    EXPECT_EQ(*Arena::CapacityFromEnv(12345), 12345u);
  }
  {
    ScopedArenaBytes bytes("65536");
    EXPECT_EQ(*Arena::CapacityFromEnv(1), 65536u);
  }
  {
    ScopedArenaBytes kib("12k");
    EXPECT_EQ(*Arena::CapacityFromEnv(1), 12u << 10);
  }
  {
    ScopedArenaBytes gib("4G");
    EXPECT_EQ(*Arena::CapacityFromEnv(1), std::size_t{4} << 30);
  }
}

TEST(ArenaCapacity, ABadValueIsAnErrorThatNamesTheVariable) {
  for (const char* bad : {"0", "4X", "G", "-1", "99999999999999999T"}) {
    ScopedArenaBytes value(bad);
    auto capacity = Arena::CapacityFromEnv(1);
    ASSERT_FALSE(capacity.ok()) << bad;
    EXPECT_EQ(capacity.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(capacity.status().message().find("MMSB_ARENA_BYTES"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace mmsb
