// Delta representation, builder and algebra (compose, invert). The diff kernels live in
// diff.cc and the codec in codec.cc.
#include "mmsb/delta.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include <fmt/format.h>

#include "core/envelope.h"
#include "delta/delta_internal.h"

namespace mmsb {
namespace {

// Calls fn(offset, length, src) for every run of set bits in a dense mask, where src points at
// the run's first new byte in `bytes`.
template <class Fn>
void ForEachMaskRun(std::span<const std::uint8_t> mask, std::uint32_t page_size,
                    const std::uint8_t* bytes, Fn&& fn) {
  const std::size_t words = (page_size + 63) / 64;
  std::size_t consumed = 0;
  std::uint32_t run_start = 0, run_len = 0;
  const std::uint8_t* run_src = nullptr;
  for (std::size_t w = 0; w < words; ++w) {
    std::uint64_t m = 0;
    const std::size_t base = w * 8;
    const std::size_t avail = std::min<std::size_t>(8, mask.size() - base);
    std::memcpy(&m, mask.data() + base, avail);
    while (m != 0) {
      const unsigned lo = static_cast<unsigned>(std::countr_zero(m));
      const std::uint64_t shifted = m >> lo;
      const unsigned len = shifted == ~std::uint64_t{0} ? 64u - lo
                                                         : static_cast<unsigned>(std::countr_one(shifted));
      const auto off = static_cast<std::uint32_t>(w * 64 + lo);
      if (run_len != 0 && run_start + run_len == off) {
        run_len += len;
      } else {
        if (run_len != 0) fn(run_start, run_len, run_src);
        run_start = off;
        run_len = len;
        run_src = bytes + consumed;
      }
      consumed += len;
      m = (lo + len >= 64) ? 0 : (m & ~(((std::uint64_t{1} << len) - 1) << lo));
    }
  }
  if (run_len != 0) fn(run_start, run_len, run_src);
}

}  // namespace

namespace delta_internal {

using envelope::VarintSize;

std::size_t SparseBodySize(std::span<const ByteRun> runs) {
  std::size_t n = VarintSize(runs.size());
  std::uint32_t prev_end = 0;
  for (const ByteRun& r : runs) {
    n += VarintSize(r.offset - prev_end) + VarintSize(r.length);
    prev_end = r.offset + r.length;
  }
  return n;
}

std::size_t HeaderSize(const Delta& d) {
  return kFixedHeaderBytes + VarintSize(d.page()) + VarintSize(d.base_epoch()) +
         VarintSize(d.page_size()) + VarintSize(d.changed_bytes());
}

}  // namespace delta_internal

// ---- Delta -------------------------------------------------------------------------------------

Expected<Delta> Delta::FromRuns(PageId page, Epoch base_epoch, std::uint32_t page_size,
                                std::vector<ByteRun> runs, std::vector<std::uint8_t> bytes) {
  std::uint64_t total = 0;
  std::uint64_t prev_end = 0;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const ByteRun& r = runs[i];
    if (r.length == 0) return InvalidDelta(fmt::format("run {} has length 0", i));
    if (std::uint64_t{r.offset} + r.length > page_size) {
      return InvalidDelta(fmt::format("run {} [{}, +{}) ends past the page ({} bytes)", i, r.offset,
                                      r.length, page_size));
    }
    if (i > 0 && r.offset < prev_end) {
      return InvalidDelta(fmt::format("run {} at offset {} is unsorted or overlaps the previous run", i, r.offset));
    }
    prev_end = std::uint64_t{r.offset} + r.length;
    total += r.length;
  }
  if (total != bytes.size()) {
    return InvalidDelta(fmt::format("runs cover {} bytes but {} new bytes were given", total, bytes.size()));
  }
  // Normalise: merge adjacent runs so every delta has one canonical run list.
  DeltaBuilder b(page, base_epoch, page_size);
  std::size_t pos = 0;
  for (const ByteRun& r : runs) {
    b.AddRun(r.offset, bytes.data() + pos, r.length);
    pos += r.length;
  }
  Delta d = b.Finish();
  if (d.form_ != Form::kSparse) d.ConvertTo(Form::kSparse);
  return d;
}

std::vector<ByteRun> Delta::Runs() const {
  if (form_ == Form::kSparse) return runs_;
  std::vector<ByteRun> out;
  ForEachMaskRun(mask_, page_size_, bytes_.data(),
                 [&](std::uint32_t off, std::uint32_t len, const std::uint8_t*) { out.push_back({off, len}); });
  return out;
}

std::vector<std::uint8_t> Delta::Mask() const {
  if (form_ == Form::kDense) return mask_;
  std::vector<std::uint8_t> m((page_size_ + 7) / 8, 0);
  for (const ByteRun& r : runs_) {
    for (std::uint32_t i = r.offset; i < r.offset + r.length; ++i) m[i >> 3] |= std::uint8_t(1u << (i & 7));
  }
  return m;
}

void Delta::ConvertTo(Form form) {
  if (form == form_) return;
  if (form == Form::kDense) {
    mask_ = Mask();
    runs_.clear();
    runs_.shrink_to_fit();
  } else {
    runs_ = Runs();
    mask_.clear();
    mask_.shrink_to_fit();
  }
  form_ = form;
}

Status Delta::ApplyTo(std::span<std::uint8_t> page) const {
  if (page.size() != page_size_) {
    return InvalidDelta(fmt::format("delta for a {}-byte page applied to {} bytes", page_size_, page.size()));
  }
  if (form_ == Form::kSparse) {
    const std::uint8_t* src = bytes_.data();
    for (const ByteRun& r : runs_) {
      std::memcpy(page.data() + r.offset, src, r.length);
      src += r.length;
    }
  } else {
    ForEachMaskRun(mask_, page_size_, bytes_.data(),
                   [&](std::uint32_t off, std::uint32_t len, const std::uint8_t* src) {
                     std::memcpy(page.data() + off, src, len);
                   });
  }
  return Status::Ok();
}

std::size_t Delta::EncodedSize() const {
  const std::size_t body = form_ == Form::kSparse ? delta_internal::SparseBodySize(runs_)
                                                  : (std::size_t{page_size_} + 7) / 8;
  return delta_internal::HeaderSize(*this) + body + bytes_.size() + delta_internal::kChecksumBytes;
}

bool operator==(const Delta& a, const Delta& b) {
  if (a.page_ != b.page_ || a.base_epoch_ != b.base_epoch_ || a.page_size_ != b.page_size_ ||
      a.changed_bytes_ != b.changed_bytes_ || a.bytes_ != b.bytes_) {
    return false;
  }
  if (a.form_ == b.form_) return a.form_ == Delta::Form::kSparse ? a.runs_ == b.runs_ : a.mask_ == b.mask_;
  return a.Runs() == b.Runs();
}

// ---- DeltaBuilder ------------------------------------------------------------------------------

DeltaBuilder::DeltaBuilder(PageId page, Epoch base_epoch, std::uint32_t page_size) {
  d_.page_ = page;
  d_.base_epoch_ = base_epoch;
  d_.page_size_ = page_size;
}

void DeltaBuilder::AddRun(std::uint32_t offset, const std::uint8_t* src, std::uint32_t len) {
  if (len == 0) return;
  if (!d_.runs_.empty() && d_.runs_.back().offset + d_.runs_.back().length == offset) {
    d_.runs_.back().length += len;
  } else {
    d_.runs_.push_back({offset, len});
  }
  d_.bytes_.insert(d_.bytes_.end(), src, src + len);
  d_.changed_bytes_ += len;
}

void DeltaBuilder::AddMask64(std::uint32_t offset, std::uint64_t m, const std::uint8_t* src) {
  while (m != 0) {
    const unsigned lo = static_cast<unsigned>(std::countr_zero(m));
    const std::uint64_t shifted = m >> lo;
    const unsigned len = shifted == ~std::uint64_t{0} ? 64u - lo
                                                       : static_cast<unsigned>(std::countr_one(shifted));
    AddRun(offset + lo, src + lo, len);
    m = (lo + len >= 64) ? 0 : (m & ~(((std::uint64_t{1} << len) - 1) << lo));
  }
}

Delta DeltaBuilder::Finish() {
  Delta d = std::move(d_);
  d_ = Delta();
  d_.page_ = d.page_;
  d_.base_epoch_ = d.base_epoch_;
  d_.page_size_ = d.page_size_;
  // Pick the smaller encoding. The dense mask costs page_size/8 bytes whatever changed, so only
  // a delta with many short runs can be cheaper dense; check the cheap bound first.
  const std::size_t dense_body = (std::size_t{d.page_size_} + 7) / 8;
  if (d.runs_.size() * 2 + 1 > dense_body && delta_internal::SparseBodySize(d.runs_) > dense_body) {
    d.ConvertTo(Delta::Form::kDense);
  }
  return d;
}

// ---- Algebra -----------------------------------------------------------------------------------

namespace {

struct RunCursor {
  std::vector<ByteRun> runs;
  const std::uint8_t* bytes = nullptr;
  std::size_t i = 0;
  std::uint32_t consumed = 0;    // bytes of runs[i] already passed
  std::size_t byte_pos = 0;      // index into bytes of runs[i].offset + consumed

  bool done() const { return i >= runs.size(); }
  std::uint32_t start() const { return runs[i].offset + consumed; }
  std::uint32_t end() const { return runs[i].offset + runs[i].length; }
  const std::uint8_t* src() const { return bytes + byte_pos; }
  void Advance(std::uint32_t n) {
    consumed += n;
    byte_pos += n;
    if (consumed == runs[i].length) {
      ++i;
      consumed = 0;
    }
  }
  // Skips everything before `pos`.
  void SkipTo(std::uint32_t pos) {
    while (!done() && end() <= pos) Advance(end() - start());
    if (!done() && start() < pos) Advance(pos - start());
  }
};

}  // namespace

Expected<Delta> Compose(const Delta& second, const Delta& first) {
  if (second.page() != first.page() || second.page_size() != first.page_size()) {
    return InvalidDelta(fmt::format("cannot compose deltas of page {} ({} bytes) and page {} ({} bytes)",
                                    second.page(), second.page_size(), first.page(), first.page_size()));
  }
  RunCursor a{first.Runs(), first.bytes().data()};
  RunCursor b{second.Runs(), second.bytes().data()};
  DeltaBuilder out(first.page(), first.base_epoch(), first.page_size());
  while (!a.done() || !b.done()) {
    if (b.done() || (!a.done() && a.start() < b.start())) {
      // first's bytes up to where second's next run begins.
      const std::uint32_t stop = b.done() ? a.end() : std::min(a.end(), b.start());
      const std::uint32_t n = stop - a.start();
      out.AddRun(a.start(), a.src(), n);
      a.Advance(n);
    } else {
      // second's run wins over whatever first wrote underneath it.
      const std::uint32_t n = b.end() - b.start();
      const std::uint32_t at = b.start();
      out.AddRun(at, b.src(), n);
      b.Advance(n);
      a.SkipTo(at + n);
    }
  }
  return out.Finish();
}

Expected<Delta> Invert(const Delta& d, std::span<const std::uint8_t> before) {
  if (before.size() != d.page_size()) {
    return InvalidDelta(fmt::format("invert: delta for a {}-byte page, image has {} bytes", d.page_size(), before.size()));
  }
  DeltaBuilder out(d.page(), d.base_epoch(), d.page_size());
  const std::uint8_t* now = d.bytes().data();
  auto emit = [&](std::uint32_t off, std::uint32_t len, const std::uint8_t* src) {
    std::uint32_t i = 0;
    while (i < len) {
      while (i < len && src[i] == before[off + i]) ++i;
      std::uint32_t j = i;
      while (j < len && src[j] != before[off + j]) ++j;
      if (j > i) out.AddRun(off + i, before.data() + off + i, j - i);
      i = j;
    }
  };
  if (d.form() == Delta::Form::kSparse) {
    for (const ByteRun& r : d.Runs()) {
      emit(r.offset, r.length, now);
      now += r.length;
    }
  } else {
    const std::vector<std::uint8_t> mask = d.Mask();
    ForEachMaskRun(mask, d.page_size(), now, emit);
  }
  return out.Finish();
}

}  // namespace mmsb
