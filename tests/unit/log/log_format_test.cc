// Framing and payload codecs: round trips, and that every truncation or bit flip is rejected.
#include "log/log_format.h"

#include <gtest/gtest.h>

#include "log/log_records.h"

namespace mmsb::log {
namespace {

TEST(LogFormat, FileHeaderRoundTrips) {
  FileHeader h;
  h.log_id = 0x1234567890abcdefull;
  h.seq = 7;
  h.base_epoch = 42;
  h.base_page_id = 99;
  std::uint8_t buf[kFileHeaderSize];
  EncodeFileHeader(h, buf);
  FileHeader back;
  ASSERT_TRUE(DecodeFileHeader({buf, sizeof buf}, "x.seg", &back).ok());
  EXPECT_EQ(back.log_id, h.log_id);
  EXPECT_EQ(back.seq, 7u);
  EXPECT_EQ(back.base_epoch, 42u);
  EXPECT_EQ(back.base_page_id, 99u);
  EXPECT_FALSE(back.checkpoint);
}

TEST(LogFormat, EveryFileHeaderBitFlipIsCorruption) {
  FileHeader h;
  h.log_id = 5;
  std::uint8_t buf[kFileHeaderSize];
  EncodeFileHeader(h, buf);
  for (std::size_t i = 0; i < kFileHeaderSize; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::uint8_t copy[kFileHeaderSize];
      std::memcpy(copy, buf, sizeof copy);
      copy[i] ^= static_cast<std::uint8_t>(1u << bit);
      FileHeader back;
      Status s = DecodeFileHeader({copy, sizeof copy}, "x.seg", &back);
      EXPECT_FALSE(s.ok()) << "byte " << i << " bit " << bit;
    }
  }
}

TEST(LogFormat, NewerMajorVersionIsUnsupportedNotCorruption) {
  FileHeader h;
  h.major = 2;
  std::uint8_t buf[kFileHeaderSize];
  EncodeFileHeader(h, buf);
  FileHeader back;
  Status s = DecodeFileHeader({buf, sizeof buf}, "x.seg", &back);
  EXPECT_TRUE(s.IsUnsupported()) << s.ToString();
  EXPECT_NE(s.message().find("x.seg:8"), std::string::npos) << s.message();
}

TEST(LogFormat, RecordHeaderBindsLengthTypeAndLogId) {
  std::vector<std::uint8_t> out;
  const std::uint8_t payload[] = {1, 2, 3, 4, 5};
  AppendRecord(out, 77, 4, payload);
  ASSERT_EQ(out.size(), kRecordHeaderSize + 5);
  RecordHeader h;
  ASSERT_TRUE(ParseRecordHeader(out.data(), 77, &h));
  EXPECT_EQ(h.length, 5u);
  EXPECT_EQ(h.type, 4);
  EXPECT_TRUE(PayloadMatches(h, {out.data() + kRecordHeaderSize, 5}));
  EXPECT_FALSE(ParseRecordHeader(out.data(), 78, &h)) << "another log's id must not verify";
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::vector<std::uint8_t> bad = out;
    bad[i] ^= 0x10;
    RecordHeader hb;
    const bool ok = ParseRecordHeader(bad.data(), 77, &hb) &&
                    PayloadMatches(hb, {bad.data() + kRecordHeaderSize, 5});
    EXPECT_FALSE(ok) << "flip at byte " << i << " went unnoticed";
  }
}

// A reader's cache of header hashes (RecordReader) answers as the uncached check does, for valid
// headers of many shapes and logs and for every bit flipped in them, whatever the cache held.
TEST(LogFormat, CachedHeaderCheckAgreesWithTheUncachedOne) {
  HeaderHashCache cache;
  std::vector<std::vector<std::uint8_t>> records;
  const std::uint8_t payload[300] = {};
  for (std::uint64_t log_id : {77u, 78u}) {
    for (std::uint8_t type : {4, 5, 12, 15, 4 + 64}) {
      for (std::size_t len : {0u, 5u, 29u, 37u, 150u, 157u, 300u}) {
        std::vector<std::uint8_t> out;
        AppendRecord(out, log_id, type, {payload, len});
        records.push_back(std::move(out));
      }
    }
  }
  for (int round = 0; round < 2; ++round) {  // the second round finds the shapes cached
    for (const auto& r : records) {
      for (std::uint64_t log_id : {77u, 78u}) {
        for (std::size_t bit = 0; bit <= kRecordHeaderSize * 8; ++bit) {
          std::vector<std::uint8_t> h = r;
          if (bit < kRecordHeaderSize * 8) h[bit / 8] ^= static_cast<std::uint8_t>(1u << bit % 8);
          RecordHeader plain, cached;
          const bool a = ParseRecordHeader(h.data(), log_id, &plain);
          const bool b = ParseRecordHeader(h.data(), log_id, &cached, cache);
          ASSERT_EQ(a, b) << "bit " << bit << " log " << log_id;
          if (a) {
            EXPECT_EQ(plain.hash, cached.hash);
            EXPECT_EQ(plain.length, cached.length);
            EXPECT_EQ(plain.type, cached.type);
          }
        }
      }
    }
  }
}

// Every prefix of an encoded payload shorter than the whole must fail to decode, without crashing.
template <class Decode>
void ExpectEveryTruncationRejected(const std::vector<std::uint8_t>& full, Decode decode) {
  for (std::size_t n = 0; n < full.size(); ++n) {
    std::vector<std::uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_FALSE(decode(std::span<const std::uint8_t>(cut)).ok())
        << "prefix of " << n << " bytes decoded";
  }
  std::vector<std::uint8_t> longer = full;
  longer.push_back(0);
  EXPECT_FALSE(decode(std::span<const std::uint8_t>(longer)).ok()) << "trailing byte accepted";
}

TEST(LogRecords, PageCreateRoundTripsAndRejectsTruncation) {
  LogPageCreate in{12, 4096, Location::kCpu, true, "_ZN3app11g_particlesE", "Particles"};
  std::vector<std::uint8_t> enc;
  EncodePageCreate(in, enc);
  LogPageCreate out;
  ASSERT_TRUE(DecodePageCreate(enc, &out).ok());
  EXPECT_EQ(out.id, 12u);
  EXPECT_EQ(out.size, 4096u);
  EXPECT_TRUE(out.is_static);
  EXPECT_EQ(out.name, in.name);
  EXPECT_EQ(out.type_name, "Particles");
  ExpectEveryTruncationRejected(enc, [](std::span<const std::uint8_t> s) {
    LogPageCreate r;
    return DecodePageCreate(s, &r);
  });
}

TEST(LogRecords, TypeDescriptorRoundTripsAndIsValidated) {
  TypeDescriptor t;
  t.name = "Particles";
  t.size = 8 * 4 + 8;
  t.align = 8;
  t.fields.push_back({"x", 0, 16, ScalarKind::kF32, 4, {4}, ""});
  t.fields.push_back({"v", 16, 16, ScalarKind::kF32, 4, {2, 2}, ""});
  t.fields.push_back({"step", 32, 8, ScalarKind::kU64, 8, {}, ""});
  std::vector<std::uint8_t> enc;
  EncodeTypeDescriptor(t, enc);
  TypeDescriptor back;
  ASSERT_TRUE(DecodeTypeDescriptor(enc, &back).ok());
  EXPECT_EQ(back.name, "Particles");
  ASSERT_EQ(back.fields.size(), 3u);
  EXPECT_EQ(back.fields[1].extents, (std::vector<std::uint32_t>{2, 2}));
  EXPECT_EQ(back.fields[2].kind, ScalarKind::kU64);
  ExpectEveryTruncationRejected(enc, [](std::span<const std::uint8_t> s) {
    TypeDescriptor r;
    return DecodeTypeDescriptor(s, &r);
  });
  // A layout whose field runs past the record is rejected even with a valid encoding.
  t.fields[2].offset = 36;
  enc.clear();
  EncodeTypeDescriptor(t, enc);
  Status s = DecodeTypeDescriptor(enc, &back);
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
}

TEST(LogRecords, HugeCountsAreRejectedBeforeAllocating) {
  // A type descriptor claiming four billion fields in a 20-byte payload.
  std::vector<std::uint8_t> enc = {1, 0, 0, 0, 'T', 8, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
  TypeDescriptor t;
  Status s = DecodeTypeDescriptor(enc, &t);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("field count"), std::string::npos) << s.message();
}

TEST(LogRecords, CommitEdgeRecomputeEventMarkerRunStartRoundTrip) {
  std::vector<std::uint8_t> enc;
  EncodeCommit({9, 123456789, 3, 40}, enc);
  LogCommit c;
  ASSERT_TRUE(DecodeCommit(enc, &c).ok());
  EXPECT_EQ(c.epoch, 9u);
  EXPECT_EQ(c.record_count, 3u);
  EXPECT_EQ(c.page_id_high, 40u);
  ExpectEveryTruncationRejected(enc, [](std::span<const std::uint8_t> s) {
    LogCommit r;
    return DecodeCommit(s, &r);
  });

  enc.clear();
  LogEdgeChange e{EdgeOp::kRemove,
                  {3, 4, EdgeKind::kProjection, {8, 16, 32}, DerivedPolicy::kRecomputeOnReplay}};
  EncodeEdgeChange(e, enc);
  LogEdgeChange eb;
  ASSERT_TRUE(DecodeEdgeChange(enc, &eb).ok());
  EXPECT_EQ(eb.op, EdgeOp::kRemove);
  EXPECT_EQ(eb.edge.kind, EdgeKind::kProjection);
  EXPECT_EQ(eb.edge.projection.dst_offset, 32u);
  EXPECT_EQ(eb.edge.policy, DerivedPolicy::kRecomputeOnReplay);
  ExpectEveryTruncationRejected(enc, [](std::span<const std::uint8_t> s) {
    LogEdgeChange r;
    return DecodeEdgeChange(s, &r);
  });
  enc.clear();
  EncodeEdgeChange({EdgeOp::kAdd, {3, 4, EdgeKind::kUser, {}, DerivedPolicy::kRecomputeOnReplay}},
                   enc);
  EXPECT_EQ(DecodeEdgeChange(enc, &eb).code(), StatusCode::kCorruption)
      << "replay cannot run a user function";

  enc.clear();
  EncodeRecompute({12}, enc);
  LogRecompute rc;
  ASSERT_TRUE(DecodeRecompute(enc, &rc).ok());
  EXPECT_EQ(rc.pages, 12u);
  ExpectEveryTruncationRejected(enc, [](std::span<const std::uint8_t> s) {
    LogRecompute r;
    return DecodeRecompute(s, &r);
  });
  enc[4] = 1;  // the reserved u32
  EXPECT_FALSE(DecodeRecompute(enc, &rc).ok());

  enc.clear();
  const std::uint8_t ev[] = {0xde, 0xad};
  EncodeEvent(5, ev, enc);
  Epoch epoch = 0;
  std::span<const std::uint8_t> bytes;
  ASSERT_TRUE(DecodeEvent(enc, &epoch, &bytes).ok());
  EXPECT_EQ(epoch, 5u);
  ASSERT_EQ(bytes.size(), 2u);
  EXPECT_EQ(bytes[1], 0xad);

  enc.clear();
  EncodeCheckpointMarker({17, "ckpt-00000000000000000017.ckpt"}, enc);
  LogCheckpointMarker m;
  ASSERT_TRUE(DecodeCheckpointMarker(enc, &m).ok());
  EXPECT_EQ(m.epoch, 17u);
  enc.clear();
  EncodeCheckpointMarker({17, "../etc/passwd"}, enc);
  EXPECT_FALSE(DecodeCheckpointMarker(enc, &m).ok())
      << "a marker must not point outside the log directory";

  enc.clear();
  EncodeRunStart({10, 20, 30, 40}, enc);
  LogRunStart rs;
  ASSERT_TRUE(DecodeRunStart(enc, &rs).ok());
  EXPECT_EQ(rs.page_id_base, 20u);
  EXPECT_EQ(rs.pid, 40u);
}

TEST(LogRecords, ReservedBitsMustBeZero) {
  std::vector<std::uint8_t> enc;
  EncodeCommit({9, 1, 3, 40}, enc);
  enc[20] = 1;  // the reserved u32
  LogCommit c;
  EXPECT_FALSE(DecodeCommit(enc, &c).ok());
}

}  // namespace
}  // namespace mmsb::log
