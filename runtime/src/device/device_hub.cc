#include "device/device_hub.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

#include <fmt/format.h>

#include "mmsb/barrier.h"

namespace mmsb {
namespace {

// Granules one DiffToRuns call may compare (4 GiB): its byte totals are 32-bit.
constexpr std::uint64_t kMaxDiffGranules = (std::uint64_t{1} << 26) - 1;
constexpr std::uint64_t kInitialPullRuns = 1024;
constexpr std::uint64_t kInitialPullBytes = 64 * 1024;

std::size_t Align16(std::size_t n) { return (n + 15) & ~std::size_t{15}; }

// Appends [offset, offset+length) to runs, merging with the last run when adjacent.
void AppendRun(std::vector<ByteRun>& runs, std::uint32_t offset, std::uint32_t length) {
  if (!runs.empty() && runs.back().offset + runs.back().length == offset) {
    runs.back().length += length;
  } else {
    runs.push_back({offset, length});
  }
}

// Writes bytes into a host page the way instrumented code would: through the barrier.
void WriteThroughBarrier(std::uint8_t* dst, const std::uint8_t* src, std::size_t n) {
  if (n == 0) return;
  rt::MarkRange(dst, n);
  std::memcpy(dst, src, n);
}

}  // namespace

DeviceHub::DeviceHub(const CommittedImages* images, std::shared_ptr<DeviceBackend> backend,
                     const DeviceOptions& options)
    : images_(images), backend_(std::move(backend)), options_(options) {
  managed_limit_ = options_.managed_limit_bytes != 0 ? options_.managed_limit_bytes
                                                     : backend_->info().total_bytes / 2;
}

DeviceHub::~DeviceHub() {
  (void)backend_->Synchronize();
  for (auto& [page, c] : copies_) {
    backend_->Free(c.data);
    backend_->Free(c.base);
  }
  for (auto& [page, u] : unified_) backend_->FreeManaged(u.data);
  backend_->FreePinned(pinned_);
  backend_->Free(device_staging_);
  backend_->Free(pull_out_);
}

bool DeviceHub::HasDevicePages() const {
  if (!unified_.empty()) return true;
  return std::any_of(copies_.begin(), copies_.end(),
                     [](const auto& kv) { return kv.second.gpu_page; });
}

DeviceHub::MirrorState* DeviceHub::FindCopy(const Page* p) {
  auto it = copies_.find(p);
  return it == copies_.end() ? nullptr : &it->second;
}

void DeviceHub::RebuildIndex() {
  if (!index_dirty_) return;
  by_id_.clear();
  for (auto& [page, c] : copies_) by_id_[page->id()] = &c;
  index_dirty_ = false;
}

Expected<std::uint8_t*> DeviceHub::AllocateDevice(std::size_t bytes) {
  auto p = backend_->Allocate(bytes);
  if (!p.ok()) return p.status();
  device_bytes_ += bytes;
  return static_cast<std::uint8_t*>(*p);
}

void DeviceHub::FreeDevice(std::uint8_t* p, std::size_t bytes) {
  if (p == nullptr) return;
  backend_->Free(p);
  device_bytes_ -= bytes;
}

Status DeviceHub::EnsurePinned(std::size_t bytes) {
  if (bytes <= pinned_bytes_) return Status::Ok();
  const std::size_t want = std::max({bytes, pinned_bytes_ * 2, options_.staging_bytes});
  backend_->FreePinned(pinned_);  // every use ends with a Synchronize: nothing reads it now
  pinned_ = nullptr;
  pinned_bytes_ = 0;
  auto p = backend_->AllocatePinned(want);
  if (!p.ok()) return p.status();
  pinned_ = static_cast<std::uint8_t*>(*p);
  pinned_bytes_ = want;
  return Status::Ok();
}

Status DeviceHub::EnsureDeviceStaging(std::size_t bytes) {
  if (bytes <= device_staging_bytes_) return Status::Ok();
  const std::size_t want = std::max({bytes, device_staging_bytes_ * 2, options_.staging_bytes});
  backend_->Free(device_staging_);
  device_staging_ = nullptr;
  device_staging_bytes_ = 0;
  auto p = backend_->Allocate(want);
  if (!p.ok()) return p.status();
  device_staging_ = static_cast<std::uint8_t*>(*p);
  device_staging_bytes_ = want;
  return Status::Ok();
}

Status DeviceHub::UploadCommitted(const Page* p, std::uint8_t* dst) {
  const std::span<const std::uint8_t> image = images_->CommittedImage(p);
  MMSB_RETURN_IF_ERROR(backend_->CopyToDevice(dst, image.data(), image.size()));
  MMSB_RETURN_IF_ERROR(backend_->Synchronize());
  ++stats_.full_uploads;
  return Status::Ok();
}

Status DeviceHub::DeviceError(Status s, const std::vector<MirrorState*>& copies) {
  for (MirrorState* c : copies) c->stale = true;
  ++stats_.device_errors;
  stats_.last_error = s.ToString();
  return s;
}

// ---- Bus hooks
// -----------------------------------------------------------------------------------

Status DeviceHub::OnCreateGpuPage(Page* p) {
  const std::size_t size = p->size();
  auto data = AllocateDevice(size);
  if (!data.ok()) return data.status();
  auto base = AllocateDevice(size);
  if (!base.ok()) {
    FreeDevice(*data, size);
    return base.status();
  }
  // Both start as the page's epoch-0 image: zeros.
  Status s = backend_->Zero(*data, size);
  if (s.ok()) s = backend_->Zero(*base, size);
  if (Status sync = backend_->Synchronize(); s.ok()) s = sync;
  if (!s.ok()) {
    FreeDevice(*data, size);
    FreeDevice(*base, size);
    ++stats_.device_errors;
    stats_.last_error = s.ToString();
    return s;
  }
  MirrorState& c = copies_[p];
  c.page = p;
  c.data = *data;
  c.base = *base;
  c.gpu_page = true;
  index_dirty_ = true;
  return Status::Ok();
}

Expected<DeviceHub::UnifiedStorage> DeviceHub::AllocateUnified(std::size_t size, bool zeroed) {
  if (!backend_->info().managed_memory) {
    return Unsupported(
        fmt::format("device '{}' has no managed memory for unified pages", backend_->info().name));
  }
  if (managed_bytes_ + size > managed_limit_) {
    return OutOfMemory(
        fmt::format("a unified page of {} bytes would take managed memory past its limit ({} of {} "
                    "bytes in use); "
                    "the limit keeps managed memory from oversubscribing the device "
                    "(DeviceOptions::managed_limit_bytes)",
                    size, managed_bytes_, managed_limit_));
  }
  std::uint64_t free_bytes = 0;
  if (backend_->MemoryInfo(&free_bytes, nullptr).ok() && size > free_bytes) {
    return OutOfMemory(fmt::format(
        "a unified page of {} bytes does not fit the device's {} free bytes", size, free_bytes));
  }
  std::unique_ptr<std::uint8_t[]> twin(new (std::nothrow) std::uint8_t[size]);
  if (!twin)
    return OutOfMemory(fmt::format("cannot allocate the {}-byte twin of a unified page", size));
  auto data = backend_->AllocateManaged(size);
  if (!data.ok()) return data.status();
  auto* bytes = static_cast<std::uint8_t*>(*data);
  if (zeroed) {
    Status s = backend_->Zero(bytes, size);  // on the device, where the page prefers to live
    if (Status sync = backend_->Synchronize(); s.ok()) s = sync;
    if (!s.ok()) {
      backend_->FreeManaged(bytes);
      return s;
    }
  }
  return UnifiedStorage{bytes, twin.release(), size};
}

void DeviceHub::AdoptUnified(Page* p, const UnifiedStorage& storage) {
  Unified& u = unified_[p];
  u.data = storage.data;
  u.twin.reset(storage.twin);
  u.size = storage.size;
  managed_bytes_ += storage.size;
}

void DeviceHub::OnFreePage(Page* p) {
  if (auto it = copies_.find(p); it != copies_.end()) {
    FreeDevice(it->second.data, p->size());
    FreeDevice(it->second.base, p->size());
    copies_.erase(it);
    index_dirty_ = true;
  }
  if (auto it = unified_.find(p); it != unified_.end()) {
    backend_->FreeManaged(it->second.data);
    managed_bytes_ -= it->second.size;
    unified_.erase(it);
  }
}

Status DeviceHub::BeforeCommit() {
  // Unified pages are about to be read in full by the diff: bring them over in bulk rather than
  // by page faults. A failed hint is reported, never fatal.
  if (!unified_.empty()) {
    Status s;
    for (auto& [page, u] : unified_) {
      if (s.ok()) s = backend_->Prefetch(u.data, u.size, MemoryPlace::kHost);
    }
    if (Status sync = backend_->Synchronize(); s.ok()) s = sync;
    if (!s.ok() && pending_error_.ok()) pending_error_ = DeviceError(s, {});
  }
  std::vector<MirrorState*> gpu;
  for (auto& [page, c] : copies_) {
    if (c.gpu_page && !c.stale) gpu.push_back(&c);
  }
  if (gpu.empty()) return Status::Ok();
  bool conflict = false;
  Status s = PullCopies(gpu, options_.conflict_policy, nullptr, &conflict);
  if (s.ok() || conflict) return s;
  // The device's writes since the last commit cannot be read back: the host state goes on.
  if (pending_error_.ok()) pending_error_ = s.WithContext("pulling Gpu pages before the commit");
  return Status::Ok();
}

Status DeviceHub::SyncCommit(const CommitBatch& batch) {
  Status result = std::exchange(pending_error_, Status::Ok());
  if (!copies_.empty()) {
    RebuildIndex();
    std::vector<MirrorState*> touched;
    for (const Delta& d : batch.deltas) {
      auto it = by_id_.find(d.page());
      if (it == by_id_.end()) continue;
      if (it->second->pending.empty() && !it->second->stale) touched.push_back(it->second);
      it->second->pending.push_back(&d);
    }
    for (auto& [page, c] : copies_) {
      if (c.stale) touched.push_back(&c);
    }
    builder_.Reset();
    composed_.clear();
    std::vector<MirrorState*> in_batch;
    std::uint64_t deltas = 0;
    Status ship;
    for (MirrorState* c : touched) {
      const Page* p = c->page;
      const Delta* d = nullptr;
      if (!c->stale) {
        d = c->pending.front();
        if (c->pending.size() > 1) {
          // Several rounds of one commit (stages, propagation) changed the page: ship their sum.
          Delta acc = *d;
          for (std::size_t i = 1; i < c->pending.size(); ++i) {
            auto composed = Chain(acc, *c->pending[i]);
            if (!composed.ok()) {
              ship = DeviceError(composed.status(), {c});  // re-uploaded whole next time
              break;
            }
            acc = std::move(*composed);
          }
          if (c->stale) continue;
          composed_.push_back(std::move(acc));
          d = &composed_.back();
        }
      }
      const std::uint64_t bytes = d ? d->changed_bytes() : p->size();
      const std::uint64_t granules = d ? ApplyBatchBuilder::DenseGranules(*d) : 0;
      if (!builder_.empty() && !builder_.Fits(bytes, granules)) {
        if (Status s = Ship(in_batch, deltas); !s.ok() && ship.ok()) ship = s;
        builder_.Reset();
        in_batch.clear();
        deltas = 0;
      }
      const std::uint32_t t = builder_.AddTarget(c->data, c->base, p->size());
      Status added = d ? builder_.AddDelta(t, *d)
                       : builder_.AddImage(t, images_->CommittedImage(p).data(), p->size());
      if (!added.ok()) {
        if (ship.ok()) ship = DeviceError(added, {c});
        continue;
      }
      in_batch.push_back(c);
      deltas += d ? 1 : 0;
    }
    if (!builder_.empty()) {
      if (Status s = Ship(in_batch, deltas); !s.ok() && ship.ok()) ship = s;
    }
    for (MirrorState* c : touched) c->pending.clear();
    if (!touched.empty()) ++stats_.syncs;
    if (result.ok()) result = ship;
  }
  if (options_.prefetch_unified_after_commit) {
    for (auto& [page, u] : unified_) (void)backend_->Prefetch(u.data, u.size, MemoryPlace::kDevice);
  }
  return result;
}

Status DeviceHub::Ship(const std::vector<MirrorState*>& copies, std::uint64_t deltas) {
  const std::size_t size = builder_.PackedSize();
  Status s = EnsurePinned(size);
  if (s.ok()) s = EnsureDeviceStaging(size);
  if (!s.ok()) return DeviceError(s, copies);
  const ApplyBatchView view = builder_.Pack(pinned_, device_staging_);
  // One copy, one apply, one synchronise, however many pages.
  s = backend_->CopyToDevice(device_staging_, pinned_, size);
  if (s.ok()) s = backend_->ApplyBatch(view);
  if (Status sync = backend_->Synchronize(); s.ok()) s = sync;
  ++stats_.transfers;
  ++stats_.apply_launches;
  if (!s.ok()) return DeviceError(s, copies);
  for (MirrorState* c : copies) {
    if (c->stale) ++stats_.full_uploads;
    c->stale = false;
  }
  stats_.deltas_shipped += deltas;
  stats_.bytes_shipped += size;
  return Status::Ok();
}

// ---- Pulls
// ---------------------------------------------------------------------------------------

Status DeviceHub::DiffOnDevice(const std::vector<MirrorState*>& copies, std::size_t first,
                               std::size_t last, Pulled* out) {
  const std::size_t n = last - first;
  // Bases: the copy's own, or the committed image uploaded into a temporary buffer.
  std::vector<std::uint8_t*> temps;
  auto free_temps = [&] {
    for (std::uint8_t* t : temps) backend_->Free(t);
  };
  std::vector<DiffTarget> targets(n);
  std::uint64_t granules = 0;
  for (std::size_t i = 0; i < n; ++i) {
    MirrorState* c = copies[first + i];
    const std::size_t size = c->page->size();
    const std::uint8_t* base = c->base;
    if (base == nullptr) {
      auto temp = backend_->Allocate(size);
      if (!temp.ok()) {
        free_temps();
        return temp.status();
      }
      temps.push_back(static_cast<std::uint8_t*>(*temp));
      const std::span<const std::uint8_t> image = images_->CommittedImage(c->page);
      if (Status s = backend_->CopyToDevice(temps.back(), image.data(), size); !s.ok()) {
        (void)backend_->Synchronize();
        free_temps();
        return s;
      }
      base = temps.back();
    }
    targets[i] = {c->data, base, static_cast<std::uint32_t>(size),
                  static_cast<std::uint32_t>(granules)};
    granules += GranuleCount(size);
  }
  const std::size_t table = Align16(n * sizeof(DiffTarget));
  // Room for the totals too: pinned_ must not move while the table's copy is in flight.
  Status s = EnsurePinned(table + sizeof(DiffTotals));
  if (s.ok()) s = EnsureDeviceStaging(table);
  if (s.ok()) {
    std::memcpy(pinned_, targets.data(), n * sizeof(DiffTarget));
    s = backend_->CopyToDevice(device_staging_, pinned_, n * sizeof(DiffTarget));
  }
  DiffTotals totals;
  for (int attempt = 0; s.ok() && attempt < 2; ++attempt) {
    if (pull_out_ == nullptr) {
      const std::size_t bytes = 16 + Align16(pull_max_runs_ * sizeof(DiffRun)) + pull_max_bytes_;
      auto p = backend_->Allocate(bytes);
      if (!p.ok()) {
        s = p.status();
        break;
      }
      pull_out_ = static_cast<std::uint8_t*>(*p);
    }
    auto* dev_totals = reinterpret_cast<DiffTotals*>(pull_out_);
    auto* dev_runs = reinterpret_cast<DiffRun*>(pull_out_ + 16);
    std::uint8_t* dev_bytes = pull_out_ + 16 + Align16(pull_max_runs_ * sizeof(DiffRun));
    s = backend_->DiffToRuns(reinterpret_cast<const DiffTarget*>(device_staging_),
                             static_cast<std::uint32_t>(n), static_cast<std::uint32_t>(granules),
                             dev_runs, pull_max_runs_, dev_bytes, pull_max_bytes_, dev_totals);
    if (s.ok()) s = backend_->CopyToHost(pinned_ + table, dev_totals, sizeof(DiffTotals));
    if (Status sync = backend_->Synchronize(); s.ok()) s = sync;
    if (!s.ok()) break;
    std::memcpy(&totals, pinned_ + table, sizeof totals);
    if (totals.runs <= pull_max_runs_ && totals.bytes <= pull_max_bytes_) {
      const std::size_t runs_bytes = totals.runs * sizeof(DiffRun);
      s = EnsurePinned(runs_bytes + totals.bytes);
      if (s.ok()) s = backend_->CopyToHost(pinned_, dev_runs, runs_bytes);
      if (s.ok()) s = backend_->CopyToHost(pinned_ + runs_bytes, dev_bytes, totals.bytes);
      if (Status sync = backend_->Synchronize(); s.ok()) s = sync;
      if (!s.ok()) break;
      out->copies.assign(copies.begin() + first, copies.begin() + last);
      out->runs.resize(totals.runs);
      if (runs_bytes != 0) std::memcpy(out->runs.data(), pinned_, runs_bytes);
      out->bytes.assign(pinned_ + runs_bytes, pinned_ + runs_bytes + totals.bytes);
      free_temps();
      stats_.pulled_bytes += totals.bytes;
      return Status::Ok();
    }
    // The outputs were too small: grow them to fit (with room to spare) and diff again.
    backend_->Free(pull_out_);
    pull_out_ = nullptr;
    pull_max_runs_ = std::max(pull_max_runs_, totals.runs + totals.runs / 2);
    pull_max_bytes_ = std::max(pull_max_bytes_, totals.bytes + totals.bytes / 2);
  }
  free_temps();
  return s.ok() ? Internal("device diff did not converge") : s;
}

Status DeviceHub::PullCopies(const std::vector<MirrorState*>& copies, ConflictPolicy policy,
                             std::vector<PullReport>* reports, bool* conflict) {
  *conflict = false;
  if (pull_max_runs_ == 0) {
    pull_max_runs_ = kInitialPullRuns;
    pull_max_bytes_ = kInitialPullBytes;
  }
  // Diff on the device, in calls of at most 4 GiB compared.
  std::vector<Pulled> pulls;
  std::size_t first = 0;
  while (first < copies.size()) {
    std::size_t last = first;
    std::uint64_t granules = 0;
    while (last < copies.size() &&
           (last == first ||
            granules + GranuleCount(copies[last]->page->size()) <= kMaxDiffGranules)) {
      granules += GranuleCount(copies[last]->page->size());
      ++last;
    }
    pulls.emplace_back();
    if (Status s = DiffOnDevice(copies, first, last, &pulls.back()); !s.ok()) {
      return DeviceError(s, std::vector<MirrorState*>(copies.begin() + first, copies.end()));
    }
    first = last;
  }
  stats_.pulls += copies.size();

  // Conflicts: bytes the device changed that the host also changed since the last commit (host !=
  // committed image), to a different value. Checked for every page before anything is written.
  std::unordered_map<const MirrorState*, PullReport> by_copy;
  for (const Pulled& pl : pulls) {
    for (const DiffRun& r : pl.runs) {
      const MirrorState* c = pl.copies[r.target];
      const std::uint8_t* host = c->page->data();
      const std::uint8_t* committed = images_->CommittedImage(c->page).data();
      const std::uint8_t* dev = pl.bytes.data() + r.packed;
      PullReport& rep = by_copy[c];
      ++rep.runs;
      rep.bytes += r.end - r.begin;
      for (std::uint32_t i = r.begin; i < r.end; ++i) {
        if (host[i] != committed[i] && host[i] != dev[i - r.begin]) {
          ++rep.conflict_bytes;
          AppendRun(rep.conflicts, i, 1);
        }
      }
    }
  }
  std::uint64_t conflict_bytes = 0;
  const MirrorState* first_conflict = nullptr;
  for (const MirrorState* c : copies) {
    const PullReport& rep = by_copy[c];
    if (rep.conflict_bytes != 0 && first_conflict == nullptr) first_conflict = c;
    conflict_bytes += rep.conflict_bytes;
  }
  if (conflict_bytes != 0) {
    ++stats_.conflicts;
    stats_.conflict_bytes += conflict_bytes;
  }
  auto fill_reports = [&] {
    if (reports == nullptr) return;
    reports->clear();
    for (const MirrorState* c : copies) reports->push_back(by_copy[c]);
  };
  if (conflict_bytes != 0 && policy == ConflictPolicy::kError) {
    *conflict = true;
    fill_reports();
    const PullReport& rep = by_copy[first_conflict];
    const Page* p = first_conflict->page;
    return FailedPrecondition(
        fmt::format("write conflict: the CPU and the device both changed {} byte(s) of page {}{}{} "
                    "since the last commit "
                    "(first at offset {}); nothing was written. Pull with ConflictPolicy::kCpuWins "
                    "or kGpuWins to resolve",
                    rep.conflict_bytes, p->id(), p->name().empty() ? "" : " ", p->name(),
                    rep.conflicts.front().offset));
  }

  // Write the device's bytes into the host pages, leaving the host's where it wins a conflict.
  for (const Pulled& pl : pulls) {
    for (const DiffRun& r : pl.runs) {
      const MirrorState* c = pl.copies[r.target];
      std::uint8_t* host = c->page->data();
      const std::uint8_t* committed = images_->CommittedImage(c->page).data();
      const std::uint8_t* dev = pl.bytes.data() + r.packed;
      PullReport& rep = by_copy[c];
      if (policy != ConflictPolicy::kCpuWins || rep.conflict_bytes == 0) {
        WriteThroughBarrier(host + r.begin, dev, r.end - r.begin);
        rep.applied_bytes += r.end - r.begin;
        continue;
      }
      std::uint32_t i = r.begin;
      while (i < r.end) {
        auto keep_host = [&](std::uint32_t k) {
          return host[k] != committed[k] && host[k] != dev[k - r.begin];
        };
        if (keep_host(i)) {
          ++i;
          continue;
        }
        std::uint32_t j = i;
        while (j < r.end && !keep_host(j)) ++j;
        WriteThroughBarrier(host + i, dev + (i - r.begin), j - i);
        rep.applied_bytes += j - i;
        i = j;
      }
    }
  }
  fill_reports();
  return Status::Ok();
}

// ---- mmsb/mirror.h
// -------------------------------------------------------------------------------

Expected<DeviceSpan> DeviceHub::Mirror(Page* p) {
  if (auto it = unified_.find(p); it != unified_.end())
    return DeviceSpan{it->second.data, p->size()};
  if (MirrorState* c = FindCopy(p)) {
    if (c->stale && c->scopes == 0 && !c->gpu_page) {
      // Nothing on the device is worth keeping after an error: refresh now rather than at commit.
      if (Status s = UploadCommitted(p, c->data); !s.ok()) return DeviceError(s, {c});
      c->stale = false;
    }
    return DeviceSpan{c->data, p->size()};
  }
  auto data = AllocateDevice(p->size());
  if (!data.ok()) return data.status();
  if (Status s = UploadCommitted(p, *data); !s.ok()) {
    FreeDevice(*data, p->size());
    ++stats_.device_errors;
    stats_.last_error = s.ToString();
    return s;
  }
  MirrorState& c = copies_[p];
  c.page = p;
  c.data = *data;
  index_dirty_ = true;
  return DeviceSpan{c.data, p->size()};
}

Status DeviceHub::Unmirror(Page* p) {
  if (p->location() != Location::kCpu) {
    return FailedPrecondition(
        fmt::format("a {} page keeps its device copy for life", LocationName(p->location())));
  }
  MirrorState* c = FindCopy(p);
  if (c == nullptr) return NotFound(fmt::format("page {} is not mirrored", p->id()));
  if (c->scopes != 0) return FailedPrecondition("a GpuWriteScope is open on the page");
  FreeDevice(c->data, p->size());
  FreeDevice(c->base, p->size());
  copies_.erase(p);
  index_dirty_ = true;
  return Status::Ok();
}

Expected<DeviceSpan> DeviceHub::DeviceCopy(const Page* p) const {
  if (auto it = unified_.find(p); it != unified_.end())
    return DeviceSpan{it->second.data, p->size()};
  auto it = copies_.find(p);
  if (it == copies_.end()) return NotFound(fmt::format("page {} has no device copy", p->id()));
  return DeviceSpan{it->second.data, p->size()};
}

Expected<PullReport> DeviceHub::Pull(Page* p, ConflictPolicy policy) {
  if (p->location() == Location::kUnified) {
    return FailedPrecondition("unified pages need no pull: every commit diffs them in full");
  }
  MirrorState* c = FindCopy(p);
  if (c == nullptr) return NotFound(fmt::format("page {} is not mirrored", p->id()));
  if (c->stale) {
    return FailedPrecondition(
        "the device copy is stale after a device error; the next commit re-uploads it (device "
        "writes "
        "since the error are lost)");
  }
  std::vector<PullReport> reports;
  bool conflict = false;
  Status s = PullCopies({c}, policy, &reports, &conflict);
  if (!s.ok()) return s;
  return std::move(reports.front());
}

Expected<DeviceSpan> DeviceHub::BeginScope(Page* p) {
  if (p->location() == Location::kUnified) {
    return FailedPrecondition(
        "unified pages need no GpuWriteScope: every commit diffs them in full");
  }
  auto span = Mirror(p);
  if (!span.ok()) return span.status();
  MirrorState* c = FindCopy(p);
  if (c->base == nullptr) {
    auto base = AllocateDevice(p->size());
    if (!base.ok()) return base.status();
    // The snapshot the scope's writes are found against (the committed image, which the copy holds
    // unless device code already wrote it outside a scope).
    Status s = backend_->Copy(*base, c->data, p->size());
    if (Status sync = backend_->Synchronize(); s.ok()) s = sync;
    if (!s.ok()) {
      FreeDevice(*base, p->size());
      return DeviceError(s, {c});
    }
    c->base = *base;
  }
  ++c->scopes;
  return span;
}

Expected<PullReport> DeviceHub::EndScope(Page* p, ConflictPolicy policy) {
  MirrorState* c = FindCopy(p);
  if (c == nullptr || c->scopes == 0)
    return FailedPrecondition("no GpuWriteScope is open on the page");
  auto report = Pull(p, policy);
  // The scope closes either way; after a conflict the device's writes stay in the copy, and a later
  // Pull (against the committed image) finds them again.
  if (--c->scopes == 0 && !c->gpu_page) {
    FreeDevice(c->base, p->size());
    c->base = nullptr;
  }
  return report;
}

Status DeviceHub::Prefetch(Page* p, MemoryPlace place) {
  auto it = unified_.find(p);
  if (it == unified_.end()) return FailedPrecondition("only unified pages can be prefetched");
  return backend_->Prefetch(it->second.data, it->second.size, place);
}

DeviceStats DeviceHub::stats() const {
  DeviceStats s = stats_;
  s.mirrors = copies_.size();
  s.device_bytes = device_bytes_;
  s.managed_bytes = managed_bytes_;
  s.staging_bytes = pinned_bytes_;
  return s;
}

}  // namespace mmsb
