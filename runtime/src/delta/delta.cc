// Delta representation, builder and algebra (compose, invert). The diff kernels live in
// diff.cc and the codec in codec.cc.
#include "mmsb/delta.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include <fmt/format.h>

#include "core/envelope.h"
#include "core/small_copy.h"
#include "core/varint.h"
#include "delta/delta_internal.h"

namespace mmsb {
namespace {

using delta_internal::MaskBytes;

// Calls fn(offset, length, src) for every run of set bits in a dense mask, where src points at
// the run's first new byte in `bytes`. Bits past page_size are zero by construction.
template <class Fn>
void ForEachMaskRunImpl(const std::uint8_t* mask, std::size_t mask_len, const std::uint8_t* bytes,
                        Fn&& fn) {
  const std::size_t words = (mask_len + 7) / 8;
  std::size_t consumed = 0;
  std::uint32_t run_start = 0, run_len = 0;
  const std::uint8_t* run_src = nullptr;
  for (std::size_t w = 0; w < words; ++w) {
    std::uint64_t m = 0;
    std::memcpy(&m, mask + w * 8, std::min<std::size_t>(8, mask_len - w * 8));
    while (m != 0) {
      const unsigned lo = static_cast<unsigned>(std::countr_zero(m));
      const std::uint64_t shifted = m >> lo;
      const unsigned len =
          shifted == ~std::uint64_t{0} ? 64u - lo : static_cast<unsigned>(std::countr_one(shifted));
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

std::size_t SparseBodySize(std::span<const ByteRun> runs) {
  std::size_t n = varint::Size(runs.size());
  std::uint32_t prev_end = 0;
  for (const ByteRun& r : runs) {
    n += varint::Size(r.offset - prev_end) + varint::Size(r.length);
    prev_end = r.offset + r.length;
  }
  return n;
}

std::size_t HeaderSize(const Delta& d) {
  return kFixedHeaderBytes + varint::Size(d.page()) + varint::Size(d.base_epoch()) +
         varint::Size(d.page_size()) + varint::Size(d.changed_bytes());
}

}  // namespace delta_internal

// ---- Delta storage -----------------------------------------------------------------------------

void Delta::Reset(Form form, std::size_t table, std::uint32_t changed) {
  const std::size_t need = table + changed;
  form_ = form;
  table_bytes_ = static_cast<std::uint32_t>(table);
  changed_bytes_ = changed;
  if (need <= kInlineBytes) {
    heap_.reset();
  } else {
    heap_.reset(new std::uint8_t[need]);
  }
}

Delta::Delta(const Delta& o)
    : page_(o.page_), base_epoch_(o.base_epoch_), page_size_(o.page_size_) {
  Reset(o.form_, o.table_bytes_, o.changed_bytes_);
  std::memcpy(data(), o.data(), std::size_t{table_bytes_} + changed_bytes_);
}

Delta& Delta::operator=(const Delta& o) {
  if (this != &o) {
    Delta copy(o);
    *this = std::move(copy);
  }
  return *this;
}

Delta::Delta(Delta&& o) noexcept
    : page_(o.page_),
      base_epoch_(o.base_epoch_),
      page_size_(o.page_size_),
      changed_bytes_(o.changed_bytes_),
      table_bytes_(o.table_bytes_),
      form_(o.form_),
      heap_(std::move(o.heap_)) {
  // The whole inline block, a fixed size the compiler copies in a few moves (a call to memcpy
  // for the used length costs more than the bytes). Unused inline bytes are indeterminate
  // unsigned chars, which may be copied.
  if (!heap_) std::memcpy(inline_, o.inline_, kInlineBytes);
  o.changed_bytes_ = o.table_bytes_ = 0;
}

Delta& Delta::operator=(Delta&& o) noexcept {
  if (this == &o) return *this;
  page_ = o.page_;
  base_epoch_ = o.base_epoch_;
  page_size_ = o.page_size_;
  changed_bytes_ = o.changed_bytes_;
  table_bytes_ = o.table_bytes_;
  form_ = o.form_;
  heap_ = std::move(o.heap_);
  if (!heap_) std::memcpy(inline_, o.inline_, kInlineBytes);  // fixed size, as in the move ctor
  o.changed_bytes_ = o.table_bytes_ = 0;
  return *this;
}

std::span<const ByteRun> Delta::sparse_runs() const {
  if (form_ != Form::kSparse) return {};
  return {reinterpret_cast<const ByteRun*>(data()), table_bytes_ / sizeof(ByteRun)};
}

void Delta::ForEachMaskRun(void (*fn)(void*, std::uint32_t, std::uint32_t, const std::uint8_t*),
                           void* ctx) const {
  ForEachMaskRunImpl(data(), table_bytes_, bytes().data(),
                     [&](std::uint32_t off, std::uint32_t len, const std::uint8_t* src) {
                       fn(ctx, off, len, src);
                     });
}

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
      return InvalidDelta(
          fmt::format("run {} at offset {} is unsorted or overlaps the previous run", i, r.offset));
    }
    prev_end = std::uint64_t{r.offset} + r.length;
    total += r.length;
  }
  if (total != bytes.size()) {
    return InvalidDelta(
        fmt::format("runs cover {} bytes but {} new bytes were given", total, bytes.size()));
  }
  // Normalise: merge adjacent runs so every delta has one canonical run list.
  DeltaBuilder b(page, base_epoch, page_size);
  std::size_t pos = 0;
  for (const ByteRun& r : runs) {
    b.AddRun(r.offset, bytes.data() + pos, r.length);
    pos += r.length;
  }
  Delta d = b.Finish();
  d.ConvertTo(Form::kSparse);
  return d;
}

std::vector<ByteRun> Delta::Runs() const {
  if (form_ == Form::kSparse) {
    const auto r = sparse_runs();
    return {r.begin(), r.end()};
  }
  std::vector<ByteRun> out;
  ForEachRun([&](std::uint32_t off, std::uint32_t len, const std::uint8_t*) {
    out.push_back({off, len});
  });
  return out;
}

std::vector<std::uint8_t> Delta::Mask() const {
  if (form_ == Form::kDense) return {data(), data() + table_bytes_};
  std::vector<std::uint8_t> m(MaskBytes(page_size_), 0);
  for (const ByteRun& r : sparse_runs()) {
    for (std::uint32_t i = r.offset; i < r.offset + r.length; ++i)
      m[i >> 3] |= std::uint8_t(1u << (i & 7));
  }
  return m;
}

void Delta::ConvertTo(Form form) {
  if (form == form_) return;
  Delta out;
  out.page_ = page_;
  out.base_epoch_ = base_epoch_;
  out.page_size_ = page_size_;
  if (form == Form::kDense) {
    const std::vector<std::uint8_t> mask = Mask();
    out.Reset(Form::kDense, mask.size(), changed_bytes_);
    std::memcpy(out.data(), mask.data(), mask.size());
  } else {
    const std::vector<ByteRun> runs = Runs();
    out.Reset(Form::kSparse, runs.size() * sizeof(ByteRun), changed_bytes_);
    std::memcpy(out.data(), runs.data(), runs.size() * sizeof(ByteRun));
  }
  std::memcpy(out.data() + out.table_bytes_, bytes().data(), changed_bytes_);
  *this = std::move(out);
}

Status Delta::ApplyTo(std::span<std::uint8_t> page) const {
  if (page.size() != page_size_) {
    return InvalidDelta(
        fmt::format("delta for a {}-byte page applied to {} bytes", page_size_, page.size()));
  }
  ForEachRun([&](std::uint32_t off, std::uint32_t len, const std::uint8_t* src) {
    std::memcpy(page.data() + off, src, len);
  });
  return Status::Ok();
}

std::size_t Delta::EncodedSize() const {
  const std::size_t body =
      form_ == Form::kSparse ? delta_internal::SparseBodySize(sparse_runs()) : table_bytes_;
  return delta_internal::HeaderSize(*this) + body + changed_bytes_ + delta_internal::kChecksumBytes;
}

bool operator==(const Delta& a, const Delta& b) {
  if (a.page_ != b.page_ || a.base_epoch_ != b.base_epoch_ || a.page_size_ != b.page_size_ ||
      a.changed_bytes_ != b.changed_bytes_) {
    return false;
  }
  const auto ab = a.bytes(), bb = b.bytes();
  if (!std::equal(ab.begin(), ab.end(), bb.begin(), bb.end())) return false;
  if (a.form_ == b.form_) {
    return a.table_bytes_ == b.table_bytes_ && std::memcmp(a.data(), b.data(), a.table_bytes_) == 0;
  }
  return a.Runs() == b.Runs();
}

// ---- DeltaBuilder ------------------------------------------------------------------------------

// Growable run and byte buffers, recycled through a per-thread free list so that steady-state
// diffs allocate only when a delta outgrows the inline storage.
struct DeltaBuilder::Scratch {
  std::vector<ByteRun> runs;
  std::vector<std::uint8_t> bytes;
  Scratch* next = nullptr;
};

namespace {

struct ScratchPool {
  DeltaBuilder::Scratch* head = nullptr;
  ~ScratchPool();
};
thread_local ScratchPool t_scratch;

}  // namespace

ScratchPool::~ScratchPool() {
  while (head != nullptr) {
    auto* next = head->next;
    delete head;
    head = next;
  }
}

DeltaBuilder::DeltaBuilder(PageId page, Epoch base_epoch, std::uint32_t page_size)
    : page_(page), base_epoch_(base_epoch), page_size_(page_size) {}

DeltaBuilder::~DeltaBuilder() {
  if (s_ == nullptr) return;  // the change stayed in the inline room: no scratch was taken
  // Buffers up to kKeepScratchBytes are kept for the next delta: a large page's commit builds a
  // delta of the same order every time, and growing fresh buffers each commit (each growth a new
  // allocation whose memory is faulted in, then a copy) cost more than the diff itself (a 1 GiB
  // page with 1% written: two thirds of the commit). Larger ones go back to the allocator.
  constexpr std::size_t kKeepScratchBytes = std::size_t{64} << 20;
  if (s_->bytes.capacity() > kKeepScratchBytes ||
      s_->runs.capacity() * sizeof(ByteRun) > kKeepScratchBytes) {
    delete s_;
    return;
  }
  s_->next = t_scratch.head;
  t_scratch.head = s_;
}

void DeltaBuilder::Spill() {
  if (t_scratch.head != nullptr) {
    s_ = t_scratch.head;
    t_scratch.head = s_->next;
  } else {
    s_ = new Scratch;
  }
  s_->runs.assign(small_runs_, small_runs_ + small_runs_count_);
  s_->bytes.assign(small_bytes_, small_bytes_ + small_bytes_count_);
}

void DeltaBuilder::AddRun(std::uint32_t offset, const std::uint8_t* src, std::uint32_t len) {
  if (len == 0) return;
  if (s_ == nullptr) {
    // Most deltas are a few short runs: gather them here, no scratch and no vector.
    const bool joins =
        small_runs_count_ != 0 &&
        small_runs_[small_runs_count_ - 1].offset + small_runs_[small_runs_count_ - 1].length ==
            offset;
    // Kept inline only while the result still fits a Delta's inline block; a change that will
    // need the heap anyway goes to the scratch buffers, which grow without a limit.
    const std::uint32_t runs_after = small_runs_count_ + (joins ? 0 : 1);
    if (len <= kSmallBytes - small_bytes_count_ && runs_after <= kSmallRuns &&
        runs_after * sizeof(ByteRun) + small_bytes_count_ + len <= Delta::kInlineBytes) {
      if (joins) {
        small_runs_[small_runs_count_ - 1].length += len;
      } else {
        small_runs_[small_runs_count_].offset = offset;
        small_runs_[small_runs_count_].length = len;
        ++small_runs_count_;
      }
      std::memcpy(small_bytes_ + small_bytes_count_, src, len);
      small_bytes_count_ += len;
      return;
    }
    Spill();
  }
  auto& runs = s_->runs;
  if (!runs.empty() && runs.back().offset + runs.back().length == offset) {
    runs.back().length += len;
  } else {
    // Field by field: a braced temporary here stalls store forwarding on every run.
    ByteRun& run = runs.emplace_back();
    run.offset = offset;
    run.length = len;
  }
  s_->bytes.insert(s_->bytes.end(), src, src + len);
}

void DeltaBuilder::AddMask64(std::uint32_t offset, std::uint64_t m, const std::uint8_t* src) {
  while (m != 0) {
    const unsigned lo = static_cast<unsigned>(std::countr_zero(m));
    const std::uint64_t shifted = m >> lo;
    const unsigned len =
        shifted == ~std::uint64_t{0} ? 64u - lo : static_cast<unsigned>(std::countr_one(shifted));
    AddRun(offset + lo, src + lo, len);
    m = (lo + len >= 64) ? 0 : (m & ~(((std::uint64_t{1} << len) - 1) << lo));
  }
}

Delta DeltaBuilder::Finish() {
  Delta d;
  d.page_ = page_;
  d.base_epoch_ = base_epoch_;
  d.page_size_ = page_size_;
  const std::span<const ByteRun> runs =
      s_ != nullptr ? std::span<const ByteRun>(s_->runs)
                    : std::span<const ByteRun>(small_runs_, small_runs_count_);
  const std::span<const std::uint8_t> bytes =
      s_ != nullptr ? std::span<const std::uint8_t>(s_->bytes)
                    : std::span<const std::uint8_t>(small_bytes_, small_bytes_count_);
  const auto changed = static_cast<std::uint32_t>(bytes.size());
  // Pick the smaller encoding. The dense mask costs page_size/8 bytes whatever changed, so only
  // a delta with many short runs can be cheaper dense; check the cheap bound first.
  const std::size_t dense_body = MaskBytes(page_size_);
  const bool dense =
      runs.size() * 2 + 1 > dense_body && delta_internal::SparseBodySize(runs) > dense_body;
  if (dense) {
    d.Reset(Delta::Form::kDense, dense_body, changed);
    std::uint8_t* mask = d.data();
    std::memset(mask, 0, dense_body);
    for (const ByteRun& r : runs) {
      for (std::uint32_t i = r.offset; i < r.offset + r.length; ++i)
        mask[i >> 3] |= std::uint8_t(1u << (i & 7));
    }
  } else {
    d.Reset(Delta::Form::kSparse, runs.size() * sizeof(ByteRun), changed);
    if (!runs.empty()) std::memcpy(d.data(), runs.data(), runs.size() * sizeof(ByteRun));
  }
  if (changed != 0) std::memcpy(d.data() + d.table_bytes_, bytes.data(), changed);
  if (s_ != nullptr) {
    s_->runs.clear();
    s_->bytes.clear();
  }
  small_runs_count_ = small_bytes_count_ = 0;
  return d;
}

// ---- Small pages: the delta from granule masks, in place
// -----------------------------------------

namespace delta_internal {

void DeltaFromMasksBuilt(Delta* out, PageId page, Epoch base_epoch, std::uint32_t size,
                         const std::uint64_t* masks, const std::uint8_t* now) {
  DeltaBuilder b(page, base_epoch, size);
  for (std::size_t g = 0; g < GranuleCount(size); ++g) {
    if (masks[g] != 0) b.AddMask64(static_cast<std::uint32_t>(g * 64), masks[g], now + g * 64);
  }
  *out = b.Finish();
}

}  // namespace delta_internal

// ---- Algebra -----------------------------------------------------------------------------------

namespace {

struct RunCursor {
  std::vector<ByteRun> runs;
  const std::uint8_t* bytes = nullptr;
  std::size_t i = 0;
  std::uint32_t consumed = 0;  // bytes of runs[i] already passed
  std::size_t byte_pos = 0;    // index into bytes of runs[i].offset + consumed

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

Expected<Delta> Chain(const Delta& first, const Delta& second) {
  if (second.page() != first.page() || second.page_size() != first.page_size()) {
    return InvalidDelta(
        fmt::format("cannot compose deltas of page {} ({} bytes) and page {} ({} bytes)",
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
    return InvalidDelta(fmt::format("invert: delta for a {}-byte page, image has {} bytes",
                                    d.page_size(), before.size()));
  }
  DeltaBuilder out(d.page(), d.base_epoch(), d.page_size());
  d.ForEachRun([&](std::uint32_t off, std::uint32_t len, const std::uint8_t* src) {
    std::uint32_t i = 0;
    while (i < len) {
      while (i < len && src[i] == before[off + i]) ++i;
      std::uint32_t j = i;
      while (j < len && src[j] != before[off + j]) ++j;
      if (j > i) out.AddRun(off + i, before.data() + off + i, j - i);
      i = j;
    }
  });
  return out.Finish();
}

}  // namespace mmsb
