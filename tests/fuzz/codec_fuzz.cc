// libFuzzer target: the delta, page-image and event-batch decoders on untrusted bytes.
//
// The first byte picks the decoder (bits 0-1) and the mode (bit 2):
//   - raw: the rest is the record, byte for byte (envelope, length and checksum checks);
//   - sealed: the rest is a record whose length and checksum are fixed up first, since random
//     bytes would almost never pass XXH3, so the fuzzer reaches the body parsers.
// Whatever decodes must re-encode to a record that decodes to the same value, and a delta must
// apply to a page of its size.
#include <xxhash.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "mmsb/delta.h"
#include "mmsb/events.h"

namespace {

std::vector<std::uint8_t> Seal(std::vector<std::uint8_t> rec) {
  if (rec.size() < 12) rec.resize(12, 0);
  rec.resize(rec.size() + 8);
  const std::uint64_t total = rec.size();
  for (int i = 0; i < 8; ++i) rec[4 + i] = static_cast<std::uint8_t>(total >> (8 * i));
  const std::uint64_t h = XXH3_64bits(rec.data(), rec.size() - 8);
  for (int i = 0; i < 8; ++i) rec[rec.size() - 8 + i] = static_cast<std::uint8_t>(h >> (8 * i));
  return rec;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const unsigned which = data[0] & 3;
  const bool sealed = (data[0] & 4) != 0;
  std::vector<std::uint8_t> rec(data + 1, data + size);
  if (sealed) {
    static const std::uint8_t kMagic[] = {0xD7, 0x1F, 0xE7, 0xD7};
    if (rec.size() < 4) rec.resize(4, 0);
    rec[0] = kMagic[which];
    rec[1] = 1;  // version
    rec = Seal(std::move(rec));
  }
  constexpr std::uint32_t kMaxPage = 1 << 20;
  if (which == 0 || which == 3) {
    auto d = mmsb::DecodeDelta(rec, nullptr, kMaxPage);
    if (d.ok()) {
      std::vector<std::uint8_t> page(d->page_size());
      if (!d->ApplyTo(page).ok()) std::abort();
      auto again = mmsb::DecodeDelta(mmsb::EncodeDelta(*d), nullptr, kMaxPage);
      if (!again.ok() || !(*again == *d)) std::abort();
    }
  } else if (which == 1) {
    auto img = mmsb::DecodePageImage(rec, nullptr, kMaxPage);
    if (img.ok()) {
      auto again = mmsb::DecodePageImage(mmsb::EncodePageImage(*img), nullptr, kMaxPage);
      if (!again.ok() || again->bytes != img->bytes || again->id != img->id) std::abort();
    }
  } else {
    auto ev = mmsb::DecodeEvents(rec);
    if (ev.ok()) {
      auto again = mmsb::DecodeEvents(mmsb::EncodeEvents(*ev));
      if (!again.ok() || *again != *ev) std::abort();
    }
  }
  return 0;
}
