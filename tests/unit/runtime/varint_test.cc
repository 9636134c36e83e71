// core/varint.h: the one varint encoder and decoder of the runtime. The encoder must write the
// bytes the copies it replaced wrote (formats on disk do not change), and the decoder must refuse
// truncated, too long and overlong input without reading past its end.
#include "core/varint.h"

#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/delta.h"
#include "mmsb/events.h"

#include "core/envelope.h"

namespace mmsb {
namespace {

// The loop every copy of the encoder used before there was one (envelope.cc's PutVarint,
// codec.cc's PutVarintAt, the log's and the query index's PutVar), kept here as the reference.
std::vector<std::uint8_t> LegacyEncode(std::uint64_t v) {
  std::vector<std::uint8_t> out;
  while (v >= 0x80) {
    out.push_back(static_cast<std::uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(v));
  return out;
}

std::vector<std::uint64_t> Values() {
  std::vector<std::uint64_t> vs = {0, 1, 300, std::numeric_limits<std::uint64_t>::max()};
  for (unsigned bits = 1; bits <= 64; ++bits) {
    const std::uint64_t top = bits == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1;
    vs.push_back(top);
    vs.push_back(top >> 1);
    vs.push_back((top >> 1) + 1);
  }
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) vs.push_back(rng() >> (rng() % 64));
  return vs;
}

std::vector<std::uint8_t> Encode(std::uint64_t v) {
  std::vector<std::uint8_t> out;
  varint::Append(out, v);
  return out;
}

// Decodes `in`, held in a buffer of exactly its size (ASan catches a read past it).
struct Decoded {
  const std::uint8_t* next;
  std::uint64_t value;
  varint::Error error;
  std::size_t used;
};
Decoded Decode(const std::vector<std::uint8_t>& in) {
  std::vector<std::uint8_t> exact(in);
  exact.shrink_to_fit();
  Decoded d{nullptr, 12345, varint::Error::kNone, 0};
  d.next = varint::Get(exact.data(), exact.data() + exact.size(), &d.value, &d.error);
  if (d.next != nullptr) d.used = static_cast<std::size_t>(d.next - exact.data());
  return d;
}

TEST(Varint, EncodingIsTheBytesTheFormerCopiesWrote) {
  for (std::uint64_t v : Values()) {
    const std::vector<std::uint8_t> want = LegacyEncode(v);
    ASSERT_EQ(Encode(v), want) << v;
    std::uint8_t buf[varint::kMaxBytes + 1];
    buf[varint::kMaxBytes] = 0xEE;
    ASSERT_EQ(static_cast<std::size_t>(varint::PutAt(buf, v) - buf), want.size()) << v;
    ASSERT_EQ(std::memcmp(buf, want.data(), want.size()), 0) << v;
    ASSERT_EQ(buf[varint::kMaxBytes], 0xEE);
    ASSERT_EQ(varint::Size(v), want.size()) << v;
    const unsigned __int128 w = varint::Word(v);
    for (std::size_t i = 0; i < 16; ++i) {
      ASSERT_EQ(static_cast<std::uint8_t>(w >> (8 * i)), i < want.size() ? want[i] : 0) << v;
    }
  }
}

TEST(Varint, KnownEncodings) {
  using B = std::vector<std::uint8_t>;
  EXPECT_EQ(Encode(0), B({0x00}));
  EXPECT_EQ(Encode(127), B({0x7F}));
  EXPECT_EQ(Encode(128), B({0x80, 0x01}));
  EXPECT_EQ(Encode(300), B({0xAC, 0x02}));
  EXPECT_EQ(Encode(16384), B({0x80, 0x80, 0x01}));
  EXPECT_EQ(Encode(std::numeric_limits<std::uint64_t>::max()),
            B({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}));
  EXPECT_EQ(varint::Size(std::numeric_limits<std::uint64_t>::max()), varint::kMaxBytes);
}

TEST(Varint, EveryEncodingDecodesToItsValueAndLength) {
  for (std::uint64_t v : Values()) {
    const std::vector<std::uint8_t> enc = Encode(v);
    const Decoded d = Decode(enc);
    ASSERT_NE(d.next, nullptr) << v << ": " << varint::Describe(d.error);
    EXPECT_EQ(d.value, v);
    EXPECT_EQ(d.used, enc.size());
    const std::uint8_t* p = enc.data();
    EXPECT_EQ(varint::GetTrusted(p), v);
    EXPECT_EQ(p, enc.data() + enc.size());
    // Followed by more bytes, it still ends where it ends.
    std::vector<std::uint8_t> more = enc;
    more.push_back(0x81);
    EXPECT_EQ(Decode(more).used, enc.size());
  }
}

TEST(Varint, EveryProperPrefixIsTruncated) {
  for (std::uint64_t v : Values()) {
    const std::vector<std::uint8_t> enc = Encode(v);
    for (std::size_t n = 0; n < enc.size(); ++n) {
      const Decoded d = Decode(std::vector<std::uint8_t>(enc.begin(), enc.begin() + n));
      ASSERT_EQ(d.next, nullptr) << v << " cut to " << n;
      EXPECT_EQ(d.error, varint::Error::kTruncated);
      EXPECT_EQ(d.value, 12345u);  // untouched
    }
  }
}

TEST(Varint, MoreThanSixtyFourBitsIsRefused) {
  std::vector<std::uint8_t> nine(9, 0xFF);
  for (std::uint8_t last = 0x02; last != 0; ++last) {  // tenth bytes 0x02..0xFF
    std::vector<std::uint8_t> in = nine;
    in.push_back(last);
    in.push_back(0x01);  // an eleventh byte is never read as part of the varint
    const Decoded d = Decode(in);
    ASSERT_EQ(d.next, nullptr) << int{last};
    EXPECT_EQ(d.error, varint::Error::kTooLong);
  }
  // The largest value is the one ten-byte varint with a tenth byte other than 0x01... none:
  // 0x01 is the only tenth byte accepted.
  std::vector<std::uint8_t> max = nine;
  max.push_back(0x01);
  EXPECT_EQ(Decode(max).value, std::numeric_limits<std::uint64_t>::max());
}

TEST(Varint, OverlongEncodingsAreRefused) {
  using B = std::vector<std::uint8_t>;
  for (const B& in : {B{0x80, 0x00}, B{0xFF, 0x00}, B{0x81, 0x80, 0x00}, B{0x80, 0x80, 0x80, 0x00},
                      B{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}}) {
    const Decoded d = Decode(in);
    ASSERT_EQ(d.next, nullptr) << in.size();
    EXPECT_EQ(d.error, varint::Error::kOverlong) << varint::Describe(d.error);
  }
  // Exhaustively over two bytes: exactly the encoder's outputs decode.
  for (unsigned a = 0; a < 256; ++a) {
    for (unsigned b = 0; b < 256; ++b) {
      const B in{static_cast<std::uint8_t>(a), static_cast<std::uint8_t>(b)};
      const Decoded d = Decode(in);
      if (a < 0x80) {
        ASSERT_EQ(d.used, 1u);
        continue;
      }
      const bool canonical = b >= 0x01 && b < 0x80;
      ASSERT_EQ(d.next != nullptr, canonical) << a << " " << b;
      if (canonical) EXPECT_EQ(Encode(d.value), in);
    }
  }
}

// The readers built on it refuse an overlong varint in a record whose envelope is valid: a delta
// (the inlined reader of ParseDeltaView) and an event batch (envelope::Reader).
std::vector<std::uint8_t> Reseal(std::vector<std::uint8_t> rec) {
  rec.resize(rec.size() - envelope::kChecksumBytes);
  envelope::Seal(rec, 0);
  return rec;
}

TEST(Varint, RecordReadersRefuseAnOverlongField) {
  auto d = Delta::FromRuns(5, 3, 4096, {{10, 2}}, {0xAA, 0xBB});
  ASSERT_TRUE(d.ok());
  std::vector<std::uint8_t> enc = EncodeDelta(*d);
  ASSERT_EQ(enc[envelope::kHeaderBytes], 5);  // the page id, the body's first varint
  ASSERT_TRUE(DecodeDelta(Reseal(enc)).ok());
  std::vector<std::uint8_t> bad = enc;
  bad[envelope::kHeaderBytes] = 0x85;
  bad.insert(bad.begin() + envelope::kHeaderBytes + 1, 0x00);
  const auto got = DecodeDelta(Reseal(bad));
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(got.status().IsCorruption()) << got.status().ToString();

  Event e;
  e.type = EventType::kCommitDone;
  e.epoch = 9;
  const std::vector<Event> events{e};
  std::vector<std::uint8_t> batch = EncodeEvents(events);
  ASSERT_TRUE(DecodeEvents(Reseal(batch)).ok());
  ASSERT_EQ(batch[envelope::kHeaderBytes], 1);  // the count
  batch[envelope::kHeaderBytes] = 0x81;
  batch.insert(batch.begin() + envelope::kHeaderBytes + 1, 0x00);
  const auto events_got = DecodeEvents(Reseal(batch));
  ASSERT_FALSE(events_got.ok());
  EXPECT_TRUE(events_got.status().IsCorruption());
}

// Records' bytes, pinned: written by the code before the encoders were unified (669a2b6), so a
// change to any of them is a format change. The delta (page id, epoch and size of 2 and 3 bytes,
// runs with 1- and 2-byte gaps) and the event batch (varints of 1 to 6 bytes) go through the
// codec's and the envelope's writers. Every other writer (log records, the compact commit record,
// the query index) now calls the same PutAt, Append or Word, which
// EncodingIsTheBytesTheFormerCopiesWrote pins to the loop they each used to copy.
std::string Hex(const std::vector<std::uint8_t>& b) {
  std::string s;
  for (std::uint8_t c : b) {
    static const char* const kDigits = "0123456789abcdef";
    s += kDigits[c >> 4];
    s += kDigits[c & 15];
  }
  return s;
}

// Printed by the same calls linked against main's libmmsb at 669a2b6.
constexpr const char* kGoldenDelta =
    "d70100002a00000000000000c801f0a20480800104030301a80202d27a01010203040b34de05f3755081";
constexpr const char* kGoldenEvents =
    "e70100002d0000000000000002040080804081018080010385808080802006000000000000d17c9add079be8bc";

TEST(Varint, RecordBytesAreUnchanged) {
  auto d = Delta::FromRuns(200, 70000, 16384, {{3, 1}, {300, 2}, {16000, 1}}, {1, 2, 3, 4});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Hex(EncodeDelta(*d)), kGoldenDelta);
  Event e;
  e.type = EventType::kPageChanged;
  e.epoch = 1u << 20;
  e.page = 129;
  e.bytes = 16384;
  e.count = 3;
  e.base_epoch = (std::uint64_t{1} << 40) + 5;
  EXPECT_EQ(Hex(EncodeEvents(std::vector<Event>{e, Event{}})), kGoldenEvents);
}

}  // namespace
}  // namespace mmsb
