// The replay's in-place delta parser must agree with DecodeDelta: the same records accepted, the
// same bytes applied. Checked on random deltas of both forms and on every single-byte mutation
// and truncation of some (with the envelope checksum fixed up, so the structural checks are hit).
#include "delta/delta_view.h"

#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <random>

#include <gtest/gtest.h>

#include "mmsb/delta.h"

namespace mmsb::delta_internal {
namespace {

void FixChecksum(std::vector<std::uint8_t>& enc) {
  if (enc.size() < 20) return;
  std::uint64_t len = 0;
  std::memcpy(&len, enc.data() + 4, 8);
  if (len < 20 || len > enc.size()) return;
  const std::uint64_t h = XXH3_64bits(enc.data(), len - 8);
  std::memcpy(enc.data() + len - 8, &h, 8);
}

// Both decoders on `enc`: they must agree on acceptance, and on the applied bytes.
void ExpectAgree(const std::vector<std::uint8_t>& enc, std::uint32_t page_size_hint,
                 const char* what) {
  DeltaView v;
  const Status vs = ParseDeltaView(enc, 1u << 20, true, &v);
  std::size_t consumed = 0;
  auto d = DecodeDelta(enc, &consumed, 1u << 20);
  const bool decode_ok = d.ok() && consumed == enc.size();
  ASSERT_EQ(vs.ok(), decode_ok) << what << ": view says " << vs.ToString() << ", DecodeDelta says "
                                << (d.ok() ? "ok" : d.status().ToString());
  if (!vs.ok()) return;
  EXPECT_EQ(v.page, d->page());
  EXPECT_EQ(v.base_epoch, d->base_epoch());
  EXPECT_EQ(v.page_size, d->page_size());
  EXPECT_EQ(v.changed_bytes, d->changed_bytes());
  std::vector<std::uint8_t> a(v.page_size, 0x5a), b(v.page_size, 0x5a);
  ApplyDeltaView(v, a.data());
  ASSERT_TRUE(d->ApplyTo(b).ok());
  EXPECT_EQ(a, b) << what;
  (void)page_size_hint;
}

TEST(DeltaView, AppliesRandomDeltasExactlyLikeDecodeDelta) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 400; ++i) {
    const std::size_t size = 1 + rng() % 5000;
    std::vector<std::uint8_t> before(size), after;
    for (auto& b : before) b = static_cast<std::uint8_t>(rng());
    after = before;
    const int mode = static_cast<int>(rng() % 3);
    const std::size_t changes = mode == 0 ? 1 + rng() % 8 : mode == 1 ? size / 3 : size;
    for (std::size_t k = 0; k < changes; ++k)
      after[rng() % size] ^= static_cast<std::uint8_t>(1 + rng() % 255);
    Delta d = Diff(1 + rng() % 100, rng() % 50, before, after);
    if (rng() % 2) d.ConvertTo(rng() % 2 ? Delta::Form::kDense : Delta::Form::kSparse);
    const auto enc = EncodeDelta(d);
    DeltaView v;
    ASSERT_TRUE(ParseDeltaView(enc, 1u << 20, true, &v).ok());
    std::vector<std::uint8_t> page = before;
    ApplyDeltaView(v, page.data());
    ASSERT_EQ(page, after) << "delta " << i
                           << (d.form() == Delta::Form::kDense ? " (dense)" : " (sparse)");
    ExpectAgree(enc, static_cast<std::uint32_t>(size), "random");
  }
}

// Replay's recompute reads a logged delta's changed runs from the view: they must be the delta's.
TEST(DeltaView, RunsOfBothFormsAreTheDeltasRuns) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 300; ++i) {
    const std::size_t size = 1 + rng() % 3000;
    std::vector<std::uint8_t> before(size, 0), after(size, 0);
    const std::size_t changes = rng() % 2 ? 1 + rng() % 10 : size / 2;
    for (std::size_t k = 0; k < changes; ++k)
      after[rng() % size] = static_cast<std::uint8_t>(1 + rng() % 255);
    if (rng() % 4 == 0) std::memset(after.data() + rng() % size / 2, 9, size / 4);  // long runs
    Delta d = Diff(1, 0, before, after);
    for (Delta::Form form : {Delta::Form::kSparse, Delta::Form::kDense}) {
      d.ConvertTo(form);
      const auto enc = EncodeDelta(d);
      DeltaView v;
      ASSERT_TRUE(ParseDeltaView(enc, 1u << 20, true, &v).ok());
      std::vector<ByteRun> runs = {{7, 7}};  // appended after what is there
      AppendDeltaViewRuns(v, &runs);
      std::vector<ByteRun> want = {{7, 7}};
      for (const ByteRun& r : d.Runs()) want.push_back(r);
      EXPECT_EQ(runs, want) << "delta " << i
                            << (form == Delta::Form::kDense ? " (dense)" : " (sparse)");
    }
  }
}

TEST(DeltaView, AcceptsExactlyWhatDecodeDeltaAcceptsUnderMutation) {
  std::mt19937_64 rng(2);
  int cases = 0;
  for (Delta::Form form : {Delta::Form::kSparse, Delta::Form::kDense}) {
    std::vector<std::uint8_t> before(61, 0), after(61, 0);
    for (int k = 0; k < 9; ++k) after[rng() % 61] = static_cast<std::uint8_t>(1 + rng() % 200);
    Delta d = Diff(7, 3, before, after);
    d.ConvertTo(form);
    const auto clean = EncodeDelta(d);
    for (std::size_t i = 0; i < clean.size(); ++i) {
      for (std::uint8_t x : {0x01, 0x80, 0xff}) {
        auto bad = clean;
        bad[i] ^= x;
        FixChecksum(bad);
        ExpectAgree(bad, 61, "mutation");
        ++cases;
      }
    }
    for (std::size_t n = 0; n < clean.size(); ++n) {
      std::vector<std::uint8_t> cut(clean.begin(), clean.begin() + static_cast<std::ptrdiff_t>(n));
      DeltaView v;
      EXPECT_FALSE(ParseDeltaView(cut, 1u << 20, true, &v).ok()) << "truncated to " << n;
      ++cases;
    }
  }
  EXPECT_GT(cases, 200);
}

TEST(DeltaView, SkippingTheChecksumStillChecksStructure) {
  std::vector<std::uint8_t> before(100, 0), after(100, 0);
  after[10] = 1;
  auto enc = EncodeDelta(Diff(1, 0, before, after));
  enc[enc.size() - 1] ^= 1;  // checksum only
  DeltaView v;
  EXPECT_FALSE(ParseDeltaView(enc, 1u << 20, true, &v).ok());
  EXPECT_TRUE(ParseDeltaView(enc, 1u << 20, false, &v).ok());
  enc[12] = 0;  // page id 0 (first body varint)
  EXPECT_FALSE(ParseDeltaView(enc, 1u << 20, false, &v).ok());
  EXPECT_FALSE(ParseDeltaView(EncodeDelta(Diff(1, 0, before, after)), 50, true, &v).ok())
      << "page over the cap";
}

// 1 MiB of memory followed by an inaccessible page: a record placed at its end faults when a read
// goes past the record.
class GuardedArea {
 public:
  GuardedArea() : os_page_(static_cast<std::size_t>(sysconf(_SC_PAGESIZE))) {
    void* m = mmap(nullptr, kBytes + os_page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (m == MAP_FAILED) return;
    base_ = static_cast<std::uint8_t*>(m);
    if (mprotect(base_ + kBytes, os_page_, PROT_NONE) != 0) {
      munmap(base_, kBytes + os_page_);
      base_ = nullptr;
    }
  }
  ~GuardedArea() {
    if (base_ != nullptr) munmap(base_, kBytes + os_page_);
  }
  GuardedArea(const GuardedArea&) = delete;
  GuardedArea& operator=(const GuardedArea&) = delete;
  bool ok() const { return base_ != nullptr; }
  // Copies `bytes` to end right at the guard page; null when they do not fit.
  std::uint8_t* Place(const std::vector<std::uint8_t>& bytes) {
    if (bytes.size() > kBytes) return nullptr;
    std::uint8_t* at = base_ + kBytes - bytes.size();
    std::memcpy(at, bytes.data(), bytes.size());
    return at;
  }

 private:
  static constexpr std::size_t kBytes = std::size_t{1} << 20;
  std::size_t os_page_;
  std::uint8_t* base_ = nullptr;
};

// Every dense apply this CPU has (AVX-512 expand/masked store, SSE pshufb expand and blend, the
// portable loop) writes exactly the masked bytes: the same result as Delta::ApplyTo, and nothing
// past the page, at page sizes that are and are not multiples of the 16-byte step and the 64-byte
// mask word, at densities that take every branch (empty words, full words, mixed steps). And none
// reads past the record: each record is parsed and applied from the last bytes before an
// inaccessible page, so a read past its end faults.
TEST(DeltaView, DenseApplyWritesOnlyTheMaskedBytesAtEverySize) {
  GuardedArea area;
  ASSERT_TRUE(area.ok());
  std::mt19937_64 rng(5);
  int cases = 0;
  for (std::size_t size :
       {1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 127, 128, 129, 200, 511, 4096, 4097, 65536}) {
    for (int density : {1, 20, 50, 90, 100}) {
      std::vector<std::uint8_t> before(size), after;
      for (auto& b : before) b = static_cast<std::uint8_t>(rng());
      after = before;
      for (std::size_t i = 0; i < size; ++i) {
        if (static_cast<int>(rng() % 100) < density) after[i] ^= 0x5a;
      }
      // Whole 64-byte words changed and unchanged, so both shortcuts run.
      if (size >= 256) {
        for (std::size_t i = 64; i < 128; ++i) after[i] = before[i] ^ 0x33;
        for (std::size_t i = 128; i < 192; ++i) after[i] = before[i];
      }
      Delta d = Diff(3, 1, before, after);
      d.ConvertTo(Delta::Form::kDense);
      const auto enc = EncodeDelta(d);
      std::uint8_t* rec = area.Place(enc);
      ASSERT_NE(rec, nullptr);
      DeltaView v;
      ASSERT_TRUE(ParseDeltaView({rec, enc.size()}, 1u << 20, true, &v).ok());
      ASSERT_TRUE(v.dense);
      for (DenseApplyPath path :
           {DenseApplyPath::kScalar, DenseApplyPath::kSse, DenseApplyPath::kVbmi2}) {
        if (!DenseApplyPathSupported(path)) continue;
        constexpr std::size_t kGuard = 128;
        std::vector<std::uint8_t> page(size + kGuard, 0xee);
        std::memcpy(page.data(), before.data(), size);
        ApplyDeltaViewDenseForTest(path, v, page.data());
        EXPECT_TRUE(std::equal(page.begin(), page.begin() + static_cast<std::ptrdiff_t>(size),
                               after.begin()))
            << "path " << static_cast<int>(path) << ", size " << size << ", " << density
            << "% changed";
        for (std::size_t g = size; g < page.size(); ++g)
          ASSERT_EQ(page[g], 0xee) << "past the page";
        ++cases;
      }
      std::vector<std::uint8_t> dispatched = before;
      ApplyDeltaView(v, dispatched.data());
      EXPECT_EQ(dispatched, after) << "size " << size;
    }
  }
  EXPECT_GE(cases, 90);
#if defined(__x86_64__)
  EXPECT_TRUE(DenseApplyPathSupported(DenseApplyPath::kSse))
      << "every x86-64 CI machine has SSE4.1";
#endif
}

// Replay's apply thread splits a large dense delta into parts that two threads apply in any
// order: the parts of any split at 64-byte boundaries, applied in shuffled order, give the whole
// delta's bytes, write nothing past their range (the other parts' bytes stay as they were until
// their own part runs), and read nothing past the record (which ends at an inaccessible page).
// A sparse view is applied whole by its part at 0 and not at all by the others.
TEST(DeltaView, PartsOfADeltaInAnyOrderApplyTheWholeDelta) {
  GuardedArea area;
  ASSERT_TRUE(area.ok());
  std::mt19937_64 rng(9);
  int dense_cases = 0;
  for (int i = 0; i < 300; ++i) {
    const std::size_t size = 64 + rng() % 70000;
    std::vector<std::uint8_t> before(size), after;
    for (auto& b : before) b = static_cast<std::uint8_t>(rng());
    after = before;
    const int density = static_cast<int>(rng() % 101);
    for (std::size_t k = 0; k < size; ++k) {
      if (static_cast<int>(rng() % 100) < density)
        after[k] ^= static_cast<std::uint8_t>(1 + k % 255);
    }
    Delta d = Diff(3, 1, before, after);
    if (d.empty()) continue;
    d.ConvertTo(rng() % 4 == 0 ? Delta::Form::kSparse : Delta::Form::kDense);
    const auto enc = EncodeDelta(d);
    std::uint8_t* rec = area.Place(enc);
    ASSERT_NE(rec, nullptr);
    DeltaView v;
    ASSERT_TRUE(ParseDeltaView({rec, enc.size()}, 1u << 20, true, &v).ok());
    // Random cut points at multiples of 64, then the parts in a random order.
    std::vector<std::uint32_t> cuts{0};
    for (std::uint32_t b = 64; b < size; b += 64) {
      if (rng() % 40 == 0) cuts.push_back(b);
    }
    cuts.push_back(static_cast<std::uint32_t>(size));
    std::vector<std::size_t> order(cuts.size() - 1);
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<std::uint8_t> page = before;
    std::vector<bool> applied(order.size(), false);
    const auto holds = [&](const std::vector<std::uint8_t>& want, std::size_t k) {
      return std::equal(page.begin() + cuts[k], page.begin() + cuts[k + 1], want.begin() + cuts[k]);
    };
    for (std::size_t k : order) {
      ApplyDeltaViewPart(v, page.data(), cuts[k], cuts[k + 1]);
      applied[k] = true;
      if (!v.dense) continue;
      // This part's bytes are now the delta's; its neighbours, if not applied yet, are untouched.
      ASSERT_TRUE(holds(after, k)) << "part [" << cuts[k] << ", " << cuts[k + 1] << ") of " << size;
      if (k > 0 && !applied[k - 1]) ASSERT_TRUE(holds(before, k - 1)) << "wrote below its part";
      if (k + 1 < order.size() && !applied[k + 1])
        ASSERT_TRUE(holds(before, k + 1)) << "wrote past its part";
    }
    if (v.dense) ++dense_cases;
    ASSERT_EQ(page, after) << "case " << i << ", size " << size << ", " << cuts.size() - 1
                           << " parts, " << (v.dense ? "dense" : "sparse");
  }
  EXPECT_GE(dense_cases, 150);
}

}  // namespace
}  // namespace mmsb::delta_internal
