// The build record's units: the unit notes the plugin writes into objects
// (mmsb/formats/unit_note.h), the build record that lists them (docs/SerializationSpec.md,
// "Provenance" and "Unit notes"), and the query index that keeps them per run.
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/formats/unit_note.h"
#include "mmsb/mmsb.h"
#include "mmsb/query.h"

#include "log/log_records.h"
#include "query_test_util.h"

namespace mmsb {
namespace {

using testing::TempDir;

// One ELF note as a linker lays it out: header in host order, name and descriptor padded to
// `align`.
void AppendNote(std::vector<std::uint8_t>& out, std::string_view name, std::uint32_t type,
                std::string_view desc, std::size_t align = 4) {
  auto put32 = [&](std::uint32_t v) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    out.insert(out.end(), p, p + 4);
  };
  auto pad = [&] {
    while (out.size() % align != 0) out.push_back(0);
  };
  put32(static_cast<std::uint32_t>(name.size() + 1));
  put32(static_cast<std::uint32_t>(desc.size()));
  put32(type);
  out.insert(out.end(), name.begin(), name.end());
  out.push_back(0);
  pad();
  out.insert(out.end(), desc.begin(), desc.end());
  pad();
}

TEST(BuildUnits, UnitNotesAreFoundAmongOtherNotes) {
  std::vector<std::uint8_t> seg;
  AppendNote(seg, "GNU", 3, std::string(20, '\x5a'));  // NT_GNU_BUILD_ID
  AppendNote(seg, "MMSB", unit_note::kType, unit_note::EncodeDesc(0x1122334455667788, "src/a.cc"));
  AppendNote(seg, "MMSB", 7, unit_note::EncodeDesc(0x99, "not a unit note type"));
  AppendNote(seg, "XMSB", unit_note::kType, unit_note::EncodeDesc(0x98, "another vendor"));
  AppendNote(seg, "MMSB", unit_note::kType, unit_note::EncodeDesc(0, "hash 0: none"));
  AppendNote(seg, "MMSB", unit_note::kType, "short");  // shorter than the hash
  AppendNote(seg, "MMSB", unit_note::kType, unit_note::EncodeDesc(0xabc, "b.cc"));
  std::vector<unit_note::Unit> units;
  unit_note::ParseNotes(seg, 4, &units);
  ASSERT_EQ(units.size(), 2u);
  EXPECT_EQ(units[0].source, "src/a.cc");
  EXPECT_EQ(units[0].content_hash, 0x1122334455667788u);
  EXPECT_EQ(units[1].source, "b.cc");
  EXPECT_EQ(units[1].content_hash, 0xabcu);
  // The descriptor's hash is little-endian whatever the host.
  EXPECT_EQ(unit_note::EncodeDesc(0x0102, "")[0], '\x02');

  // A segment of 8-aligned notes (as .note.gnu.property makes them).
  std::vector<std::uint8_t> seg8;
  AppendNote(seg8, "MMSB", unit_note::kType, unit_note::EncodeDesc(0x55, "c.cc"), 8);
  AppendNote(seg8, "MMSB", unit_note::kType, unit_note::EncodeDesc(0x66, "d.cc"), 8);
  units.clear();
  unit_note::ParseNotes(seg8, 8, &units);
  ASSERT_EQ(units.size(), 2u);
  EXPECT_EQ(units[1].source, "d.cc");
}

TEST(BuildUnits, DamagedNoteSegmentStopsWithoutReadingPastIt) {
  std::vector<std::uint8_t> seg;
  AppendNote(seg, "MMSB", unit_note::kType, unit_note::EncodeDesc(0x42, "a.cc"));
  const std::size_t first = seg.size();
  AppendNote(seg, "MMSB", unit_note::kType, unit_note::EncodeDesc(0x43, "b.cc"));
  // Every cut of the second note yields the first note only; a huge size field likewise.
  for (std::size_t cut = first; cut < seg.size(); ++cut) {
    std::vector<std::uint8_t> part(seg.begin(), seg.begin() + static_cast<std::ptrdiff_t>(cut));
    std::vector<unit_note::Unit> units;
    unit_note::ParseNotes(part, 4, &units);
    ASSERT_EQ(units.size(), 1u) << "cut at " << cut;
  }
  for (std::size_t field : {0, 4}) {
    std::vector<std::uint8_t> bad = seg;
    const std::uint32_t huge = 0xfffffff0u;
    std::memcpy(bad.data() + first + field, &huge, 4);
    std::vector<unit_note::Unit> units;
    unit_note::ParseNotes(bad, 4, &units);
    EXPECT_EQ(units.size(), 1u);
  }
}

TEST(BuildUnits, BuildRecordWithUnitsRoundTrips) {
  LogBuild b{"00ff", "/bin/app", {{"src/a.cc", 0x8000000000000001}, {"b.cc", 7}}};
  std::vector<std::uint8_t> buf;
  log::EncodeBuild(b, buf);
  LogBuild back;
  ASSERT_TRUE(log::DecodeBuild(buf, &back).ok());
  EXPECT_EQ(back.build_id, "00ff");
  ASSERT_EQ(back.units.size(), 2u);
  EXPECT_EQ(back.units[0].source, "src/a.cc");
  EXPECT_EQ(back.units[0].content_hash, 0x8000000000000001u);
  EXPECT_EQ(back.units[1].content_hash, 7u);
  std::vector<std::uint8_t> cut(buf.begin(), buf.end() - 1);
  EXPECT_FALSE(log::DecodeBuild(cut, &back).ok());
  // The count (after two 4-byte lengths and their strings) beyond what the payload holds.
  std::vector<std::uint8_t> big = buf;
  const std::size_t count_at = 4 + 4 + 4 + 8;
  big[count_at + 3] = 0x10;
  EXPECT_FALSE(log::DecodeBuild(big, &back).ok());
}

TEST(BuildUnits, IndexKeepsEachRunsUnitsAcrossSaveAndLoad) {
  TempDir dir;
  const LogBuild first{"aa", "/bin/app", {{"a.cc", 1}, {"b.cc", 2}}};
  const LogBuild second{"bb", "/bin/app", {{"a.cc", 1}, {"b.cc", 3}}};
  {
    auto w = LogWriter::Open(dir.path());
    ASSERT_TRUE(w.ok());
    LogBatch b = (*w)->NewBatch();
    for (int run = 0; run < 2; ++run) {
      b.Clear();
      b.AddRaw(static_cast<std::uint8_t>(LogRecordType::kRunStart), [run] {
        std::vector<std::uint8_t> p;
        log::EncodeRunStart({static_cast<Epoch>(run), 0, 1, 2}, p);
        return p;
      }());
      b.AddBuild(run == 0 ? first : second);
      b.AddPageCreate({static_cast<PageId>(run + 1), 8, Location::kCpu, false, "", ""});
      ASSERT_TRUE((*w)->Commit(b).ok());
    }
    ASSERT_TRUE((*w)->Close().ok());
  }
  for (int open = 0; open < 2; ++open) {  // built from the log, then loaded from query.idx
    SCOPED_TRACE(open == 0 ? "built" : "loaded");
    auto index = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    const query::BuildInfo b1 = (*index)->BuildAt(1);
    const query::BuildInfo b2 = (*index)->BuildAt(2);
    EXPECT_EQ(b1.build_id, "aa");
    ASSERT_EQ(b1.units.size(), 2u);
    EXPECT_EQ(b1.units[1].source, "b.cc");
    EXPECT_EQ(b1.units[1].content_hash, 2u);
    EXPECT_EQ(b2.build_id, "bb");
    ASSERT_EQ(b2.units.size(), 2u);
    EXPECT_EQ(b2.units[1].content_hash, 3u);
  }
}

}  // namespace
}  // namespace mmsb
