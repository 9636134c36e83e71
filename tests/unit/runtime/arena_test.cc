// Arena (runtime/src/arena/arena.h): size classes, lazy zeroing of recycled slots, large blocks
// returned to the OS, the twin and shadow found by offset, owner lookup, and the capacity that
// MMSB_ARENA_BYTES overrides.
#include "arena/arena.h"

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
