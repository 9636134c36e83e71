// ApplyBatchBuilder: what the mirror sync packs, applied by the CPU reference, equals the deltas
// applied on the host; sections stay aligned and tiles line up for pages of every size.
#include "device/apply_batch.h"

#include <cstring>
#include <random>

#include <gtest/gtest.h>

#include "mmsb/kernels.h"

#include "test_util.h"

namespace mmsb {
namespace {

using testing::Bytes;

std::uint8_t* Aligned(Bytes& storage) {
  return reinterpret_cast<std::uint8_t*>((reinterpret_cast<std::uintptr_t>(storage.data()) + 15) &
                                         ~std::uintptr_t{15});
}

TEST(ApplyBatch, PackedBatchEqualsDeltasAppliedOnTheHost) {
  std::mt19937_64 rng(21);
  CpuBackend ref;
  for (int round = 0; round < 30; ++round) {
    const int pages = 1 + static_cast<int>(rng() % 40);
    std::vector<Bytes> before, after, primary, secondary;
    std::vector<Delta> deltas;
    for (int i = 0; i < pages; ++i) {
      const std::size_t size = 1 + rng() % (i % 3 == 0 ? 200 : 20000);
      before.push_back(testing::RandomBytes(rng, size));
      after.push_back(rng() % 3 == 0
                          ? testing::Scatter(rng, before.back())
                          : testing::Mutate(rng, before.back(), 1 + static_cast<int>(rng() % 30)));
      deltas.push_back(Diff(static_cast<PageId>(i + 1), 0, before.back(), after.back()));
    }
    primary = before;
    secondary = before;
    ApplyBatchBuilder b;
    std::size_t dense = 0, images = 0;
    for (int i = 0; i < pages; ++i) {
      const bool with_secondary = i % 2 == 0;
      const std::uint32_t t = b.AddTarget(
          primary[i].data(), with_secondary ? secondary[i].data() : nullptr, before[i].size());
      ASSERT_EQ(t, static_cast<std::uint32_t>(i));
      if (i % 11 == 3) {
        ASSERT_TRUE(b.AddImage(t, after[i].data(), after[i].size()).ok());
        ++images;
      } else {
        ASSERT_TRUE(b.AddDelta(t, deltas[i]).ok());
        dense += !deltas[i].empty() && deltas[i].form() == Delta::Form::kDense;
      }
    }
    Bytes storage(b.PackedSize() + 16);
    std::uint8_t* staging = Aligned(storage);
    const ApplyBatchView v = b.Pack(staging, staging);
    EXPECT_EQ(v.num_dense, dense);
    EXPECT_GE(v.num_sparse, images);
    EXPECT_EQ(v.num_granules % kTileGranules, 0u);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v.masks) % 8, 0u);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v.targets) % 8, 0u);
    ASSERT_TRUE(ref.ApplyBatch(v).ok());
    for (int i = 0; i < pages; ++i) {
      ASSERT_EQ(primary[i], after[i]) << "round " << round << " page " << i;
      ASSERT_EQ(secondary[i], i % 2 == 0 ? after[i] : before[i])
          << "round " << round << " page " << i;
    }
  }
}

TEST(ApplyBatch, DeltaOfAnotherSizeIsRejected) {
  Bytes page(100), other(200, 1), zeros(200, 0);
  ApplyBatchBuilder b;
  const std::uint32_t t = b.AddTarget(page.data(), nullptr, 100);
  const Delta d = Diff(1, 0, zeros, other);
  EXPECT_EQ(b.AddDelta(t, d).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(b.AddImage(t, other.data(), 200).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(b.AddDelta(7, d).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(b.empty());
}

TEST(ApplyBatch, EmptyDeltasAddNothing) {
  Bytes page(100, 3);
  ApplyBatchBuilder b;
  const std::uint32_t t = b.AddTarget(page.data(), nullptr, 100);
  ASSERT_TRUE(b.AddDelta(t, Diff(1, 0, page, page)).ok());
  EXPECT_TRUE(b.empty());
}

TEST(ApplyBatch, BatchesStopShortOfThirtyTwoBitOffsets) {
  ApplyBatchBuilder b;
  EXPECT_TRUE(b.Fits(std::uint64_t{1} << 31, 0));
  EXPECT_FALSE(b.Fits(std::uint64_t{1} << 32, 0));
  EXPECT_FALSE(b.Fits(0, std::uint64_t{1} << 32));
}

}  // namespace
}  // namespace mmsb
