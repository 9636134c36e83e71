// Delta representation, diff engine, algebra and codec: property tests over random pages and
// random writes, plus byte-by-byte corruption of encodings.
#include "mmsb/delta.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <random>

#include <gtest/gtest.h>

#include "delta/delta_internal.h"

namespace mmsb {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes RandomPage(std::mt19937_64& rng, std::size_t n) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

// Mutates `b` with a random mix of single-byte, short-run and long-run writes, some of which
// store the value already there.
Bytes Mutate(std::mt19937_64& rng, Bytes b, int writes) {
  for (int i = 0; i < writes && !b.empty(); ++i) {
    const std::size_t off = rng() % b.size();
    const std::size_t kind = rng() % 4;
    const std::size_t len = kind == 0   ? 1
                            : kind == 1 ? 1 + rng() % 8
                            : kind == 2 ? 1 + rng() % 200
                                        : 0;
    for (std::size_t j = off; j < std::min(b.size(), off + len); ++j)
      b[j] = static_cast<std::uint8_t>(rng());
    if (kind == 3) b[off] = b[off];  // same-value store: must not show up
  }
  return b;
}

Bytes Applied(const Delta& d, Bytes img) {
  EXPECT_TRUE(d.ApplyTo(img).ok());
  return img;
}

std::size_t CountDiffering(const Bytes& a, const Bytes& b) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
  return n;
}

const std::size_t kSizes[] = {1, 7, 63, 64, 65, 100, 4096, 4097, 9000, 65536 + 13};

TEST(DeltaDiff, ApplyOfDiffReproducesTheNewImage) {
  std::mt19937_64 rng(1);
  for (std::size_t size : kSizes) {
    for (int trial = 0; trial < 20; ++trial) {
      const Bytes a = RandomPage(rng, size);
      const Bytes b = Mutate(rng, a, trial * 3);
      const Delta d = Diff(7, 3, a, b);
      EXPECT_EQ(Applied(d, a), b) << "size " << size << " trial " << trial;
      EXPECT_EQ(d.changed_bytes(), CountDiffering(a, b)) << "the diff is exact";
      EXPECT_EQ(d.page(), 7u);
      EXPECT_EQ(d.base_epoch(), 3u);
    }
  }
}

TEST(DeltaDiff, SimdAndScalarResultsAreIdentical) {
  std::mt19937_64 rng(2);
  for (std::size_t size : kSizes) {
    for (int trial = 0; trial < 20; ++trial) {
      const Bytes a = RandomPage(rng, size);
      const Bytes b = Mutate(rng, a, trial * 5);
      const Delta simd = Diff(1, 0, a, b);
      const Delta scalar = DiffScalar(1, 0, a, b);
      EXPECT_EQ(simd, scalar);
      EXPECT_EQ(simd.form(), scalar.form());
      EXPECT_EQ(EncodeDelta(simd), EncodeDelta(scalar));
    }
  }
  EXPECT_STRNE(DiffTargetName(), "");
}

TEST(DeltaDiff, StoreOfSameValueYieldsEmptyDelta) {
  std::mt19937_64 rng(3);
  const Bytes a = RandomPage(rng, 4096);
  Bytes b = a;
  for (std::size_t i = 0; i < b.size(); i += 3) b[i] = a[i];
  const Delta d = Diff(1, 0, a, b);
  EXPECT_TRUE(d.empty());
  EXPECT_TRUE(d.Runs().empty());
}

TEST(DeltaDiff, DiffMaskMarksExactlyTheDifferingBytes) {
  std::mt19937_64 rng(4);
  const Bytes a = RandomPage(rng, 1000);
  const Bytes b = Mutate(rng, a, 30);
  std::vector<std::uint64_t> mask((1000 + 63) / 64);
  const std::size_t n = DiffMask(a, b, mask);
  EXPECT_EQ(n, CountDiffering(a, b));
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(((mask[i / 64] >> (i % 64)) & 1) != 0, a[i] != b[i]) << "byte " << i;
  }
}

// Images of 8 MiB and more take the streaming path (non-temporal mask stores): the same masks.
TEST(DeltaDiff, DiffMaskOfImagesLargerThanTheCachesMarksExactlyTheDifferingBytes) {
  std::mt19937_64 rng(6);
  const std::size_t size = (std::size_t{8} << 20) + 100;  // past the threshold, with a tail
  Bytes a(size);
  for (std::size_t i = 0; i < size; i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(&a[i], &v, std::min<std::size_t>(8, size - i));
  }
  Bytes b = a;
  std::vector<std::size_t> changed;
  for (int k = 0; k < 5000; ++k) changed.push_back(rng() % size);
  changed.push_back(0);
  changed.push_back(size - 1);
  for (std::size_t i : changed) b[i] = a[i] ^ 0x81;  // an offset may repeat
  std::vector<std::uint64_t> mask((size + 63) / 64, ~std::uint64_t{0});
  const std::size_t n = DiffMask(a, b, mask);
  EXPECT_EQ(n, CountDiffering(a, b));
  std::size_t bits = 0;
  for (const std::uint64_t m : mask) bits += static_cast<std::size_t>(std::popcount(m));
  EXPECT_EQ(bits, n);
  for (std::size_t i : changed) EXPECT_TRUE((mask[i / 64] >> (i % 64)) & 1) << "byte " << i;
}

TEST(DeltaDiff, DiffGranulesSeesOnlyTouchedGranules) {
  std::mt19937_64 rng(5);
  const std::size_t size = 4096 + 10;
  const Bytes a = RandomPage(rng, size);
  Bytes b = a;
  b[10] ^= 1;    // granule 0
  b[700] ^= 1;   // granule 10
  b[4100] ^= 1;  // the partial last granule (64)
  std::vector<std::uint8_t> touched((size + 63) / 64, 0);
  touched[10] = 1;
  touched[64] = 1;
  const Delta d = DiffGranules(1, 0, a, b, touched);
  EXPECT_EQ(d.Runs(), (std::vector<ByteRun>{{700, 1}, {4100, 1}}));
  std::fill(touched.begin(), touched.end(), 1);
  EXPECT_EQ(DiffGranules(1, 0, a, b, touched), Diff(1, 0, a, b));
}

TEST(DeltaDiff, DiffFromZerosEqualsDiffAgainstAZeroImageAndSkipsAbsentBlocks) {
  std::mt19937_64 rng(6);
  const std::size_t size = 3 * 4096 + 100;  // three 4 KiB blocks and a partial fourth
  Bytes now(size, 0);
  for (std::size_t i = 0; i < size; i += 1 + rng() % 97) now[i] = static_cast<std::uint8_t>(rng());
  const Bytes zeros(size, 0);
  EXPECT_EQ(delta_internal::DiffPageFromZeros(1, 0, now.data(), size, nullptr),
            Diff(1, 0, zeros, now));
  // Blocks marked absent are not read: their bytes are not in the delta.
  const std::uint8_t present[] = {1, 0, 1, 1};
  Bytes expect = now;
  std::fill(expect.begin() + 4096, expect.begin() + 8192, 0);
  EXPECT_EQ(delta_internal::DiffPageFromZeros(1, 0, now.data(), size, present),
            Diff(1, 0, zeros, expect));
  const std::uint8_t tail_absent[] = {1, 1, 1, 0};
  std::copy(now.begin(), now.end(), expect.begin());
  std::fill(expect.begin() + 3 * 4096, expect.end(), 0);
  EXPECT_EQ(delta_internal::DiffPageFromZeros(1, 0, now.data(), size, tail_absent),
            Diff(1, 0, zeros, expect));
}

// The builder gathers a change of a few short runs inline and moves to its scratch buffers
// past that room (more runs, more bytes, or a run that would not fit a Delta's inline block).
// Every count of runs and bytes around the boundary, joined and disjoint, built run by run and
// by masks, must give the runs and bytes that went in.
// The small derived page's diff (Bus::DiffDerived) builds its delta from granule masks in place:
// it must be the delta DeltaBuilder builds from the same masks, runs, bytes and form, on both sides
// of the inline block's limit (0..6 runs, short and long, joined across granules or not), in the
// general form and, for a page of one granule, the one-granule form.
TEST(DeltaFromMasks, EqualsTheBuildersDeltaAroundTheInlineRoom) {
  std::mt19937_64 rng(29);
  for (const std::uint32_t size : {1u, 8u, 40u, 63u, 64u, 65u, 100u, 128u, 200u, 256u}) {
    const std::size_t granules = GranuleCount(size);
    for (int trial = 0; trial < 400; ++trial) {
      const Bytes now = RandomPage(rng, size);
      std::vector<std::uint64_t> masks(granules, 0);
      const int runs = static_cast<int>(rng() % 7);
      for (int r = 0; r < runs; ++r) {
        const std::uint32_t len = 1 + static_cast<std::uint32_t>(rng() % (trial % 3 == 0 ? 48 : 9));
        const std::uint32_t off = static_cast<std::uint32_t>(rng() % size);
        for (std::uint32_t i = off; i < std::min(size, off + len); ++i)
          masks[i / 64] |= std::uint64_t{1} << (i % 64);
      }
      DeltaBuilder b(5, 7, size);
      for (std::size_t g = 0; g < granules; ++g) {
        if (masks[g] != 0)
          b.AddMask64(static_cast<std::uint32_t>(g * 64), masks[g], now.data() + g * 64);
      }
      const Delta want = b.Finish();
      Delta got;
      ByteRun runs_out[delta_internal::kInlineRuns];
      const std::uint32_t inline_runs =
          delta_internal::DeltaFromMasks(&got, 5, 7, size, masks.data(), now.data(), runs_out);
      ASSERT_EQ(got, want) << "size " << size << " trial " << trial;
      // The runs it reports (the derived undo save walks them) are exactly the delta's, whenever
      // it wrote the delta inline; it reports none for a delta the builder made.
      if (inline_runs != 0) {
        ASSERT_EQ(std::vector<ByteRun>(runs_out, runs_out + inline_runs), got.Runs());
        ASSERT_EQ(got.form(), Delta::Form::kSparse);
      } else {
        ASSERT_TRUE(got.empty() || got.form() == Delta::Form::kDense ||
                    got.Runs().size() > delta_internal::kInlineRuns ||
                    got.Runs().size() * sizeof(ByteRun) + got.changed_bytes() > 48)
            << "size " << size << " trial " << trial;
      }
      ASSERT_EQ(got.form(), want.form()) << "size " << size << " trial " << trial;
      ASSERT_EQ(got.Runs(), want.Runs());
      ASSERT_EQ(Bytes(got.bytes().begin(), got.bytes().end()),
                Bytes(want.bytes().begin(), want.bytes().end()));
      ASSERT_EQ(EncodeDelta(got), EncodeDelta(want));
      if (granules == 1) {
        // The one-granule form (the granule count a constant) makes the same delta and runs.
        Delta one;
        ByteRun one_runs[delta_internal::kInlineRuns];
        const std::uint32_t one_inline =
            delta_internal::DeltaFromMasks<1>(&one, 5, 7, size, masks.data(), now.data(), one_runs);
        ASSERT_EQ(one, want) << "size " << size << " trial " << trial;
        ASSERT_EQ(one_inline, inline_runs);
        ASSERT_EQ(std::vector<ByteRun>(one_runs, one_runs + one_inline),
                  std::vector<ByteRun>(runs_out, runs_out + inline_runs));
      }
    }
  }
}

// SmallCopy (the derived diff's copies of a few bytes) copies exactly n bytes for every length it
// chooses a width for and past them, from any alignment, and writes nothing around them.
TEST(SmallCopy, CopiesExactlyTheBytesAskedForAtEveryLength) {
  std::mt19937_64 rng(37);
  for (std::size_t n = 0; n <= 130; ++n) {
    for (std::size_t align = 0; align < 8; ++align) {
      const Bytes src = RandomPage(rng, 160);
      Bytes dst(200, 0xee);
      SmallCopy(dst.data() + 16 + align, src.data() + align, n);
      for (std::size_t i = 0; i < dst.size(); ++i) {
        const bool inside = i >= 16 + align && i < 16 + align + n;
        ASSERT_EQ(dst[i], inside ? src[i - 16] : 0xee)
            << "n " << n << " align " << align << " i " << i;
      }
    }
  }
}

// The word-at-a-time mask of the small page's diff against a byte loop, for every length up to a
// granule and changes of one bit in any byte position (each byte's high and low bits included).
TEST(ByteDiffMask, MatchesAByteLoopForEveryLengthAndBit) {
  std::mt19937_64 rng(31);
  for (std::size_t n = 0; n <= 64; ++n) {
    for (int trial = 0; trial < 200; ++trial) {
      Bytes a = RandomPage(rng, 64), b = a;
      const int flips = static_cast<int>(rng() % 10);
      for (int k = 0; k < flips; ++k) b[rng() % 64] ^= std::uint8_t(1u << (rng() % 8));
      if (trial % 4 == 0) b[rng() % 64] ^= 0x80;
      std::uint64_t want = 0;
      for (std::size_t j = 0; j < n; ++j) want |= std::uint64_t{a[j] != b[j]} << j;
      ASSERT_EQ(delta_internal::ByteDiffMask(a.data(), b.data(), n), want)
          << "n " << n << " trial " << trial;
    }
  }
}

TEST(GranuleDiffMask, MatchesAByteLoopForEveryBitAndUnalignedGranules) {
  std::mt19937_64 rng(37);
  Bytes a_buf(64 + 15), b_buf(64 + 15);
  for (int trial = 0; trial < 4000; ++trial) {
    // Any alignment: page granules are aligned, the snapshot and twin need not be.
    std::uint8_t* a = a_buf.data() + rng() % 16;
    std::uint8_t* b = b_buf.data() + rng() % 16;
    for (int j = 0; j < 64; ++j) a[j] = static_cast<std::uint8_t>(rng());
    std::memcpy(b, a, 64);
    const int flips = trial % 3 == 0 ? 64 : static_cast<int>(rng() % 12);
    for (int k = 0; k < flips; ++k) b[rng() % 64] ^= std::uint8_t(1u << (rng() % 8));
    if (trial % 5 == 0) b[63] ^= 0x80;  // the top bit of the mask, from the last lane
    std::uint64_t want = 0;
    for (int j = 0; j < 64; ++j) want |= std::uint64_t{a[j] != b[j]} << j;
    ASSERT_EQ(delta_internal::GranuleDiffMask(a, b), want) << "trial " << trial;
    ASSERT_EQ(delta_internal::ByteDiffMask(a, b, 64), want) << "trial " << trial;
  }
}

TEST(DeltaBuilderRoom, ChangesAroundTheInlineRoomKeepEveryRunAndByte) {
  std::mt19937_64 rng(17);
  for (std::uint32_t runs = 1; runs <= 7; ++runs) {
    for (std::uint32_t len = 1; len <= 48; ++len) {
      for (int joined = 0; joined < 2; ++joined) {
        const std::uint32_t size = 4096;
        Bytes page = RandomPage(rng, size);
        std::vector<ByteRun> want;
        Bytes want_bytes;
        DeltaBuilder b(3, 9, size);
        std::uint32_t off = 5;
        for (std::uint32_t r = 0; r < runs; ++r) {
          b.AddRun(off, page.data() + off, len);
          if (joined && !want.empty()) {
            want.back().length += len;  // adjacent runs merge into one
          } else {
            want.push_back({off, len});
          }
          want_bytes.insert(want_bytes.end(), page.begin() + off, page.begin() + off + len);
          off += len + (joined ? 0 : 3);
        }
        Delta d = b.Finish();
        ASSERT_EQ(d.Runs(), want) << runs << " runs of " << len << (joined ? " joined" : "");
        ASSERT_EQ(Bytes(d.bytes().begin(), d.bytes().end()), want_bytes);
        EXPECT_EQ(d.page(), 3u);
        EXPECT_EQ(d.base_epoch(), 9u);
        // A builder is reusable after Finish, and a moved delta keeps its bytes.
        b.AddRun(1, page.data() + 1, 2);
        Delta again = b.Finish();
        EXPECT_EQ(again.Runs(), (std::vector<ByteRun>{{1, 2}}));
        Delta moved = std::move(d);
        EXPECT_EQ(moved.Runs(), want);
        EXPECT_EQ(Bytes(moved.bytes().begin(), moved.bytes().end()), want_bytes);
      }
    }
  }
  // Through the diff: masks of one granule, from one changed byte to all 64.
  for (int bits = 1; bits <= 64; ++bits) {
    Bytes before = RandomPage(rng, 64), now = before;
    for (int j = 0; j < bits; ++j) now[(j * 7) % 64] ^= 0x5a;
    const Delta d = Diff(1, 0, before, now);
    EXPECT_EQ(d, DiffScalar(1, 0, before, now)) << bits;
    Bytes applied = before;
    ASSERT_TRUE(d.ApplyTo(applied).ok());
    EXPECT_EQ(applied, now) << bits;
  }
}

TEST(DeltaForm, SparseForFewRunsDenseForManyScatteredBytes) {
  Bytes a(4096, 0), b = a;
  b[100] = 1;
  EXPECT_EQ(Diff(1, 0, a, b).form(), Delta::Form::kSparse);
  for (std::size_t i = 0; i < b.size(); i += 2) b[i] = 1;  // 2048 one-byte runs
  const Delta dense = Diff(1, 0, a, b);
  EXPECT_EQ(dense.form(), Delta::Form::kDense);
  Delta sparse = dense;
  sparse.ConvertTo(Delta::Form::kSparse);
  EXPECT_LT(dense.EncodedSize(), sparse.EncodedSize()) << "the smaller form is chosen";
  EXPECT_EQ(sparse, dense) << "both forms describe the same change";
  EXPECT_EQ(Applied(sparse, a), b);
  EXPECT_EQ(sparse.Mask(), dense.Mask());
}

TEST(DeltaForm, EncodedSizeMatchesEncoding) {
  std::mt19937_64 rng(6);
  for (int trial = 0; trial < 50; ++trial) {
    const Bytes a = RandomPage(rng, 1 + rng() % 5000);
    const Delta d = Diff(rng() % 1000 + 1, rng() % 100000, a, Mutate(rng, a, trial));
    EXPECT_EQ(d.EncodedSize(), EncodeDelta(d).size());
  }
}

TEST(DeltaForm, SparseOnePercentChangeEncodesAtLeastFiveTimesSmaller) {
  std::mt19937_64 rng(7);
  const Bytes a = RandomPage(rng, 4096);
  Bytes b = a;
  for (int i = 0; i < 41; ++i) b[rng() % 4096] ^= 0xff;  // ~1% of bytes, scattered
  const Delta d = Diff(1, 0, a, b);
  EXPECT_GE(4096.0 / static_cast<double>(EncodeDelta(d).size()), 5.0);
}

TEST(DeltaFromRuns, RejectsBadRunsAndMergesAdjacentOnes) {
  EXPECT_EQ(Delta::FromRuns(1, 0, 100, {{90, 20}}, Bytes(20)).status().code(),
            StatusCode::kInvalidDelta);
  EXPECT_EQ(Delta::FromRuns(1, 0, 100, {{10, 5}, {12, 5}}, Bytes(10)).status().code(),
            StatusCode::kInvalidDelta);
  EXPECT_EQ(Delta::FromRuns(1, 0, 100, {{10, 5}}, Bytes(4)).status().code(),
            StatusCode::kInvalidDelta);
  EXPECT_EQ(Delta::FromRuns(1, 0, 100, {{10, 0}}, Bytes()).status().code(),
            StatusCode::kInvalidDelta);
  auto d = Delta::FromRuns(1, 0, 100, {{10, 5}, {15, 5}}, Bytes(10, 9));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->Runs(), (std::vector<ByteRun>{{10, 10}}));
}

TEST(DeltaAlgebra, ChainEqualsApplyingBothInOrder) {
  std::mt19937_64 rng(8);
  for (std::size_t size : kSizes) {
    for (int trial = 0; trial < 20; ++trial) {
      const Bytes a = RandomPage(rng, size);
      const Bytes b = Mutate(rng, a, trial);
      const Bytes c = Mutate(rng, b, trial + 1);
      const Delta d1 = Diff(5, 1, a, b);
      const Delta d2 = Diff(5, 2, b, c);
      auto both = Chain(d1, d2);
      ASSERT_TRUE(both.ok());
      EXPECT_EQ(Applied(*both, a), c);
      EXPECT_EQ(both->base_epoch(), 1u);
      // Composition keeps every byte either delta wrote (not only those differing from a).
      for (const ByteRun& r : d1.Runs()) {
        for (std::uint32_t i = r.offset; i < r.offset + r.length; ++i) {
          EXPECT_TRUE(both->Mask()[i / 8] & (1u << (i % 8)));
        }
      }
    }
  }
}

TEST(DeltaAlgebra, ChainIsAssociative) {
  std::mt19937_64 rng(9);
  const Bytes a = RandomPage(rng, 3000);
  const Bytes b = Mutate(rng, a, 10), c = Mutate(rng, b, 10), d = Mutate(rng, c, 10);
  const Delta d1 = Diff(1, 0, a, b), d2 = Diff(1, 0, b, c), d3 = Diff(1, 0, c, d);
  EXPECT_EQ(*Chain(*Chain(d1, d2), d3), *Chain(d1, *Chain(d2, d3)));
  // Compose (deprecated) is the same operation with its arguments in function-composition order.
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
  EXPECT_EQ(*Compose(d3, *Compose(d2, d1)), *Chain(*Chain(d1, d2), d3));
#pragma clang diagnostic pop
}

TEST(DeltaAlgebra, ChainRejectsDifferentPages) {
  const Bytes a(64, 0), b(64, 1);
  EXPECT_EQ(Chain(Diff(1, 0, a, b), Diff(2, 0, a, b)).status().code(), StatusCode::kInvalidDelta);
  const Bytes c(65, 1), z(65, 0);
  EXPECT_EQ(Chain(Diff(1, 0, a, b), Diff(1, 0, z, c)).status().code(), StatusCode::kInvalidDelta);
}

TEST(DeltaAlgebra, InvertUndoesAndIsExact) {
  std::mt19937_64 rng(10);
  for (std::size_t size : kSizes) {
    for (int trial = 0; trial < 20; ++trial) {
      const Bytes a = RandomPage(rng, size);
      const Bytes b = Mutate(rng, a, trial * 2);
      const Delta d = Diff(3, 0, a, b);
      auto inv = Invert(d, a);
      ASSERT_TRUE(inv.ok());
      EXPECT_EQ(Applied(*inv, b), a);
      EXPECT_EQ(*inv, Diff(3, 0, b, a)) << "inverse of an exact delta is the exact reverse diff";
    }
  }
  EXPECT_EQ(Invert(Diff(1, 0, Bytes(8), Bytes(8, 1)), Bytes(9)).status().code(),
            StatusCode::kInvalidDelta);
}

TEST(DeltaAlgebra, ApplyToWrongSizeFails) {
  const Delta d = Diff(1, 0, Bytes(64), Bytes(64, 1));
  Bytes small(32);
  EXPECT_EQ(d.ApplyTo(small).code(), StatusCode::kInvalidDelta);
}

TEST(DeltaCodec, RoundTripsBothFormsByteForByte) {
  std::mt19937_64 rng(11);
  for (std::size_t size : kSizes) {
    for (int trial = 0; trial < 10; ++trial) {
      const Bytes a = RandomPage(rng, size);
      Delta d = Diff(rng() % 100000 + 1, rng(), a, Mutate(rng, a, trial * 7));
      for (auto form : {Delta::Form::kSparse, Delta::Form::kDense}) {
        d.ConvertTo(form);
        const Bytes enc = EncodeDelta(d);
        std::size_t used = 0;
        auto back = DecodeDelta(enc, &used);
        ASSERT_TRUE(back.ok()) << back.status().ToString();
        EXPECT_EQ(used, enc.size());
        EXPECT_EQ(*back, d);
        EXPECT_EQ(back->form(), form);
        EXPECT_EQ(EncodeDelta(*back), enc);
      }
    }
  }
}

TEST(DeltaCodec, ConcatenatedRecordsDecodeOneAtATime) {
  std::mt19937_64 rng(12);
  const Bytes a = RandomPage(rng, 500);
  const Delta d1 = Diff(1, 0, a, Mutate(rng, a, 3)), d2 = Diff(2, 0, a, Mutate(rng, a, 30));
  Bytes stream;
  EncodeDeltaTo(d1, stream);
  EncodeDeltaTo(d2, stream);
  std::size_t used = 0;
  ASSERT_EQ(*DecodeDelta(stream, &used), d1);
  EXPECT_EQ(*DecodeDelta(std::span(stream).subspan(used)), d2);
}

// LevelDB log_test style: every single-byte corruption and every truncation is detected.
TEST(DeltaCodec, EveryFlippedByteIsDetected) {
  std::mt19937_64 rng(13);
  const Bytes a = RandomPage(rng, 300);
  for (auto form : {Delta::Form::kSparse, Delta::Form::kDense}) {
    Delta d = Diff(9, 4, a, Mutate(rng, a, 12));
    d.ConvertTo(form);
    const Bytes enc = EncodeDelta(d);
    for (std::size_t i = 0; i < enc.size(); ++i) {
      for (std::uint8_t flip : {0x01, 0x80, 0xff}) {
        Bytes bad = enc;
        bad[i] ^= flip;
        auto r = DecodeDelta(bad);
        EXPECT_FALSE(r.ok()) << "flip 0x" << std::hex << int(flip) << " at byte " << std::dec << i;
      }
    }
  }
}

TEST(DeltaCodec, EveryTruncationIsDetected) {
  std::mt19937_64 rng(14);
  const Bytes a = RandomPage(rng, 300);
  const Bytes enc = EncodeDelta(Diff(9, 4, a, Mutate(rng, a, 12)));
  for (std::size_t n = 0; n < enc.size(); ++n) {
    auto r = DecodeDelta(std::span(enc).first(n));
    ASSERT_FALSE(r.ok()) << "length " << n;
    EXPECT_TRUE(r.status().IsCorruption()) << "length " << n << ": " << r.status().ToString();
  }
}

TEST(DeltaCodec, ZeroedRegionsAreDetected) {
  std::mt19937_64 rng(15);
  const Bytes a = RandomPage(rng, 300);
  const Bytes enc = EncodeDelta(Diff(9, 4, a, Mutate(rng, a, 12)));
  for (std::size_t i = 0; i + 4 <= enc.size(); ++i) {
    Bytes bad = enc;
    if (std::all_of(bad.begin() + i, bad.begin() + i + 4, [](auto v) { return v == 0; })) continue;
    std::fill(bad.begin() + i, bad.begin() + i + 4, 0);
    EXPECT_FALSE(DecodeDelta(bad).ok()) << "zeroed at " << i;
  }
}

TEST(DeltaCodec, OversizedPageIsRejectedBeforeAllocating) {
  const Bytes a(4096), b(4096, 1);
  const Bytes enc = EncodeDelta(Diff(1, 0, a, b));
  auto r = DecodeDelta(enc, nullptr, /*max_page_size=*/1024);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("out of range"), std::string::npos);
}

TEST(DeltaCodec, ErrorsNameWhatIsWrong) {
  const Bytes enc = EncodeDelta(Diff(1, 0, Bytes(64), Bytes(64, 2)));
  Bytes bad = enc;
  bad[20] ^= 1;
  auto r = DecodeDelta(bad);
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("checksum"), std::string::npos);
  bad = enc;
  bad[1] = 99;
  EXPECT_NE(DecodeDelta(bad).status().message().find("version 99"), std::string::npos);
}

TEST(DeltaCodec, RandomGarbageNeverDecodesOrCrashes) {
  std::mt19937_64 rng(16);
  for (int i = 0; i < 20000; ++i) {
    Bytes junk = RandomPage(rng, rng() % 64);
    if (!junk.empty() && rng() % 2) junk[0] = 0xD7;
    if (junk.size() > 1 && rng() % 2) junk[1] = 1;
    EXPECT_FALSE(DecodeDelta(junk).ok());
    EXPECT_FALSE(DecodePageImage(junk).ok());
  }
}

TEST(PageImageCodec, RoundTripsAndDetectsCorruption) {
  std::mt19937_64 rng(17);
  PageImage img{42, 17, Location::kUnified, RandomPage(rng, 777)};
  const Bytes enc = EncodePageImage(img);
  std::size_t used = 0;
  auto back = DecodePageImage(enc, &used);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(used, enc.size());
  EXPECT_EQ(back->id, 42u);
  EXPECT_EQ(back->epoch, 17u);
  EXPECT_EQ(back->location, Location::kUnified);
  EXPECT_EQ(back->bytes, img.bytes);
  for (std::size_t i = 0; i < enc.size(); i += 7) {
    Bytes bad = enc;
    bad[i] ^= 0x10;
    EXPECT_FALSE(DecodePageImage(bad).ok()) << "byte " << i;
  }
  for (std::size_t n = 0; n < enc.size(); n += 13)
    EXPECT_FALSE(DecodePageImage(std::span(enc).first(n)).ok());
  EXPECT_FALSE(DecodePageImage(enc, nullptr, 100).ok()) << "oversized";
  EXPECT_FALSE(DecodeDelta(enc).ok()) << "a page image is not a delta";
}

}  // namespace
}  // namespace mmsb
