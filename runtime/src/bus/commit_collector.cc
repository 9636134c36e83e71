// The commit collector: shadows, the diff of live pages against their twins, undo and verify
// (Bus methods; the class and its locking contract are in bus.h).
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "bus/bus.h"
#include "bus/shadow_scan.h"
#include "delta/delta_internal.h"

namespace mmsb {

std::uint8_t* Bus::ShadowFor(const Page* p) const {
  if (p->size_class_ == kExternalStorage) return nullptr;  // no barrier shadow: always fully diffed
  if (p->is_static_) {
    const rt::ShadowRegion& r = rt::g_static_region;
    const std::uintptr_t off = reinterpret_cast<std::uintptr_t>(p->data_) - r.base;
    return off < r.span ? r.shadow + (off >> kGranuleShift) : nullptr;
  }
  return arena_->ShadowOf(p->data_);
}

void Bus::ReportMisses(const Page* p, const Delta& full, const Delta& tracked) {
  const std::vector<ByteRun> all = full.Runs();
  const std::vector<ByteRun> seen = tracked.Runs();
  // tracked is a subset of full (both are exact against the same twin), so walk them together.
  std::size_t j = 0;
  for (const ByteRun& r : all) {
    std::uint32_t pos = r.offset;
    const std::uint32_t end = r.offset + r.length;
    while (pos < end) {
      while (j < seen.size() && seen[j].offset + seen[j].length <= pos) ++j;
      std::uint32_t next_seen = end;
      if (j < seen.size() && seen[j].offset <= pos) {
        pos = std::min(end, seen[j].offset + seen[j].length);
        continue;
      }
      if (j < seen.size()) next_seen = std::min(end, seen[j].offset);
      VerifyMiss m;
      m.page = p->id_;
      m.page_name = p->name_;
      m.offset = pos;
      m.length = next_seen - pos;
      if (p->type_ != nullptr) {
        auto lookup = [](std::string_view n, void* ctx) -> const TypeDescriptor* {
          auto* types = static_cast<decltype(types_)*>(ctx);
          auto it = types->find(std::string(n));
          return it == types->end() ? nullptr : it->second.get();
        };
        if (auto f = ResolveField(*p->type_, pos, lookup, &types_))
          m.field = p->type_->name + "." + f->path;
      }
      stats_.verify_misses += m.length;
      if (options_.on_verify_miss) {
        options_.on_verify_miss(m);
      } else {
        std::fprintf(
            stderr,
            "mmsb: verify: page %llu%s%s: %u byte(s) at offset %u changed without a barrier%s%s\n",
            static_cast<unsigned long long>(m.page), m.page_name.empty() ? "" : " ",
            m.page_name.c_str(), m.length, m.offset, m.field.empty() ? "" : " in ",
            m.field.c_str());
      }
      misses_.push_back(std::move(m));
      pos = next_seen;
    }
  }
}

Delta Bus::DiffNow(Page* p, bool full, UndoLog* undo) const NO_THREAD_SAFETY_ANALYSIS {
  const std::size_t size = p->size_;
  const std::size_t granules = (size + kGranuleSize - 1) >> kGranuleShift;
  std::uint8_t* shadow = ShadowFor(p);
  const bool first = !p->twin_valid_;
  if (!first && !full && !p->escaped_ && (shadow == nullptr || !AnyTouched(shadow, granules)))
    return Delta();
  // First sight of the page: its epoch-0 image is all zeros (see docs/SerializationSpec.md).
  const std::uint8_t* before = first ? Zeros(size) : p->twin_;
  const bool whole = first || full || p->escaped_;
  Delta d = delta_internal::DiffPage(p->id_, p->epoch_, before, p->data_,
                                     static_cast<std::uint32_t>(size), whole ? nullptr : shadow);
  if (first) {
    if (undo != nullptr && !d.empty()) undo->Save(p, p->epoch_, d, before);
    std::memcpy(p->twin_, p->data_, size);
    p->twin_valid_ = true;
  } else if (!d.empty()) {
    if (undo != nullptr) undo->Save(p, p->epoch_, d, before);
    MMSB_CHECK(d.ApplyTo({p->twin_, size}).ok());
  }
  if (shadow != nullptr) std::memset(shadow, 0, granules);
  return d;
}

void Bus::Emit(Page* p, Delta&& d, Epoch new_epoch) {
  p->epoch_ = new_epoch;
  p->maybe_nonzero_ = true;
  out_bytes_ += d.changed_bytes();
  out_.push_back(std::move(d));
}

void Bus::CollectPage(Page* p, Epoch new_epoch) {
  const std::size_t granules = (p->size_ + kGranuleSize - 1) >> kGranuleShift;
  std::uint8_t* shadow = ShadowFor(p);
  const bool full = !p->twin_valid_ || p->escaped_ || verify_;
  Delta tracked;
  const bool check = verify_ && p->twin_valid_ && !p->escaped_;
  if (check && shadow != nullptr) {
    tracked = DiffGranules(p->id_, p->epoch_, {p->twin_, p->size_}, {p->data_, p->size_},
                           {shadow, granules});
  }
  if (full) {
    ++stats_.full_diffs;
  } else {
    if (shadow == nullptr || !AnyTouched(shadow, granules)) return;
    std::size_t touched = 0;
    for (std::size_t g = 0; g < granules; ++g) touched += shadow[g] != 0;
    stats_.granules_diffed += touched;
  }
  Delta d = DiffNow(p, full, track_undo_ ? &undo_ : nullptr);
  if (check && tracked.changed_bytes() != d.changed_bytes()) ReportMisses(p, d, tracked);
  if (!d.empty()) Emit(p, std::move(d), new_epoch);
}

void Bus::Rollback() {
  undo_.Rollback();
  out_.clear();
  out_bytes_ = 0;
  misses_.clear();
}

void Bus::CollectAll(Epoch new_epoch) {
  // Most pages are idle and the scan is bound by fetching their records and shadow bytes:
  // prefetch the records ahead, and the shadows of records that have arrived.
  const std::size_t n = live_.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (i + kCollectPrefetchRecords < n) __builtin_prefetch(live_[i + kCollectPrefetchRecords]);
    if (i + kCollectPrefetchShadows < n) {
      if (const std::uint8_t* shadow = ShadowFor(live_[i + kCollectPrefetchShadows]))
        __builtin_prefetch(shadow);
    }
    CollectPage(live_[i], new_epoch);
  }
  // Marks between static pages (outside any page) are dropped each commit.
  if (rt::g_static_region.span != 0) {
    std::memset(rt::g_static_region.shadow, 0, rt::g_static_region.span >> kGranuleShift);
  }
}

}  // namespace mmsb
