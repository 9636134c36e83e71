#include <gtest/gtest.h>

#include "bus_fixture.h"

namespace mmsb {
namespace {

using testing::BusTest;

class VerifyTest : public BusTest {
 protected:
  void SetUp() override { StartBus({.verify = true}); }
};

TEST_F(VerifyTest, DeliberatelyUntrackedWriteIsReportedWithFieldName) {
  TypeDescriptor t{"Particles",
                   8192,
                   4,
                   {{"x", 0, 4096, ScalarKind::kF32, 4, {1024}, ""},
                    {"v", 4096, 4096, ScalarKind::kF32, 4, {1024}, ""}}};
  auto type = RegisterType(t);
  ASSERT_TRUE(type.ok());
  Page* p = NewPage(8192, {.type = *type});
  Commit();
  auto* v = reinterpret_cast<float*>(p->data() + 4096);
  *rt::w(&v[1]) = 2.0f;  // tracked
  v[100] = 1.5f;         // untracked: no barrier (and in another granule than v[1])
  Commit();
  ASSERT_EQ(misses.size(), 1u);
  EXPECT_EQ(misses[0].page, p->id());
  EXPECT_EQ(misses[0].field, "Particles.v[100]");
  EXPECT_EQ(misses[0].offset, 4096u + 100 * 4 + 2);  // 1.5f only changes the two high bytes
  EXPECT_EQ(GetStats().verify_misses, 2u);
  // The committed delta is still exact: verify mode uses the full diff.
  ASSERT_EQ(sink->batches.back().deltas.size(), 1u);
  EXPECT_EQ(sink->batches.back().deltas[0].changed_bytes(), 1u + 2u);  // 2.0f: one byte; 1.5f: two
  EXPECT_EQ(sink->batches.back().misses.size(), 1u);
}

TEST_F(VerifyTest, FullyTrackedWorkloadHasNoMisses) {
  Page* p = NewPage(4096);
  for (int i = 0; i < 10; ++i) {
    *rt::w(&p->data()[i * 97]) = static_cast<std::uint8_t>(i + 1);
    Commit();
  }
  EXPECT_TRUE(misses.empty());
  EXPECT_EQ(GetStats().verify_misses, 0u);
  EXPECT_EQ(GetStats().verify_commits, 10u);
}

TEST(VerifyEnv, EnvironmentVariableEnablesVerifyMode) {
  stop();
  setenv("MMSB_VERIFY", "1", 1);
  std::vector<VerifyMiss> seen;
  Options o;
  o.arena_bytes = std::size_t{1} << 28;
  o.on_verify_miss = [&](const VerifyMiss& m) { seen.push_back(m); };
  ASSERT_TRUE(start(o).ok());
  unsetenv("MMSB_VERIFY");
  auto p = CreatePage(64);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(commit().ok());
  (*p)->data()[3] = 1;
  ASSERT_TRUE(commit().ok());
  EXPECT_EQ(seen.size(), 1u);
  stop();
}

}  // namespace
}  // namespace mmsb
