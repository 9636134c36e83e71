// Record framing on the commit path: the cached header hash (HeaderHashCache, which LogBatch and
// the writer's commit records use) frames
// every record exactly as the uncached FillRecordHeader does, whatever the sequence of shapes and
// log ids, and the in-place commit-info encoder writes the compact layout the decoder reads.
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/log_writer.h"

#include "log/commit_info_frame.h"
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

// The largest payload of a one-transaction commit-info without a state hash: flags, count, site
// (≤ 5), thread (≤ 5), sequence (≤ 10).
constexpr std::size_t kCompactCommitInfoMaxPayload = 1 + 1 + 5 + 5 + 10;

// The record EncodeCommitInfo and FillRecordHeader write for one transaction and no state hash.
std::vector<std::uint8_t> GenericCommitInfoRecord(std::uint64_t log_id,
                                                  const LogCommitTransaction& t) {
  LogCommitInfo c;
  c.transactions = {t};
  std::vector<std::uint8_t> out(kRecordHeaderSize);
  EncodeCommitInfo(c, out);
  FillRecordHeader(out.data(), log_id, kCompactCommitInfoType,
                   {out.data() + kRecordHeaderSize, out.size() - kRecordHeaderSize});
  return out;
}

TEST(RecordFraming, TemplateCommitInfoEqualsTheGenericEncoder) {
  // Values at every varint length boundary, and random ones of every length.
  static constexpr std::uint64_t kEdges[] = {0,
                                             1,
                                             127,
                                             128,
                                             16383,
                                             16384,
                                             2097151,
                                             2097152,
                                             1u << 28,
                                             0xFFFFFFFFu,
                                             ~std::uint64_t{0} >> 1,
                                             ~std::uint64_t{0}};
  std::mt19937_64 rng(29);
  auto value = [&](std::uint64_t limit) {
    const std::uint64_t v =
        rng() % 4 == 0 ? kEdges[rng() % std::size(kEdges)] : rng() >> (rng() % 64);
    return v % limit;
  };
  // Two logs' batches on this thread, used in turn: the per-thread template is keyed by log id.
  const std::uint64_t ids[] = {0x51, 0xFEEDFACECAFEBEEF};
  LogBatch batches[] = {LogBatch(ids[0]), LogBatch(ids[1])};
  std::vector<std::uint8_t> expect[2];
  std::uint32_t added[2] = {0, 0};
  LogCommitTransaction t{3, 1, 100};
  for (int i = 0; i < 3000; ++i) {
    const int which = rng() % 8 == 0 ? 1 : 0;
    // Mostly what a program does (same site and thread, the next sequence), sometimes another
    // site, thread or sequence.
    switch (rng() % 6) {
      case 0:
        t.site = static_cast<std::uint32_t>(value(std::uint64_t{1} << 32));
        break;
      case 1:
        t.thread = static_cast<std::uint32_t>(value(std::uint64_t{1} << 32));
        break;
      case 2:
        t.sequence = value(~std::uint64_t{0});
        break;
      default:
        ++t.sequence;
    }
    batches[which].AddCommitInfoFor(t);
    ++added[which];
    const std::vector<std::uint8_t> rec = GenericCommitInfoRecord(ids[which], t);
    expect[which].insert(expect[which].end(), rec.begin(), rec.end());
  }
  for (int k = 0; k < 2; ++k) {
    const std::span<const std::uint8_t> got = batches[k].bytes();
    ASSERT_EQ(got.size(), expect[k].size()) << "batch " << k;
    EXPECT_EQ(0, std::memcmp(got.data(), expect[k].data(), got.size())) << "batch " << k;
    EXPECT_EQ(batches[k].record_count(), added[k]) << "batch " << k;
  }
}

TEST(RecordFraming, CallersFramersInterleavedWithTheThreadsEqualTheGenericEncoder) {
  // The log sink keeps a framer per sink; the thread's framer serves every other batch. Three
  // batches of two logs, each written through its own framer, the thread's, or a framer shared
  // by two logs (as a sink's would be if its log id changed), in random turns and with the
  // site/thread/sequence mixes of alternating sites and threads: every record is the generic
  // encoder's, byte for byte, whichever framer wrote its neighbours.
  std::mt19937_64 rng(41);
  const std::uint64_t ids[] = {0xA1, 0xB2, 0xA1};
  LogBatch batches[] = {LogBatch(ids[0]), LogBatch(ids[1]), LogBatch(ids[2])};
  CommitInfoFramer own[2];
  CommitInfoFramer shared;
  std::vector<std::uint8_t> expect[3];
  std::uint32_t added[3] = {0, 0, 0};
  const LogCommitTransaction sites[] = {{1, 1, 0}, {2, 1, 0},     {1, 2, 0},
                                        {0, 3, 0}, {20000, 1, 0}, {1, 0xFFFFFFFFu, 0}};
  std::uint64_t sequence = 120;  // crosses the 1- to 2-byte and 2- to 3-byte varint lengths
  for (int i = 0; i < 4000; ++i) {
    const std::size_t which = rng() % 3;
    LogCommitTransaction t = sites[rng() % 8 < 5 ? 0 : rng() % std::size(sites)];
    sequence += i == 2000 ? 16000 : 1;
    t.sequence = sequence;
    switch (rng() % 3) {
      case 0:
        batches[which].AddCommitInfoFor(t);
        break;
      case 1:
        batches[which].AddCommitInfoFor(t, which == 1 ? own[1] : own[0]);
        break;
      default:
        batches[which].AddCommitInfoFor(t, shared);
    }
    ++added[which];
    const std::vector<std::uint8_t> rec = GenericCommitInfoRecord(ids[which], t);
    expect[which].insert(expect[which].end(), rec.begin(), rec.end());
  }
  for (int k = 0; k < 3; ++k) {
    SCOPED_TRACE(k);
    const std::span<const std::uint8_t> got = batches[k].bytes();
    ASSERT_EQ(got.size(), expect[k].size());
    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], expect[k][i]) << "byte " << i;
    EXPECT_EQ(batches[k].record_count(), added[k]);
    ExpectFramedAsUncached(got, ids[k], added[k]);
  }
}

TEST(RecordFraming, TemplateCommitInfoOfEveryPayloadLengthEqualsTheGenericEncoder) {
  // The framer composes payloads of up to 16 bytes in a register (site and thread below 2^14)
  // and frames longer ones from its template: every payload length of both paths (5 … 22 bytes),
  // every varint length of each field, and switches between the paths, byte for byte against the
  // generic encoder.
  static constexpr std::uint32_t kIds[] = {0, 1, 127, 128, 16383, 16384, 2097152, 0xFFFFFFFFu};
  std::vector<std::uint64_t> sequences = {0, 1, ~std::uint64_t{0}};
  for (int bits = 7; bits < 64; bits += 7) {
    sequences.push_back((std::uint64_t{1} << bits) - 1);
    sequences.push_back(std::uint64_t{1} << bits);
  }
  LogBatch b(0xC0FFEE);
  std::vector<std::uint8_t> expect;
  bool seen[kCompactCommitInfoMaxPayload + 1] = {};
  std::uint32_t added = 0;
  for (std::uint32_t site : kIds) {
    for (std::uint32_t thread : kIds) {
      for (std::uint64_t seq : sequences) {
        // The sequence's neighbours too, as consecutive commits of one thread write them.
        for (std::uint64_t s : {seq, seq + 1}) {
          const LogCommitTransaction t{site, thread, s};
          b.AddCommitInfoFor(t);
          ++added;
          const std::vector<std::uint8_t> rec = GenericCommitInfoRecord(0xC0FFEE, t);
          seen[rec.size() - kRecordHeaderSize] = true;
          expect.insert(expect.end(), rec.begin(), rec.end());
        }
      }
    }
  }
  for (std::size_t n = 5; n <= kCompactCommitInfoMaxPayload; ++n) EXPECT_TRUE(seen[n]) << n;
  const std::span<const std::uint8_t> got = b.bytes();
  ASSERT_EQ(got.size(), expect.size());
  for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], expect[i]) << "byte " << i;
  EXPECT_EQ(b.record_count(), added);
  ExpectFramedAsUncached(got, 0xC0FFEE, added);
}

TEST(RecordFraming, TemplateCommitInfoDecodesAcrossSequenceLengths) {
  // A run of consecutive sequences across the 1-, 2- and 3-byte varint boundaries, as one thread
  // committing from one site writes them; each record decodes to its own fields.
  LogBatch b(0x77);
  std::vector<LogCommitTransaction> written;
  for (std::uint64_t seq : {std::uint64_t{120}, std::uint64_t{16380}}) {
    for (std::uint64_t s = seq; s < seq + 10; ++s) {
      written.push_back({9, 4, s});
      b.AddCommitInfoFor(written.back());
    }
  }
  written.push_back({0, 4, 1});  // an unknown site
  b.AddCommitInfoFor(written.back());
  EXPECT_EQ(b.record_count(), written.size());
  ExpectFramedAsUncached(b.bytes(), 0x77, written.size());
  std::size_t at = 0;
  for (const LogCommitTransaction& t : written) {
    RecordHeader h;
    ASSERT_TRUE(ParseRecordHeader(b.bytes().data() + at, 0x77, &h));
    EXPECT_EQ(h.type, kCompactCommitInfoType);
    LogCommitInfo back;
    ASSERT_TRUE(DecodeCommitInfo(b.bytes().subspan(at + kRecordHeaderSize, h.length), &back).ok());
    EXPECT_EQ(back.state_hash, 0u);
    ASSERT_EQ(back.transactions.size(), 1u);
    EXPECT_EQ(back.transactions[0].site, t.site);
    EXPECT_EQ(back.transactions[0].thread, t.thread);
    EXPECT_EQ(back.transactions[0].sequence, t.sequence);
    at += kRecordHeaderSize + h.length;
  }
  EXPECT_EQ(at, b.bytes().size());
}

}  // namespace
}  // namespace mmsb::log
