// Record framing on the commit path: the cached header hash (HeaderHashCache, which LogBatch and
// the writer's commit records use) frames
// every record exactly as the uncached FillRecordHeader does, whatever the sequence of shapes and
// log ids, and the in-place commit-info encoder writes the compact layout the decoder reads.
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/log_writer.h"

#include "log/log_format.h"
#include "log/log_records.h"

namespace mmsb::log {
namespace {

// Walks `bytes` as framed records and checks each header against FillRecordHeader's.
void ExpectFramedAsUncached(std::span<const std::uint8_t> bytes, std::uint64_t log_id,
                            std::size_t records) {
  std::size_t at = 0, n = 0;
  while (at + kRecordHeaderSize <= bytes.size()) {
    RecordHeader h;
    ASSERT_TRUE(ParseRecordHeader(bytes.data() + at, log_id, &h)) << "record " << n;
    const std::span<const std::uint8_t> payload(bytes.data() + at + kRecordHeaderSize, h.length);
    EXPECT_TRUE(PayloadMatches(h, payload)) << "record " << n;
    std::uint8_t expect[kRecordHeaderSize];
    FillRecordHeader(expect, log_id, h.type, payload);
    EXPECT_EQ(0, std::memcmp(expect, bytes.data() + at, kRecordHeaderSize)) << "record " << n;
    at += kRecordHeaderSize + h.length;
    ++n;
  }
  EXPECT_EQ(at, bytes.size());
  EXPECT_EQ(n, records);
}

TEST(RecordFraming, RepeatedAndChangingShapesFrameAsUncached) {
  std::mt19937_64 rng(7);
  LogBatch b(0x1234);
  std::size_t records = 0;
  for (int i = 0; i < 400; ++i) {
    // Shapes that repeat (the same type and length), share a cache slot (types 4 and 12, 7 and
    // 15) or change length under one type.
    static constexpr std::uint8_t kTypes[] = {4, 5, 7, 8, 12, 15, 20, 200};
    const std::uint8_t type = kTypes[rng() % std::size(kTypes)];
    std::vector<std::uint8_t> payload(rng() % 3 == 0 ? rng() % 300 : 7);
    for (auto& c : payload) c = static_cast<std::uint8_t>(rng());
    b.AddRaw(type, payload);
    ++records;
  }
  ExpectFramedAsUncached(b.bytes(), 0x1234, records);
}

TEST(RecordFraming, ChangedLogIdReframesWithItsOwnHashes) {
  LogBatch b(1);
  const std::vector<std::uint8_t> payload = {1, 2, 3, 4, 5, 6, 7};
  b.AddRaw(15, payload);
  b.set_log_id(2);        // re-frames the first record
  b.AddRaw(15, payload);  // same shape: a hash cached under log id 1 must not be used
  LogBatch other(1);      // another log's batch on this thread, same shape
  other.AddRaw(15, payload);
  ExpectFramedAsUncached(other.bytes(), 1, 1);
  ExpectFramedAsUncached(b.bytes(), 2, 2);
  b.Clear();
  b.set_log_id(3);
  b.AddRaw(15, payload);
  ExpectFramedAsUncached(b.bytes(), 3, 1);
}

TEST(RecordFraming, HeaderHashCacheFollowsLogIdAndShape) {
  HeaderHashCache cache;
  std::uint8_t h[kRecordHeaderSize];
  for (std::uint64_t log_id : {1ull, 1ull, 9ull, 1ull}) {
    for (std::uint32_t len : {0u, 7u, 7u, 32u, 0u}) {
      for (std::uint8_t type : {0, 5, 13, 15}) {
        FillRecordHeaderPrefix(h, type, len);
        EXPECT_EQ(cache.Hash(h, log_id), HeaderHash(h, log_id))
            << "log " << log_id << " len " << len << " type " << int(type);
      }
    }
  }
}

TEST(RecordFraming, InPlaceCommitInfoDecodesToItself) {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 200; ++i) {
    LogCommitInfo c;
    c.state_hash = rng() % 2 ? rng() | 1 : 0;
    c.transactions.resize(rng() % 4);
    for (LogCommitTransaction& t : c.transactions) {
      t.site = static_cast<std::uint32_t>(rng() >> (rng() % 64));
      t.thread = static_cast<std::uint32_t>(rng() >> (rng() % 64));
      t.sequence = rng() >> (rng() % 64);
    }
    std::vector<std::uint8_t> out = {0xAA};  // encoding appends
    EncodeCommitInfo(c, out);
    ASSERT_EQ(out.size(), 1 + CommitInfoSize(c));
    LogCommitInfo back;
    ASSERT_TRUE(DecodeCommitInfo({out.data() + 1, out.size() - 1}, &back).ok());
    EXPECT_EQ(back.state_hash, c.state_hash);
    ASSERT_EQ(back.transactions.size(), c.transactions.size());
    for (std::size_t k = 0; k < c.transactions.size(); ++k) {
      EXPECT_EQ(back.transactions[k].site, c.transactions[k].site);
      EXPECT_EQ(back.transactions[k].thread, c.transactions[k].thread);
      EXPECT_EQ(back.transactions[k].sequence, c.transactions[k].sequence);
    }
  }
  // One transaction, as a commit writes it: flags, count, site, thread, sequence.
  LogCommitInfo one;
  one.transactions = {{1, 1, 300}};
  EXPECT_EQ(CommitInfoSize(one), 1u + 1 + 1 + 1 + 2);
}

TEST(RecordFraming, BatchCommitInfoIsTheCompactRecord) {
  LogBatch b(77);
  LogCommitInfo c;
  c.transactions = {{3, 2, 123456}};
  b.AddCommitInfo(c);
  ExpectFramedAsUncached(b.bytes(), 77, 1);
  RecordHeader h;
  ASSERT_TRUE(ParseRecordHeader(b.bytes().data(), 77, &h));
  EXPECT_EQ(h.type, kCompactCommitInfoType);
  LogCommitInfo back;
  ASSERT_TRUE(DecodeCommitInfo(b.bytes().subspan(kRecordHeaderSize), &back).ok());
  ASSERT_EQ(back.transactions.size(), 1u);
  EXPECT_EQ(back.transactions[0].sequence, 123456u);
}

}  // namespace
}  // namespace mmsb::log
