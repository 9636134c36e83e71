// Status, Expected, and the helpers around them (runtime/include/mmsb/status.h, mmsb/types.h).
#include "mmsb/status.h"

#include <string>

#include <gtest/gtest.h>

#include "mmsb/types.h"

namespace mmsb {
namespace {

Expected<int> Parse(const std::string& s) {
  if (s.empty()) return InvalidArgument("empty");
  return std::stoi(s);
}

// Returns the doubled value, or the error of the first failing parse.
Expected<int> ParseTwiceAndAdd(const std::string& a, const std::string& b) {
  MMSB_ASSIGN_OR_RETURN(int x, Parse(a));
  MMSB_ASSIGN_OR_RETURN(auto y, Parse(b));  // two on neighbouring lines: distinct temporaries
  return x + y;
}

Status AssignIntoExisting(const std::string& a, int* out) {
  int v = -1;
  MMSB_ASSIGN_OR_RETURN(v, Parse(a));
  *out = v;
  return Status::Ok();
}

TEST(Status, EachPredicateMatchesOnlyItsOwnCode) {
  const Status all[] = {NotFound(""),      InvalidDelta(""), InvalidArgument(""),
                        Corruption(""),    IOError(""),      Unsupported(""),
                        GraphCycle(""),    OutOfMemory(""),  FailedPrecondition(""),
                        AlreadyExists(""), Internal("")};
  for (const Status& s : all) {
    const int hits = s.IsNotFound() + s.IsInvalidDelta() + s.IsInvalidArgument() +
                     s.IsCorruption() + s.IsIOError() + s.IsUnsupported() + s.IsGraphCycle() +
                     s.IsOutOfMemory() + s.IsFailedPrecondition() + s.IsAlreadyExists() +
                     s.IsInternal();
    EXPECT_EQ(hits, 1) << s.ToString();
    EXPECT_FALSE(s.ok());
  }
  EXPECT_FALSE(Status::Ok().IsNotFound());
}

#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
TEST(Status, MergedCodesKeepTheirOldNamesAsAliases) {
  EXPECT_TRUE(PageNotFound("page 7").IsNotFound());
  EXPECT_TRUE(GpuMemory("device full").IsOutOfMemory());
  EXPECT_TRUE(SerializationError("bad varint").IsCorruption());
  EXPECT_TRUE(UnsupportedLocation("no backend").IsUnsupported());
  EXPECT_EQ(StatusCode::kPageNotFound, StatusCode::kNotFound);
  EXPECT_EQ(StatusCode::kGpuMemory, StatusCode::kOutOfMemory);
  EXPECT_EQ(StatusCode::kSerialization, StatusCode::kCorruption);
  EXPECT_EQ(StatusCode::kUnsupportedLocation, StatusCode::kUnsupported);
  EXPECT_STREQ(StatusCodeName(StatusCode::kPageNotFound), "not_found");
}
#pragma clang diagnostic pop

TEST(Status, AssignOrReturnYieldsTheValueOrTheFirstError) {
  EXPECT_EQ(ParseTwiceAndAdd("2", "40").value(), 42);
  const Expected<int> bad = ParseTwiceAndAdd("2", "");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsInvalidArgument());
  int out = 0;
  EXPECT_TRUE(AssignIntoExisting("9", &out).ok());
  EXPECT_EQ(out, 9);
  EXPECT_TRUE(AssignIntoExisting("", &out).IsInvalidArgument());
  EXPECT_EQ(out, 9);
}

TEST(GranuleCount, CoversEveryByteWithPartialLastGranule) {
  EXPECT_EQ(GranuleCount(0), 0u);
  EXPECT_EQ(GranuleCount(1), 1u);
  EXPECT_EQ(GranuleCount(kGranuleSize), 1u);
  EXPECT_EQ(GranuleCount(kGranuleSize + 1), 2u);
  EXPECT_EQ(GranuleCount(std::uint64_t{1} << 40), (std::uint64_t{1} << 40) / kGranuleSize);
}

}  // namespace
}  // namespace mmsb
