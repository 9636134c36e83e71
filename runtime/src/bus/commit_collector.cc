// The commit collector: shadows, the diff of live pages against their twins, undo and verify
// (Bus methods; the class and its locking contract are in bus.h). The protocol that keeps every
// store is in docs/Runtime.md ("The commit protocol"): take a granule's mark clean before reading
// the granule, and change the twin only by the delta made from the bytes read.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bus/bus.h"
#include "bus/shadow_scan.h"
#include "bus/tx_gate.h"
#include "delta/delta_internal.h"

#if defined(__SANITIZE_THREAD__)
#define MMSB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MMSB_TSAN 1
#endif
#endif

#ifdef MMSB_TSAN
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
#endif

namespace mmsb {
namespace {

constexpr std::size_t kOsPageBytes = 4096;

// The diff reads live page memory while other threads may store to it. Those reads race by
// design (a store concurrent with a commit may or may not be in it; its mark decides which commit
// logs it for sure), so ThreadSanitizer is told to ignore them; the marks, the twin and the
// transaction gate stay checked.
struct LiveReads {
#ifdef MMSB_TSAN
  LiveReads() { AnnotateIgnoreReadsBegin(__FILE__, __LINE__); }
  ~LiveReads() { AnnotateIgnoreReadsEnd(__FILE__, __LINE__); }
#endif
};

// Whether any of shadow[0, n) is set, with relaxed loads (barriers on other threads mark
// concurrently).
bool AnyMarked(const std::uint8_t* shadow, std::size_t n) {
  std::size_t i = 0;
  for (; i < n && (reinterpret_cast<std::uintptr_t>(shadow + i) & 7) != 0; ++i) {
    if (__atomic_load_n(&shadow[i], __ATOMIC_RELAXED) != 0) return true;
  }
  for (; i + 32 <= n; i += 32) {
    const auto* w = reinterpret_cast<const std::uint64_t*>(shadow + i);
    if ((__atomic_load_n(&w[0], __ATOMIC_RELAXED) | __atomic_load_n(&w[1], __ATOMIC_RELAXED) |
         __atomic_load_n(&w[2], __ATOMIC_RELAXED) | __atomic_load_n(&w[3], __ATOMIC_RELAXED)) != 0)
      return true;
  }
  for (; i < n; ++i) {
    if (__atomic_load_n(&shadow[i], __ATOMIC_RELAXED) != 0) return true;
  }
  return false;
}

// Takes the marks of shadow[0, n) clean, copying them to marks[0, n); returns how many were set.
// Each set byte is swapped with an atomic exchange (a full barrier on x86), so the granule's
// bytes are read after the exchange: a store whose mark the exchange saw is in the read (the
// barrier stores before it marks); a store whose mark it did not see leaves its mark set for the
// next commit. Whole words are swapped when they lie inside this page's part of the shadow;
// neighbouring pages share shadow words at the edges, so edge bytes are swapped one by one.
std::size_t TakeMarks(std::uint8_t* shadow, std::size_t n, std::uint8_t* marks) {
  // Most pages are idle: a read-only scan first, so an untouched page costs no writes (and
  // `marks` is left as it was: callers only read it when something was taken or they clear it).
  if (!AnyMarked(shadow, n)) return 0;
  std::size_t taken = 0;
  std::size_t i = 0;
  auto take_byte = [&](std::size_t k) {
    std::uint8_t v = 0;
    if (__atomic_load_n(&shadow[k], __ATOMIC_RELAXED) != 0)
      v = __atomic_exchange_n(&shadow[k], std::uint8_t{0}, __ATOMIC_SEQ_CST);
    marks[k] = v != 0;
    taken += v != 0;
  };
  for (; i < n && (reinterpret_cast<std::uintptr_t>(shadow + i) & 7) != 0; ++i) take_byte(i);
  for (; i + 8 <= n; i += 8) {
    auto* word = reinterpret_cast<std::uint64_t*>(shadow + i);
    std::uint64_t v = __atomic_load_n(word, __ATOMIC_RELAXED);
    if (v != 0) v = __atomic_exchange_n(word, std::uint64_t{0}, __ATOMIC_SEQ_CST);
    if (v == 0) {  // most words of a large, sparsely written page: one store
      std::memset(marks + i, 0, 8);
      continue;
    }
    for (int b = 0; b < 8; ++b) {
      const bool set = ((v >> (8 * b)) & 0xff) != 0;
      marks[i + b] = set;
      taken += set;
    }
  }
  for (; i < n; ++i) take_byte(i);
  return taken;
}

// Whether this process has no thread but the caller (from /proc/self/stat's num_threads, the
// 20th field); false when that cannot be read.
bool SoleThread() {
  const int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');  // the command name may hold spaces and parentheses
  if (p == nullptr) return false;
  // Fields 3 (state) to 19 follow the name; num_threads is the 18th of them.
  for (int field = 3; field <= 20 && p != nullptr; ++field) p = std::strchr(p + 1, ' ');
  return p != nullptr && std::strtol(p + 1, nullptr, 10) == 1;
}

// Whether a store-then-mark barrier marked granule `g` after TakeMarks read it (the store was in
// flight: its mark will reach the next commit).
bool MarkArrived(const std::uint8_t* shadow, std::size_t g) {
  return shadow != nullptr && __atomic_load_n(&shadow[g], __ATOMIC_ACQUIRE) != 0;
}

}  // namespace

std::uint8_t* Bus::ShadowFor(const Page* p) const {
  if (Rec(p)->size_class == kExternalStorage)
    return nullptr;  // no barrier shadow: always fully diffed
  if (Rec(p)->is_static_) {
    const rt::ShadowRegion& r = rt::g_static_region;
    const std::uintptr_t off = reinterpret_cast<std::uintptr_t>(Rec(p)->data_) - r.base;
    return off < r.span ? r.shadow + (off >> kGranuleShift) : nullptr;
  }
  return arena_->ShadowOf(Rec(p)->data_);
}

void Bus::ReportMiss(const Page* p, ByteRun run, Epoch after_epoch, Epoch epoch, bool sampled) {
  VerifyMiss m;
  m.page = Rec(p)->id_;
  m.page_name = Rec(p)->name_;
  m.offset = run.offset;
  m.length = run.length;
  m.after_epoch = after_epoch;
  m.epoch = epoch;
  m.sampled = sampled;
  if (Rec(p)->type_ != nullptr) {
    auto lookup = [this](std::string_view n) NO_THREAD_SAFETY_ANALYSIS -> const TypeDescriptor* {
      auto it = types_.find(std::string(n));
      return it == types_.end() ? nullptr : it->second.get();
    };
    if (auto f = ResolveField(*Rec(p)->type_, run.offset, lookup))
      m.field = Rec(p)->type_->name + "." + f->path;
  }
  stats_.verify_misses += m.length;
  if (sampled) ++stats_.sampled_misses;
  if (options_.on_verify_miss) {
    options_.on_verify_miss(m);
  } else {
    std::fprintf(stderr,
                 "mmsb: %s: page %llu%s%s: %u byte(s) at offset %u changed without a "
                 "barrier%s%s, after epoch %llu and before epoch %llu\n",
                 sampled ? "sampled verify" : "verify", static_cast<unsigned long long>(m.page),
                 m.page_name.empty() ? "" : " ", m.page_name.c_str(), m.length, m.offset,
                 m.field.empty() ? "" : " in ", m.field.c_str(),
                 static_cast<unsigned long long>(m.after_epoch),
                 static_cast<unsigned long long>(m.epoch));
  }
  misses_.push_back(std::move(m));
}

void Bus::SettleSuspects(bool final) {
  if (suspects_.empty()) return;
  for (const Suspect& s : suspects_) {
    Page** pp = by_id_.Find(s.page);  // page ids are never reused
    if (pp == nullptr) continue;      // freed since: its pending bytes went with it
    Page* p = *pp;
    const std::uint8_t* shadow = ShadowFor(p);
    bool arrived = false;
    for (std::size_t g = s.run.offset >> kGranuleShift;
         !arrived && g <= ((s.run.offset + s.run.length - 1) >> kGranuleShift); ++g) {
      arrived = MarkArrived(shadow, g);
    }
    // A mark that arrived since the check belongs to a store-then-mark barrier that was between
    // its store and its mark (or to a later tracked store of the same granule): not a miss.
    if (!arrived) ReportMiss(p, s.run, s.after_epoch, s.epoch, s.sampled);
  }
  suspects_.clear();
  (void) final;
}

void Bus::SettleAtStop() {
  MutexLock lock(&mu_);
  SettleSuspects(/*final=*/true);
  misses_.clear();
}

Delta Bus::DiffTaken(Page* p, const std::uint8_t* marks, bool whole, UndoLog* undo,
                     bool derived) const NO_THREAD_SAFETY_ANALYSIS {
  const std::size_t size = Rec(p)->size_;
  const bool first = !Rec(p)->twin_valid;
  // First sight of the page: its epoch-0 image is all zeros (see docs/SerializationSpec.md).
  const std::uint8_t* before = first ? Zeros(size) : Rec(p)->twin;
  // Storage of a large arena block (not a static page's, which InitRecord also files under the
  // large class: its memory is the program's, and its twin a plain allocation).
  const bool arena_large = !Rec(p)->is_static_ && Rec(p)->size_class == Arena::kLargeClass;
  TxGate::RacePoint();  // between taking the marks and reading the granules
  Delta d;
  if (first && arena_large) {
    // A large heap page's first diff reads only the OS pages that may hold data (present or
    // swapped in the page table): one never written reads as zeros, and reading it would back it
    // with memory. A store that happens-before this commit has made its page present; one racing
    // with it leaves its mark for the next commit (the marks were taken before this read).
    std::vector<std::uint8_t> present;
    Arena::MayHoldData(Rec(p)->data_, size, &present);
    [[maybe_unused]] LiveReads ignore;
    d = delta_internal::DiffPageFromZeros(Rec(p)->id_, Rec(p)->epoch_, Rec(p)->data_,
                                          static_cast<std::uint32_t>(size), present.data());
  } else if (!whole && !first && undo == nullptr) {
    // The marked granules' diff applies itself to the twin as it goes (each granule's twin line
    // still in cache), from the one read of live memory the delta's bytes come from. Not with an
    // undo log, which must save the twin's bytes before they change.
    [[maybe_unused]] LiveReads ignore;
    d = delta_internal::DiffPage(Rec(p)->id_, Rec(p)->epoch_, before, Rec(p)->data_,
                                 static_cast<std::uint32_t>(size), marks, Rec(p)->twin);
    return d;
  } else {
    [[maybe_unused]] LiveReads ignore;
    d = delta_internal::DiffPage(Rec(p)->id_, Rec(p)->epoch_, before, Rec(p)->data_,
                                 static_cast<std::uint32_t>(size),
                                 whole || first ? nullptr : marks);
  }
  if (first) {
    // The twin becomes the bytes the diff read (never a second read of live memory, which could
    // take in a store that no delta holds).
    if (undo != nullptr && !d.empty()) undo->Save(p, Rec(p)->epoch_, d, before, derived);
    // A large page's twin is already zero: the arena hands out large blocks with their twin range
    // fresh or returned to the OS (MADV_DONTNEED) at the last free, and nothing writes a twin
    // before its page's first commit. Not writing it keeps it unbacked: only the OS pages the
    // delta below lands in take memory (docs/Runtime.md, "Memory").
    if (!arena_large) std::memset(Rec(p)->twin, 0, size);
    Rec(p)->twin_valid = true;
  } else if (!d.empty() && undo != nullptr) {
    undo->Save(p, Rec(p)->epoch_, d, before, derived);
  }
  if (!d.empty()) MMSB_CHECK(d.ApplyTo({Rec(p)->twin, size}).ok());
  return d;
}

Delta Bus::TakeMarksAndDiff(Page* p, bool full, UndoLog* undo) const NO_THREAD_SAFETY_ANALYSIS {
  const std::size_t granules = GranuleCount(Rec(p)->size_);
  std::uint8_t* shadow = ShadowFor(p);
  // Per thread: the graph's pool diffs distinct pages at once.
  thread_local std::vector<std::uint8_t> marks;
  if (marks.size() < granules) marks.resize(granules);
  const std::size_t taken = shadow != nullptr ? TakeMarks(shadow, granules, marks.data()) : 0;
  const bool whole = full || Rec(p)->escaped_ || !Rec(p)->twin_valid;
  if (!whole && taken == 0) return Delta();
  return DiffTaken(p, marks.data(), whole, undo, /*derived=*/true);
}

void Bus::DiscardDerived(Page* p) const NO_THREAD_SAFETY_ANALYSIS {
  PageRecord* rec = Rec(p);
  // Marks first, by exchange, then the bytes. A store to the page from elsewhere (against the
  // rule of graph/graph.h, but the log must not lose it) stores before it marks: if its mark was
  // taken, its bytes were stored before the restore, which overwrites them (memory, twin and log
  // agree); if not, the mark stays and the next commit diffs the granule against the restored
  // twin. A plain clear after the restore would drop the mark of a store made in between.
  if (std::uint8_t* shadow = ShadowFor(p)) {
    const std::size_t granules = GranuleCount(rec->size_);
    for (std::size_t g = 0; g < granules; ++g) {
      if (__atomic_load_n(&shadow[g], __ATOMIC_RELAXED) != 0)
        __atomic_exchange_n(&shadow[g], std::uint8_t{0}, __ATOMIC_SEQ_CST);
    }
  }
  std::memcpy(rec->data_, rec->twin, rec->size_);
}

bool Bus::HasMarks(const Page* p) const NO_THREAD_SAFETY_ANALYSIS {
  const std::uint8_t* shadow = ShadowFor(p);
  return shadow != nullptr && AnyMarked(shadow, GranuleCount(Rec(p)->size_));
}

template <std::size_t Granules>
[[gnu::always_inline]] inline void Bus::DiffSmallDerived(
    PageRecord* rec, bool full, UndoLog* undo, Delta* out) const NO_THREAD_SAFETY_ANALYSIS {
  const std::size_t size = rec->size_;
  std::uint8_t* shadow = arena_->ShadowOf(rec->data_);
  const std::size_t granules = Granules != 0 ? Granules : GranuleCount(size);
  // The marks, taken as TakeMarks takes them: an exchange before the granule is read. Bit g of
  // `diffed` is set for each granule to diff: every one when the page is diffed whole.
  unsigned diffed = 0;
  for (std::size_t g = 0; g < granules; ++g) {
    if (__atomic_load_n(&shadow[g], __ATOMIC_RELAXED) != 0 &&
        __atomic_exchange_n(&shadow[g], std::uint8_t{0}, __ATOMIC_SEQ_CST) != 0)
      diffed |= 1u << g;
  }
  if (full || rec->escaped_) {
    diffed = (1u << granules) - 1;
  } else if (diffed == 0) {
    return;
  }
  TxGate::RacePoint();  // between taking the marks and reading the granules
  // Whole granules: a pooled slot's storage (and its twin's) is its class size, a power of two of
  // at least a granule, so the last granule's bytes past `size` are the slot's own. They are read
  // and copied (into the twin, where nothing reads them) but never diffed: the last granule's
  // mask drops them. One read of live memory: the delta's bytes and the twin's new bytes both come
  // from `snap`.
#ifndef NDEBUG
  MMSB_CHECK(rec->capacity >= granules * kGranuleSize);
#endif
  alignas(64) std::uint8_t snap[kSmallDerivedBytes];
  std::uint8_t* twin = rec->twin;
  std::uint64_t masks[kSmallDerivedBytes / kGranuleSize];
  std::uint64_t any = 0;
  const unsigned tail = static_cast<unsigned>(size % kGranuleSize);
  {
    [[maybe_unused]] LiveReads ignore;
    for (std::size_t g = 0; g < granules; ++g) {
      const std::size_t off = g * kGranuleSize;
      std::uint64_t m = 0;
      if ((diffed >> g) & 1) {
        std::memcpy(snap + off, rec->data_ + off, kGranuleSize);
        m = delta_internal::GranuleDiffMask(twin + off, snap + off);
      }
      masks[g] = m;
      any |= m;
    }
  }
  if (tail != 0) {
    any &= ~masks[granules - 1];
    masks[granules - 1] &= (std::uint64_t{1} << tail) - 1;
    any |= masks[granules - 1];
  }
  if (any == 0) return;
  ByteRun runs[delta_internal::kInlineRuns];
  const std::uint32_t inline_runs = delta_internal::DeltaFromMasks<Granules>(
      out, rec->id_, rec->epoch_, static_cast<std::uint32_t>(size), masks, snap, runs);
  if (undo == &undo_) {
    // The commit thread's log, so `out` is in the epoch's deltas (the serial loop writes each
    // delta in its final slot), where it stays until a rollback: only the bytes are saved. An
    // inline delta's runs are the ones just gathered (DeltaFromMasks returns them), so the save
    // walks them rather than reading them back out of the delta.
#ifndef NDEBUG
    // Only the serial loop passes undo_ (the pool's recomputes have logs of their own).
    MMSB_CHECK(out >= epoch_deltas_.data() && out < epoch_deltas_.data() + epoch_deltas_.size());
#endif
    const auto index = static_cast<std::uint32_t>(out - epoch_deltas_.data());
    if (inline_runs != 0) {
      undo->SaveDerivedRuns(index, runs, inline_runs, out->changed_bytes(), twin);
    } else {
      undo->SaveDerived(index, *out, twin);
    }
  } else if (undo != nullptr) {
    undo->Save(rec, rec->epoch_, *out, twin, /*restore_live=*/true);
  }
  // A changed granule's bytes in `snap` are its old twin bytes where unchanged and the delta's
  // bytes where changed: copying the granule is applying the delta.
  for (std::size_t g = 0; g < granules; ++g) {
    if (masks[g] != 0) std::memcpy(twin + g * kGranuleSize, snap + g * kGranuleSize, kGranuleSize);
  }
}

void Bus::DiffDerived(Page* p, bool full, UndoLog* undo,
                      Delta* out) const NO_THREAD_SAFETY_ANALYSIS {
  PageRecord* rec = &RecOf(*p);
  const std::size_t size = rec->size_;
  // Pooled arena pages only: their storage is granule-aligned, so granule g of the page is
  // shadow byte g, and the twin is a plain committed image (not a first sight's zeros).
  if (size > kSmallDerivedBytes || !rec->twin_valid || rec->is_static_ ||
      rec->size_class == Arena::kLargeClass || rec->size_class == kExternalStorage) {
    *out = TakeMarksAndDiff(p, full, undo);
    return;
  }
  if (size - 1 < kGranuleSize) {  // 1..64 bytes: one granule
    DiffSmallDerived<1>(rec, full, undo, out);
  } else {
    DiffSmallDerived<0>(rec, full, undo, out);
  }
}

void Bus::AddEpochDelta(Page* p, Delta&& d, Epoch new_epoch) {
  Rec(p)->epoch_ = new_epoch;
  Rec(p)->maybe_nonzero = true;
  epoch_delta_bytes_ += d.changed_bytes();
  epoch_deltas_.push_back(std::move(d));
}

void Bus::SliceMarks(const Page* p, SampleRange sample, std::uint8_t* marks) {
  const std::size_t begin = sample.begin * kGranuleSize, end = sample.end * kGranuleSize;
  const PageRecord* rec = Rec(p);
  if (rec->is_static() || rec->size_class != Arena::kLargeClass || end - begin < kOsPageBytes) {
    std::memset(marks + sample.begin, 1, sample.end - sample.begin);
    return;
  }
  // A large heap page's slice skips the OS pages that neither the page nor its twin has in the
  // page table: both read as zeros (private anonymous memory), so they cannot differ, and reading
  // them would back them with memory on kernels that back read faults. A store that
  // happens-before this commit has made its page present; one racing with it leaves its mark for
  // the next commit. Marked granules there are diffed as marked.
  const std::size_t first = begin & ~(kOsPageBytes - 1);
  const std::size_t len = end - first;
  std::vector<std::uint8_t>& data_present = slice_present_[0];
  std::vector<std::uint8_t>& twin_present = slice_present_[1];
  Arena::MayHoldData(rec->data() + first, len, &data_present);
  Arena::MayHoldData(rec->twin + first, len, &twin_present);
  for (std::size_t k = 0; k < data_present.size(); ++k) {
    if (data_present[k] == 0 && twin_present[k] == 0) continue;
    const std::size_t g0 = std::max(sample.begin, (first + k * kOsPageBytes) / kGranuleSize);
    const std::size_t g1 = std::min(sample.end, (first + (k + 1) * kOsPageBytes) / kGranuleSize);
    if (g0 < g1) std::memset(marks + g0, 1, g1 - g0);
  }
}

void Bus::CollectPage(Page* p, Epoch new_epoch, SampleRange sample) {
  const std::size_t granules = GranuleCount(Rec(p)->size_);
  std::uint8_t* shadow = ShadowFor(p);
  if (marks_.size() < granules) marks_.resize(granules);
  std::uint8_t* marks = marks_.data();
  const std::size_t taken = shadow != nullptr ? TakeMarks(shadow, granules, marks) : 0;
  // A check compares the full diff with the marks; pages without a twin or marks (new, escaped,
  // no shadow) are diffed in full anyway and have nothing to check. Sampling checks the granules
  // [sample.begin, sample.end) (a large page is checked a slice per commit, see CollectAll).
  if (verify_) sample = {0, granules};
  sample.end = std::min(sample.end, granules);
  const bool sampled = sample.begin < sample.end;
  const bool check = sampled && Rec(p)->twin_valid && !Rec(p)->escaped_ && shadow != nullptr;
  const bool partial = check && (sample.begin != 0 || sample.end != granules);
  const bool full = !Rec(p)->twin_valid || Rec(p)->escaped_ || verify_ || (check && !partial);
  if (full) {
    ++stats_.full_diffs;
  } else {
    if (taken == 0 && !check) return;
    stats_.granules_diffed += taken;
  }
  if (check && !verify_) ++stats_.sampled_pages;
  if (check && taken == 0) std::memset(marks, 0, granules);  // TakeMarks left them as they were
  // A partial check diffs the marked granules and the whole slice: the slice's own marks are kept
  // aside for the comparison, and it is diffed as if marked.
  std::uint8_t* slice_marks = marks;
  if (partial) {
    sample_marks_.assign(marks + sample.begin, marks + sample.end);
    SliceMarks(p, sample, marks);
    slice_marks = sample_marks_.data() - sample.begin;  // indexed by granule, valid in the slice
  }
  Delta d = DiffTaken(p, marks, full, track_undo_ ? &undo_ : nullptr, /*derived=*/false);
  if (check && !d.empty()) {
    // One read gave both answers: the full delta, and which of its granules were marked. Bytes
    // changed in an unmarked granule are misses, unless a barrier on another thread had stored
    // and not yet marked when the marks were taken (store-then-mark).
    std::vector<ByteRun>& missed = missed_;
    missed.clear();
    d.ForEachRun(
        [&](std::uint32_t off, std::uint32_t len, const std::uint8_t*) NO_THREAD_SAFETY_ANALYSIS {
          for (std::uint32_t pos = off, end = off + len; pos < end;) {
            const std::size_t g = pos >> kGranuleShift;
            const std::uint32_t gend =
                std::min<std::uint32_t>(end, static_cast<std::uint32_t>((g + 1) << kGranuleShift));
            // Outside the slice only marked granules were diffed: none of their bytes is a miss.
            if (g >= sample.begin && g < sample.end && slice_marks[g] == 0) {
              if (!missed.empty() && missed.back().offset + missed.back().length == pos) {
                missed.back().length += gend - pos;
              } else {
                missed.push_back({pos, gend - pos});
              }
            }
            pos = gend;
          }
        });
    if (!missed.empty()) {
      // A store-then-mark barrier on another thread may be between its store and its mark. With
      // no other thread in the process none can be: report now. Otherwise give such marks a
      // moment to arrive, and leave the rest to the next commit (SettleSuspects): a mark still
      // missing then is a miss.
      const bool alone = SoleThread();
      for (int i = 0; !alone && i < 16 && !missed.empty(); ++i) {
        std::erase_if(missed, [&](const ByteRun& r) {
          for (std::size_t g = r.offset >> kGranuleShift;
               g <= ((r.offset + r.length - 1) >> kGranuleShift); ++g) {
            if (!MarkArrived(shadow, g)) return false;
          }
          return true;
        });
        if (!missed.empty()) sched_yield();
      }
      for (const ByteRun& r : missed) {
        if (alone) {
          ReportMiss(p, r, new_epoch - 1, new_epoch, !verify_);
        } else {
          suspects_.push_back({Rec(p)->id_, r, new_epoch - 1, new_epoch, !verify_});
        }
      }
    }
  }
  if (!d.empty()) AddEpochDelta(p, std::move(d), new_epoch);
}

void Bus::Rollback() {
  // Twins go back to the previous epoch; live memory is the program's and is never written here
  // (other threads may be storing to it). The granules whose twin bytes went back are marked, so
  // the next commit diffs them again and logs whatever the program holds then. Pages derived by
  // propagation are the runtime's own writes and do go back.
  undo_.Rollback(
      [this](Page* p, std::uint32_t off, std::uint32_t len) NO_THREAD_SAFETY_ANALYSIS {
        // A page without a shadow is diffed in full at every commit anyway.
        if (std::uint8_t* shadow = ShadowFor(p)) {
          for (std::size_t g = off >> kGranuleShift; g <= ((off + len - 1) >> kGranuleShift); ++g)
            __atomic_store_n(&shadow[g], std::uint8_t{1}, __ATOMIC_RELAXED);
        }
      },
      // The derived deltas are still here: Propagate leaves them for this rollback.
      epoch_deltas_,
      [this](PageId id) NO_THREAD_SAFETY_ANALYSIS {
        Page** p = by_id_.Find(id);
        MMSB_CHECK(p != nullptr);  // a commit frees no page before its rollback
        return *p;
      });
  epoch_deltas_.clear();
  epoch_delta_bytes_ = 0;
  misses_.clear();
}

void Bus::CollectAll(Epoch new_epoch, bool first_round) {
  const std::size_t n = live_.size();
  // Sampled verification's slice: the bytes from the cursor (sample_cursor_, sample_granule_) on
  // until they make at least 1/sample_every_ of the live bytes, so every byte is checked within
  // sample_every_ commits while the set of pages stays the same. Pages are taken whole, except
  // one larger than kSampleSplitBytes, which is taken a granule range at a time: a commit checks
  // a slice of a huge page, not all of it.
  std::size_t sample_begin = 0, sample_count = 0;
  sample_ranges_.clear();
  if (first_round && !verify_ && sample_every_ != 0 && n != 0) {
    const std::uint64_t budget = std::min<std::uint64_t>(
        (stats_.cpu_bytes + sample_every_ - 1) / sample_every_, kSampleMaxSliceBytes);
    if (sample_cursor_ >= n) sample_cursor_ = 0, sample_granule_ = 0;
    sample_begin = sample_cursor_;
    std::uint64_t bytes = 0;
    std::size_t at = sample_cursor_, g = sample_granule_;
    while (sample_count < n && (sample_count == 0 || bytes < budget)) {
      const Page* p = live_[at];
      const std::size_t granules = GranuleCount(Rec(p)->size_);
      if (g >= granules) g = 0;  // the page shrank under the cursor (a new page in its slot)
      std::size_t end = granules;
      if (Rec(p)->size_ > kSampleSplitBytes) {
        const std::uint64_t left = budget > bytes ? budget - bytes : 0;
        end = std::min<std::size_t>(granules, g + std::max<std::uint64_t>(1, (left + 63) / 64));
      }
      sample_ranges_.push_back({g, end});
      bytes += end == granules && g == 0 ? Rec(p)->size_ : (end - g) * 64;
      ++sample_count;
      if (end == granules) {
        at = (at + 1) % n;
        g = 0;
      } else {
        g = end;
        break;  // the budget ends inside this page
      }
    }
    sample_cursor_ = at;
    sample_granule_ = g;
  }
  // Most pages are idle: an idle page costs its scan entry and its shadow bytes, read in order
  // (no record). A page that needs collecting has its record prefetched ahead.
  // `k` is the page's place in the sampled slice, counted from sample_begin: the slice is the
  // pages i with (i - sample_begin) mod n < sample_count, one or two ranges of i.
  const auto sampled_at = [&](std::size_t i) {
    return (i >= sample_begin ? i - sample_begin : i + n - sample_begin) < sample_count;
  };
  // The first page from `i` on that is in the slice (n when none is).
  const auto next_sampled = [&](std::size_t i) -> std::size_t {
    if (sample_count == 0) return n;
    if (sampled_at(i)) return i;
    return i < sample_begin ? sample_begin : n;  // past the slice's start: its wrap is behind i
  };
  std::size_t i = 0;
  while (i < n) {
    if (!verify_) {
      // The idle run from i, up to the slice: CollectPage would take no mark and diff nothing
      // (twin valid, not escaped, not verified or sampled, no mark set; a mark set after this
      // read stays for the next commit, as in TakeMarks). A tight loop: an idle page costs a few
      // instructions, the shadows of the pages ahead prefetched.
      const std::size_t stop = next_sampled(i);
      while (i < stop) {
        const ScanEntry& entry = scan_[i];
        if (i + kCollectPrefetchShadows < n)
          __builtin_prefetch(scan_[i + kCollectPrefetchShadows].shadow);
        if (!entry.idle_ok) break;
        if (entry.granules == 1 ? __atomic_load_n(entry.shadow, __ATOMIC_RELAXED) != 0
                                : AnyMarked(entry.shadow, entry.granules))
          break;
        ++i;
      }
      if (i == n) break;
    }
    const bool sampled = sampled_at(i);
    if (i + kCollectPrefetchRecords < n && !scan_[i + kCollectPrefetchRecords].idle_ok)
      __builtin_prefetch(live_[i + kCollectPrefetchRecords]);
    ScanEntry& entry = scan_[i];
    Page* p = live_[i];
    const std::size_t k = i >= sample_begin ? i - sample_begin : i + n - sample_begin;
    CollectPage(p, new_epoch, sampled ? sample_ranges_[k] : SampleRange{});
    entry.shadow = ShadowFor(p);
    const std::size_t granules = GranuleCount(Rec(p)->size_);
    entry.granules = static_cast<std::uint32_t>(granules);
    entry.idle_ok = Rec(p)->twin_valid && !Rec(p)->escaped_ && entry.shadow != nullptr &&
                    granules == entry.granules;
    ++i;
  }
  // Marks in the static window outside any page are never read: they stay (clearing them would
  // race with barriers marking a page's granule in the same shadow word).
}

}  // namespace mmsb
