// BlockPool and ByteBuf (runtime/src/query/block_pool.h, query_internal.h): the memory of the
// index's blocks. Growth keeps every byte written, across the pooled sizes and the sizes that get
// a mapping of their own; buffers left behind by growth are reused; a buffer outlives the index
// that made it.
#include <cstdint>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "query/block_pool.h"
#include "query/query_internal.h"

namespace mmsb::query {
namespace {

std::uint8_t Pattern(std::size_t buffer, std::size_t i) {
  return static_cast<std::uint8_t>((buffer * 131 + i * 7 + (i >> 9)) & 0xFF);
}

// Appends to many buffers in turn (as a build appends to its pages' blocks), one growing past the
// largest pooled size, then checks every byte of every buffer.
TEST(QueryBlockPool, InterleavedGrowthKeepsEveryByte) {
  auto pool = std::make_shared<BlockPool>();
  constexpr std::size_t kBuffers = 64;
  std::vector<ByteBuf> bufs;
  for (std::size_t b = 0; b < kBuffers; ++b) bufs.emplace_back(pool);
  std::vector<std::size_t> want(kBuffers);
  for (std::size_t b = 0; b < kBuffers; ++b) want[b] = 100 + b * 997;  // 100 B .. 63 KiB
  want[7] = 5 * BlockPool::kMaxPooled + 123;  // a mapping of its own, grown by mremap
  for (;;) {
    bool any = false;
    for (std::size_t b = 0; b < kBuffers; ++b) {
      const std::size_t at = bufs[b].size();
      if (at >= want[b]) continue;
      any = true;
      const std::size_t n = std::min<std::size_t>(b == 7 ? 4096 : 37, want[b] - at);
      std::uint8_t* p = bufs[b].Reserve(n);
      for (std::size_t i = 0; i < n; ++i) p[i] = Pattern(b, at + i);
      bufs[b].Commit(p + n);
    }
    if (!any) break;
  }
  for (std::size_t b = 0; b < kBuffers; ++b) {
    ASSERT_EQ(bufs[b].size(), want[b]) << b;
    const std::uint8_t* d = bufs[b].data();
    for (std::size_t i = 0; i < want[b]; ++i) ASSERT_EQ(d[i], Pattern(b, i)) << b << " at " << i;
  }
}

TEST(QueryBlockPool, BuffersLeftByGrowthAreReused) {
  BlockPool pool;
  std::uint8_t* a = pool.Grow(nullptr, 0, 0, 300);  // 512 bytes
  ASSERT_NE(a, nullptr);
  a[0] = 42;
  std::uint8_t* b = pool.Grow(a, 512, 1, 600);  // 1 KiB; `a` goes back to its free list
  EXPECT_EQ(b[0], 42);
  std::uint8_t* c = pool.Grow(nullptr, 0, 0, 512);
  EXPECT_EQ(c, a);  // the next 512-byte buffer is the one given back
  EXPECT_EQ(BlockPool::CapacityFor(1), BlockPool::kMinBuffer);
  EXPECT_EQ(BlockPool::CapacityFor(BlockPool::kMinBuffer + 1), 2 * BlockPool::kMinBuffer);
  pool.Free(b, 1024);
  pool.Free(c, 512);
  pool.Free(nullptr, 512);  // ignored
}

// A buffer moved out of a pool's owner (as a rebuild's blocks move into the damaged index) keeps
// the pool alive: its bytes stay readable and it is freed into the pool later.
TEST(QueryBlockPool, ABufferOutlivesTheOwnerOfItsPool) {
  ByteBuf kept;
  {
    auto pool = std::make_shared<BlockPool>();
    ByteBuf b(pool);
    std::uint8_t* p = b.Reserve(10000);
    for (std::size_t i = 0; i < 10000; ++i) p[i] = Pattern(1, i);
    b.Commit(p + 10000);
    kept = std::move(b);
  }
  ASSERT_EQ(kept.size(), 10000u);
  for (std::size_t i = 0; i < 10000; ++i) ASSERT_EQ(kept.data()[i], Pattern(1, i));
  kept.clear();
  EXPECT_TRUE(kept.empty());
  std::uint8_t* p = kept.Reserve(16);  // the pool is still there to allocate from
  p[0] = 1;
  kept.Commit(p + 1);
  EXPECT_EQ(kept.size(), 1u);
}

}  // namespace
}  // namespace mmsb::query
