#include "bus/bus.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "delta/delta_internal.h"
#include "device/device_hub.h"

namespace mmsb {
namespace {

constexpr std::size_t kRecordChunk = 1024;
constexpr std::uintptr_t kMaxStaticSpan = std::uintptr_t{64} << 30;

std::uint64_t NowNanos() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

std::uint64_t UnixNanos() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// True when any byte of shadow[0, n) is set. Shadow spans of pooled pages are 8-byte aligned.
bool AnyTouched(const std::uint8_t* shadow, std::size_t n) {
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    std::uint64_t a, b, c, d;
    std::memcpy(&a, shadow + i, 8);
    std::memcpy(&b, shadow + i + 8, 8);
    std::memcpy(&c, shadow + i + 16, 8);
    std::memcpy(&d, shadow + i + 24, 8);
    if ((a | b | c | d) != 0) return true;
  }
  for (; i < n; ++i) {
    if (shadow[i]) return true;
  }
  return false;
}

bool SameLayout(const TypeDescriptor& a, const TypeDescriptor& b) {
  if (a.name != b.name || a.size != b.size || a.align != b.align ||
      a.fields.size() != b.fields.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.fields.size(); ++i) {
    const auto& x = a.fields[i];
    const auto& y = b.fields[i];
    if (x.name != y.name || x.offset != y.offset || x.size != y.size || x.kind != y.kind ||
        x.elem_size != y.elem_size || x.extents != y.extents || x.record_type != y.record_type) {
      return false;
    }
  }
  return true;
}

// The bus whose Commit() runs on this thread, if any.
thread_local const Bus* t_committing = nullptr;

struct CommittingScope {
  explicit CommittingScope(const Bus* bus) { t_committing = bus; }
  ~CommittingScope() { t_committing = nullptr; }
};

}  // namespace

Bus::ReadLock::ReadLock(Bus* bus) NO_THREAD_SAFETY_ANALYSIS {
  if (t_committing != bus) {
    mu_ = &bus->mu_;
    mu_->Lock();
  }
}

Bus::ReadLock::~ReadLock() NO_THREAD_SAFETY_ANALYSIS {
  if (mu_ != nullptr) mu_->Unlock();
}

Expected<std::unique_ptr<Bus>> Bus::Create(const Options& options) {
  std::unique_ptr<Bus> bus(new Bus(options));
  auto arena = Arena::Create(options.arena_bytes);
  if (!arena.ok()) return arena.status();
  bus->arena_.reset(*arena);
  bus->zeros_size_ = bus->arena_->capacity();
  void* z = mmap(nullptr, bus->zeros_size_, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (z == MAP_FAILED) return OutOfMemory("cannot reserve the zero image mapping");
  bus->zeros_ = static_cast<std::uint8_t*>(z);
  const char* env = std::getenv("MMSB_VERIFY");
  bus->verify_ = options.verify || (env != nullptr && env[0] != '\0' && env[0] != '0');
  rt::g_heap_region = {bus->arena_->base(), bus->arena_->capacity(), bus->arena_->shadow()};
  return bus;
}

Bus::~Bus() NO_THREAD_SAFETY_ANALYSIS {
  // Arena storage goes with the arena; only static twins are separately owned.
  for (Page* p : live_) {
    if (p->is_static_) delete[] p->twin_;
  }
  if (zeros_) munmap(zeros_, zeros_size_);
  if (static_shadow_) munmap(static_shadow_, static_shadow_bytes_);
}

const std::uint8_t* Bus::Zeros(std::size_t size) const {
  MMSB_CHECK(size <= zeros_size_);
  return zeros_;
}

Page* Bus::NewRecord() {
  if (free_records_.empty()) {
    record_chunks_.emplace_back(new Page[kRecordChunk]);
    Page* chunk = record_chunks_.back().get();
    free_records_.reserve(free_records_.size() + kRecordChunk);
    for (std::size_t i = kRecordChunk; i-- > 0;) free_records_.push_back(&chunk[i]);
  }
  Page* p = free_records_.back();
  free_records_.pop_back();
  return p;
}

Page* Bus::InitRecord(std::uint8_t* data, std::uint8_t* twin, std::size_t size,
                      const PageOptions& options, Location location) {
  Page* p = NewRecord();
  p->data_ = data;
  p->twin_ = twin;
  p->size_ = size;
  p->epoch_ = epoch_;
  p->type_ = options.type;
  p->name_ = options.name;
  p->location_ = location;
  p->is_static_ = false;
  p->escaped_ = false;
  p->twin_valid_ = false;
  p->maybe_nonzero_ = true;
  p->size_class_ = Arena::kLargeClass;
  p->capacity_ = size;
  return p;
}

void Bus::Register(Page* p) {
  p->id_ = next_id_++;
  p->live_ = true;
  p->slot_ = static_cast<std::uint32_t>(live_.size());
  live_.push_back(p);
  by_id_.Put(p->id_, p);
  if (!p->name_.empty()) by_name_[p->name_] = p;
  p->created_epoch_ = epoch_;
  p->created_slot_ = static_cast<std::uint32_t>(created_.size());
  created_.emplace_back(p->id_, p->size_, p->location_, p->type_, p->name_,
                        p->is_static_);  // in place: no temporary
  ++stats_.pages_created;
  ++stats_.pages_live;
  stats_.cpu_bytes += p->size_;
  if (p->escaped_) ++stats_.pages_escaped;
}

void Bus::Unregister(Page* p) {
  Page* last = live_.back();
  live_[p->slot_] = last;
  last->slot_ = p->slot_;
  live_.pop_back();
  by_id_.Erase(p->id_);
  if (!p->name_.empty()) {
    auto it = by_name_.find(p->name_);
    if (it != by_name_.end() && it->second == p) by_name_.erase(it);
  }
  if (p->created_epoch_ == epoch_ && p->created_slot_ < created_.size() &&
      created_[p->created_slot_].id == p->id_) {
    // Created and freed within one epoch: no commit ever saw it, so it leaves no trace in the
    // batch (keeps a create/free loop between commits from accumulating records).
    if (p->created_slot_ + 1 == created_.size()) {
      created_.pop_back();
    } else {
      created_[p->created_slot_].id = kInvalidPageId;  // compacted before the batch is built
      ++created_tombstones_;
    }
  } else {
    freed_.push_back(p->id_);
  }
  ++stats_.pages_freed;
  --stats_.pages_live;
  stats_.cpu_bytes -= p->size_;
  if (p->escaped_) --stats_.pages_escaped;
  p->live_ = false;
}

Expected<Page*> Bus::CreatePage(std::size_t size, const PageOptions& options) {
  if (size == 0 || size >= (std::size_t{1} << 32)) {
    return InvalidArgument(fmt::format("page size {} is out of range [1, 4 GiB)", size));
  }
  // Unified storage comes from the device hub (bus_device.cc); Gpu pages have arena storage too.
  if (options.location == Location::kUnified) return CreateUnifiedPage(size, options);
  const int cls = Arena::ClassFor(size);
  if (cls < 0) {
    // Large storage may need zeroing or a syscall: get it before taking the bus lock.
    auto block = arena_->Allocate(size, options.zeroed);
    if (!block.ok()) return block.status();
    MutexLock lock(&mu_);
    return AdoptBlock(*block, size, options);
  }
  // Small storage: one lock for the slot and the record (zeroing a dirty slot is at most 4 KiB).
  MutexLock lock(&mu_);
  Arena::Block block;
  if (auto& cache = slot_cache_[cls]; !cache.empty()) {
    block = cache.back();
    cache.pop_back();
    if (options.zeroed && !block.zero) {
      std::memset(block.data, 0, size);
      block.zero = true;
    }
  } else {
    auto b = arena_->Allocate(size, options.zeroed);
    if (!b.ok()) return b.status();
    block = *b;
  }
  return AdoptBlock(block, size, options);
}

Expected<Page*> Bus::AdoptBlock(const Arena::Block& block, std::size_t size,
                                const PageOptions& options) {
  if (options.type != nullptr && !IsRegisteredTypeLocked(options.type)) {
    GiveBackBlock(block);
    return InvalidArgument(
        "PageOptions::type is not a descriptor registered with this bus (kept from before a "
        "restart of the bus?); register it with RegisterType and use the pointer it returns");
  }
  Page* p = InitRecord(block.data, arena_->TwinOf(block.data), size, options, options.location);
  // Storage handed out unzeroed may hold anything: the first commit diffs it against zeros.
  p->maybe_nonzero_ = !block.zero;
  p->size_class_ = block.size_class;
  p->capacity_ = block.capacity;
  if (options.location == Location::kGpu) {
    if (Status s = AttachDeviceCopy(p); !s.ok()) {
      free_records_.push_back(p);
      GiveBackBlock(block);
      return s;
    }
  }
  Register(p);
  arena_->SetOwner(block, p);
  return p;
}

void Bus::GiveBackBlock(const Arena::Block& block) {
  if (block.size_class == Arena::kLargeClass) {
    arena_->Free(block, !block.zero);
  } else {
    ReleaseSmallBlock(block, !block.zero, false);
  }
}

void Bus::ReleaseSmallBlock(const Arena::Block& block, bool may_be_nonzero, bool shadow_clear) {
  auto& cache = slot_cache_[block.size_class];
  if (cache.size() >= kSlotCacheMax) {
    arena_->Free(block, may_be_nonzero);
    return;
  }
  // As Arena::Free does: the next page on this slot starts with no stale touches.
  if (!shadow_clear) std::memset(arena_->ShadowOf(block.data), 0, (block.capacity + 63) >> 6);
  // Field by field: a braced temporary here costs a store-forwarding stall on every free.
  Arena::Block& slot = cache.emplace_back();
  slot.data = block.data;
  slot.capacity = block.capacity;
  slot.size_class = block.size_class;
  slot.zero = !may_be_nonzero;
}

Status Bus::GrowStaticRegion(std::uintptr_t lo, std::uintptr_t hi) {
  rt::ShadowRegion cur = rt::g_static_region;
  std::uintptr_t new_lo = lo & ~std::uintptr_t{kGranuleSize - 1};
  std::uintptr_t new_hi = hi;
  if (cur.span != 0) {
    new_lo = std::min(new_lo, cur.base);
    new_hi = std::max(new_hi, cur.base + cur.span);
    if (new_lo == cur.base && new_hi == cur.base + cur.span) return Status::Ok();
  }
  const std::uintptr_t span =
      (new_hi - new_lo + kGranuleSize - 1) & ~std::uintptr_t{kGranuleSize - 1};
  if (span > kMaxStaticSpan) {
    return FailedPrecondition("static pages are spread over more than 64 GiB of address space");
  }
  const std::size_t bytes = ((span >> kGranuleShift) + 4095) & ~std::size_t{4095};
  void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return OutOfMemory("cannot reserve the static page shadow map");
  auto* shadow = static_cast<std::uint8_t*>(m);
  if (cur.span != 0) {
    std::memcpy(shadow + ((cur.base - new_lo) >> kGranuleShift), cur.shadow,
                cur.span >> kGranuleShift);
  }
  // Registration happens at quiescent points (static initialisation, start-up), so publishing
  // the region with plain stores is enough; see barrier.h.
  rt::g_static_region = {new_lo, span, shadow};
  if (static_shadow_) munmap(static_shadow_, static_shadow_bytes_);
  static_shadow_ = shadow;
  static_shadow_bytes_ = bytes;
  return Status::Ok();
}

Expected<Page*> Bus::RegisterStatic(void* addr, std::size_t size, const PageOptions& options) {
  const auto a = reinterpret_cast<std::uintptr_t>(addr);
  if (addr == nullptr || size == 0 || size >= (std::size_t{1} << 32)) {
    return InvalidArgument("static page needs a non-null address and a size in [1, 4 GiB)");
  }
  if (a % kGranuleSize != 0) {
    return InvalidArgument(
        fmt::format("static page '{}' at {} is not 64-byte aligned", options.name, addr));
  }
  if (arena_->Contains(addr)) return InvalidArgument("static page storage lies inside the arena");
  if (options.type != nullptr && !IsRegisteredType(options.type)) {
    return InvalidArgument("PageOptions::type is not a descriptor registered with this bus");
  }
  MutexLock lock(&mu_);
  if (!options.name.empty() && by_name_.count(options.name)) {
    return AlreadyExists(fmt::format("a page named '{}' is already registered", options.name));
  }
  bool escaped = false;
  if (Status s = GrowStaticRegion(a, a + size); !s.ok()) {
    // Still exact: an untracked range is fully diffed at every commit.
    std::fprintf(stderr, "mmsb: warning: %s; page '%s' is fully diffed at every commit\n",
                 s.message().c_str(), options.name.c_str());
    escaped = true;
  }
  Page* p = InitRecord(static_cast<std::uint8_t*>(addr), new std::uint8_t[size], size, options,
                       Location::kCpu);
  p->is_static_ = true;
  p->escaped_ = escaped;
  Register(p);
  return p;
}

Status Bus::FreeLocked(Page* p) {
  if (p == nullptr || !p->live_) return FailedPrecondition("page is not live (double free?)");
  if (!graph_.empty() && graph_.Height(p->id_) >= 0) {
    ++graph_version_;
    graph_.RemovePage(p->id_);
  }
  Unregister(p);
  if (device_ != nullptr) device_->OnFreePage(p);  // drops a device copy or unified storage
  if (p->is_static_) {
    delete[] p->twin_;
  } else if (p->size_class_ != kExternalStorage) {
    Arena::Block b{p->data_, p->capacity_, p->size_class_, false};
    // A page that never held a non-zero byte leaves a clean slot: no zeroing on reuse.
    const bool touched = AnyTouched(ShadowFor(p), (p->capacity_ + 63) >> 6);
    const bool dirty = p->maybe_nonzero_ || p->escaped_ || touched;
    arena_->ClearOwner(b);
    if (b.size_class == Arena::kLargeClass) {
      arena_->Free(b, dirty);
    } else {
      // The whole block's shadow was just read: an untouched page leaves it clear.
      ReleaseSmallBlock(b, dirty, !touched);
    }
  }
  p->data_ = p->twin_ = nullptr;
  p->name_.clear();
  free_records_.push_back(p);
  return Status::Ok();
}

Status Bus::FreePage(Page* page) {
  MutexLock lock(&mu_);
  return FreeLocked(page);
}

Status Bus::FreePage(PageId id) {
  MutexLock lock(&mu_);
  Page** it = by_id_.Find(id);
  if (it == nullptr) return PageNotFound(fmt::format("no live page with id {}", id));
  return FreeLocked(*it);
}

Page* Bus::Find(PageId id) {
  ReadLock lock(this);
  Page** it = by_id_.Find(id);
  return it == nullptr ? nullptr : *it;
}

Page* Bus::FindByName(std::string_view name) {
  ReadLock lock(this);
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : it->second;
}

Page* Bus::FindContaining(const void* p) {
  if (arena_->Contains(p)) {
    auto* page = static_cast<Page*>(arena_->FindOwner(p));
    if (page == nullptr) return nullptr;
    const auto off =
        static_cast<std::uintptr_t>(static_cast<const std::uint8_t*>(p) - page->data());
    return off < page->size() ? page : nullptr;
  }
  ReadLock lock(this);
  for (Page* page : live_) {
    if (!page->is_static_) continue;
    const auto off =
        reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(page->data_);
    if (off < page->size_) return page;
  }
  return nullptr;
}

void Bus::MarkEscaped(Page* page) {
  MutexLock lock(&mu_);
  if (page == nullptr || !page->live_ || page->escaped_) return;
  page->escaped_ = true;
  page->maybe_nonzero_ = true;
  ++stats_.pages_escaped;
}

std::size_t Bus::PageCount() {
  ReadLock lock(this);
  return live_.size();
}

std::vector<PageInfo> Bus::ListPages() {
  ReadLock lock(this);
  std::vector<PageInfo> out;
  out.reserve(live_.size());
  for (const Page* p : live_) out.push_back(p->Info());
  std::sort(out.begin(), out.end(),
            [](const PageInfo& a, const PageInfo& b) { return a.id < b.id; });
  return out;
}

bool Bus::IsRegisteredType(const TypeDescriptor* type) {
  ReadLock lock(this);
  return IsRegisteredTypeLocked(type);
}

bool Bus::IsRegisteredTypeLocked(const TypeDescriptor* type) const {
  // Types are few and allocation-time only; a pointer compare per registered type.
  for (const auto& [name, owned] : types_) {
    if (owned.get() == type) return true;
  }
  return false;
}

Expected<const TypeDescriptor*> Bus::RegisterType(const TypeDescriptor& type) {
  MMSB_RETURN_IF_ERROR(type.Validate());
  MutexLock lock(&mu_);
  auto it = types_.find(type.name);
  if (it != types_.end()) {
    if (SameLayout(*it->second, type)) return it->second.get();
    return AlreadyExists(fmt::format(
        "type '{}' is already registered with a different layout (ODR violation or stale build?)",
        type.name));
  }
  auto owned = std::make_unique<TypeDescriptor>(type);
  const TypeDescriptor* ptr = owned.get();
  types_.emplace(type.name, std::move(owned));
  return ptr;
}

const TypeDescriptor* Bus::FindType(std::string_view name) {
  ReadLock lock(this);
  auto it = types_.find(std::string(name));
  return it == types_.end() ? nullptr : it->second.get();
}

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

void Bus::FillBatch(CommitBatch& batch) {
  if (created_tombstones_ != 0) {
    std::erase_if(created_, [](const PageCreatedRecord& r) { return r.id == kInvalidPageId; });
    created_tombstones_ = 0;
    // Slots moved: pages created this epoch find their record again through the id check.
    for (std::size_t i = 0; i < created_.size(); ++i) {
      if (Page** p = by_id_.Find(created_[i].id))
        (*p)->created_slot_ = static_cast<std::uint32_t>(i);
    }
  }
  batch.created = created_;
  batch.freed = freed_;
  batch.deltas = out_;
  batch.verify_misses = misses_;
  batch.live_pages = live_;
  if (edges_cache_version_ != graph_version_) {
    edges_cache_ = graph_.ListEdges();
    edges_cache_version_ = graph_version_;
  }
  batch.edges = edges_cache_;
  batch.graph_version = graph_version_;
  batch.find_type = [](std::string_view n, void* ctx) -> const TypeDescriptor* {
    auto* types = static_cast<decltype(types_)*>(ctx);
    auto it = types->find(std::string(n));
    return it == types->end() ? nullptr : it->second.get();
  };
  batch.find_type_ctx = &types_;
}

Expected<Epoch> Bus::Commit() {
  std::vector<std::shared_ptr<CommitSink>> notify;
  Epoch committed = 0;
  Expected<Epoch> r = CommitLocked(notify, &committed);
  // Outside the lock, so a durable sink's wait lets the next commit join its group; events are
  // delivered once the commit is as durable as the sinks make it.
  for (const auto& sink : notify) {
    Status s = sink->AfterCommit(committed);
    if (!s.ok() && r.ok()) r = s.WithContext(fmt::format("commit sink '{}'", sink->name()));
  }
  events_.Drain();
  return r;
}

void Bus::PostEvents(std::vector<Event> batch) {
  events_.Enqueue(std::move(batch));
  events_.Drain();
}

bool Bus::EventsWanted() const {
  if (events_.has_subscribers()) return true;
  return std::any_of(sinks_.begin(), sinks_.end(), [](const auto& s) { return s->wants_events(); });
}

void Bus::BuildEvents(Epoch e, std::uint64_t recomputed, std::uint64_t cutoffs, bool propagated) {
  batch_events_.clear();
  for (const PageCreatedRecord& c : created_) {
    batch_events_.push_back({EventType::kPageCreated, e, c.id, c.size, 0, 0, c.location});
  }
  for (PageId id : freed_) batch_events_.push_back({EventType::kPageFreed, e, id});
  std::uint64_t total = 0;
  for (const Delta& d : out_) {
    batch_events_.push_back(
        {EventType::kDeltaApplied, e, d.page(), d.changed_bytes(), 0, d.base_epoch()});
    total += d.changed_bytes();
  }
  // One PageChanged per page, in order of first appearance; propagation and stages may give a
  // page a second delta in the same epoch.
  changed_index_.clear();
  for (const Delta& d : out_) {
    auto [it, fresh] = changed_index_.try_emplace(d.page(), batch_events_.size());
    if (fresh) {
      batch_events_.push_back({EventType::kPageChanged, e, d.page(), d.changed_bytes(), 1});
    } else {
      batch_events_[it->second].bytes += d.changed_bytes();
      ++batch_events_[it->second].count;
    }
  }
  if (propagated)
    batch_events_.push_back({EventType::kPropagationDone, e, kInvalidPageId, cutoffs, recomputed});
  batch_events_.push_back({EventType::kCommitDone, e, kInvalidPageId, total, out_.size()});
}

Expected<Epoch> Bus::CommitLocked(std::vector<std::shared_ptr<CommitSink>>& notify,
                                  Epoch* committed) {
  const std::uint64_t t0 = NowNanos();
  MutexLock lock(&mu_);
  CommittingScope committing(this);
  // Device writes to Gpu pages become host writes first; a conflict fails here, nothing changed.
  if (Status s = DeviceBeforeCommit(); !s.ok()) {
    ++stats_.failed_commits;
    return s;
  }
  const Epoch e = epoch_ + 1;
  out_.clear();
  out_bytes_ = 0;
  misses_.clear();
  undo_.Clear();
  // Undo images are only needed when something after collection can fail the commit.
  track_undo_ = !graph_.empty() || !stages_.empty();
  CollectAll(e);

  Status failure;
  bool propagated = false;
  std::uint64_t recomputed_before = 0, cutoffs_before = 0;
  // Propagation appends its deltas after the collected ones.
  const std::size_t derived_begin = out_.size();
  if (!graph_.empty()) {
    DependencyGraph::Host host;
    host.diff_now = [this](Page* p, bool full, UndoLog* undo) { return DiffNow(p, full, undo); };
    host.undo = track_undo_ ? &undo_ : nullptr;
    host.discard = [this](Page* p) NO_THREAD_SAFETY_ANALYSIS {
      std::memcpy(p->data_, p->twin_, p->size_);
      if (std::uint8_t* shadow = ShadowFor(p))
        std::memset(shadow, 0, (p->size_ + kGranuleSize - 1) >> kGranuleShift);
    };
    host.out = &out_;
    const std::uint64_t props_before = graph_.stats().propagations;
    recomputed_before = graph_.stats().nodes_recomputed;
    cutoffs_before = graph_.stats().cutoffs;
    failure = graph_.Propagate(e, host);
    if (failure.ok()) out_bytes_ += graph_.derived_bytes();
    propagated = graph_.stats().propagations != props_before;
  }

  CommitBatch batch;
  batch.epoch = e;
  batch.unix_nanos = UnixNanos();
  FillBatch(batch);
  batch.derived_begin = derived_begin;
  batch.derived_end = out_.size();
  for (const auto& stage : stages_) {
    if (!failure.ok()) break;
    Status s = stage->Process(batch);
    if (!s.ok()) {
      failure = s.WithContext(fmt::format("commit stage '{}'", stage->name()));
      break;
    }
    // The stage's own writes become deltas of the same epoch.
    CollectAll(e);
    FillBatch(batch);
  }
  if (!failure.ok()) {
    // All or nothing: every page returns to the previous epoch; created/freed stay pending.
    Rollback();
    ++stats_.failed_commits;
    return failure;
  }
  const bool want_events = EventsWanted();
  if (want_events) {
    BuildEvents(e, graph_.stats().nodes_recomputed - recomputed_before,
                graph_.stats().cutoffs - cutoffs_before, propagated);
    batch.events = batch_events_;
  }
  Status sink_failure;
  notify = sinks_;
  *committed = e;
  for (const auto& sink : sinks_) {
    Status s = sink->OnCommit(batch);
    if (!s.ok()) {
      ++stats_.sink_errors;
      if (sink_failure.ok())
        sink_failure = s.WithContext(fmt::format("commit sink '{}'", sink->name()));
    }
  }
  epoch_ = e;
  created_.clear();
  created_tombstones_ = 0;
  freed_.clear();
  undo_.Clear();
  ++stats_.commits;
  stats_.epoch = e;
  // Counted as the deltas were made, while they were in cache (a pass here would re-read them).
  stats_.deltas += out_.size();
  stats_.delta_bytes += out_bytes_;
  if (verify_) ++stats_.verify_commits;
  stats_.commit_latency.Record(NowNanos() - t0);
  if (want_events) events_.Enqueue(std::move(batch_events_));
  batch_events_.clear();
  if (!sink_failure.ok()) return sink_failure;
  return e;
}

Epoch Bus::epoch() {
  MutexLock lock(&mu_);
  return epoch_;
}

Stats Bus::GetStats() {
  MutexLock lock(&mu_);
  Stats s = stats_;
  const PropagationStats& g = graph_.stats();
  s.propagations = g.propagations;
  s.nodes_recomputed = g.nodes_recomputed;
  s.cutoffs = g.cutoffs;
  s.parallel_batches = g.parallel_batches;
  s.graph_depth = g.graph_depth;
  s.graph_nodes = g.nodes;
  s.graph_edges = g.edges;
  s.propagation_latency = graph_.latency();
  s.gpu_bytes = device_ != nullptr ? device_->device_bytes() : 0;
  return s;
}

Status Bus::AddEdge(PageId parent, PageId child, EdgeKind kind, Projection proj,
                    EdgeOptions options) {
  MutexLock lock(&mu_);
  Page** p = by_id_.Find(parent);
  if (p == nullptr)
    return PageNotFound(fmt::format("edge parent: no live page with id {}", parent));
  Page** c = by_id_.Find(child);
  if (c == nullptr) return PageNotFound(fmt::format("edge child: no live page with id {}", child));
  ++graph_version_;
  return graph_.AddEdge(*p, *c, kind, proj, options);
}

Status Bus::AddUserEdges(std::span<const PageId> parents, PageId child, RecomputeFn fn,
                         EdgeOptions options) {
  MutexLock lock(&mu_);
  Page** c = by_id_.Find(child);
  if (c == nullptr) return PageNotFound(fmt::format("edge child: no live page with id {}", child));
  std::vector<Page*> ps;
  for (PageId id : parents) {
    Page** p = by_id_.Find(id);
    if (p == nullptr) return PageNotFound(fmt::format("edge parent: no live page with id {}", id));
    ps.push_back(*p);
  }
  ++graph_version_;
  return graph_.SetUserFunction(*c, std::move(ps), std::move(fn), options);
}

Status Bus::RemoveEdge(PageId parent, PageId child) {
  MutexLock lock(&mu_);
  ++graph_version_;
  return graph_.RemoveEdge(parent, child);
}

std::vector<EdgeInfo> Bus::ListEdges() {
  ReadLock lock(this);
  return graph_.ListEdges();
}

int Bus::NodeHeight(PageId page) {
  ReadLock lock(this);
  return graph_.Height(page);
}

Status Bus::AddSink(std::shared_ptr<CommitSink> sink) {
  if (!sink) return InvalidArgument("null sink");
  MutexLock lock(&mu_);
  sinks_.push_back(std::move(sink));
  return Status::Ok();
}

Status Bus::RemoveSink(const CommitSink* sink) {
  MutexLock lock(&mu_);
  auto it =
      std::find_if(sinks_.begin(), sinks_.end(), [&](const auto& s) { return s.get() == sink; });
  if (it == sinks_.end()) return NotFound("sink is not registered");
  sinks_.erase(it);
  return Status::Ok();
}

Status Bus::AddStage(std::shared_ptr<CommitStage> stage) {
  if (!stage) return InvalidArgument("null stage");
  MutexLock lock(&mu_);
  stages_.push_back(std::move(stage));
  return Status::Ok();
}

Status Bus::RemoveStage(const CommitStage* stage) {
  MutexLock lock(&mu_);
  auto it =
      std::find_if(stages_.begin(), stages_.end(), [&](const auto& s) { return s.get() == stage; });
  if (it == stages_.end()) return NotFound("stage is not registered");
  stages_.erase(it);
  return Status::Ok();
}

}  // namespace mmsb
