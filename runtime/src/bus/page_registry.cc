// The page registry: page records, the slot cache, the static page region and the type registry
// (Bus methods; the class and its locking contract are in bus.h).
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "bus/bus.h"
#include "bus/shadow_scan.h"
#include "device/device_hub.h"

namespace mmsb {
namespace {

constexpr std::size_t kRecordChunk = 1024;

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

}  // namespace

PageRecord* Bus::NewRecord() {
  if (free_records_.empty()) {
    record_chunks_.emplace_back(new PageRecord[kRecordChunk]);
    PageRecord* chunk = record_chunks_.back().get();
    free_records_.reserve(free_records_.size() + kRecordChunk);
    for (std::size_t i = kRecordChunk; i-- > 0;) free_records_.push_back(&chunk[i]);
  }
  PageRecord* p = Rec(free_records_.back());
  free_records_.pop_back();
  return p;
}

Page* Bus::InitRecord(std::uint8_t* data, std::uint8_t* twin, std::size_t size,
                      const PageOptions& options, Location location) {
  Page* p = NewRecord();
  Rec(p)->data_ = data;
  Rec(p)->twin = twin;
  Rec(p)->size_ = size;
  Rec(p)->epoch_ = epoch_;
  Rec(p)->type_ = options.type;
  Rec(p)->name_ = options.name;
  Rec(p)->location_ = location;
  Rec(p)->is_static_ = false;
  Rec(p)->escaped_ = false;
  Rec(p)->twin_valid = false;
  Rec(p)->maybe_nonzero = true;
  Rec(p)->size_class = Arena::kLargeClass;
  Rec(p)->capacity = size;
  return p;
}

void Bus::Register(Page* p) {
  Rec(p)->id_ = next_id_++;
  Rec(p)->live = true;
  Rec(p)->slot = static_cast<std::uint32_t>(live_.size());
  live_.push_back(p);
  scan_.emplace_back();  // collected in full at its first commit
  by_id_.Put(Rec(p)->id_, p);
  if (!Rec(p)->name_.empty()) by_name_[Rec(p)->name_] = p;
  Rec(p)->created_epoch = epoch_;
  Rec(p)->created_slot = static_cast<std::uint32_t>(created_.size());
  created_.emplace_back(Rec(p)->id_, Rec(p)->size_, Rec(p)->location_, Rec(p)->type_, Rec(p)->name_,
                        Rec(p)->is_static_);  // in place: no temporary
  ++stats_.pages_created;
  ++stats_.pages_live;
  stats_.cpu_bytes += Rec(p)->size_;
  if (Rec(p)->escaped_) ++stats_.pages_escaped;
}

void Bus::Unregister(Page* p) {
  Page* last = live_.back();
  live_[Rec(p)->slot] = last;
  scan_[Rec(p)->slot] = scan_.back();
  Rec(last)->slot = Rec(p)->slot;
  live_.pop_back();
  scan_.pop_back();
  by_id_.Erase(Rec(p)->id_);
  if (!Rec(p)->name_.empty()) {
    auto it = by_name_.find(Rec(p)->name_);
    if (it != by_name_.end() && it->second == p) by_name_.erase(it);
  }
  if (Rec(p)->created_epoch == epoch_ && Rec(p)->created_slot < created_.size() &&
      created_[Rec(p)->created_slot].id == Rec(p)->id_) {
    // Created and freed within one epoch: no commit ever saw it, so it leaves no trace in the
    // batch (keeps a create/free loop between commits from accumulating records).
    if (Rec(p)->created_slot + 1 == created_.size()) {
      created_.pop_back();
    } else {
      created_[Rec(p)->created_slot].id = kInvalidPageId;  // compacted before the batch is built
      ++created_tombstones_;
    }
  } else {
    freed_.push_back(Rec(p)->id_);
  }
  ++stats_.pages_freed;
  --stats_.pages_live;
  stats_.cpu_bytes -= Rec(p)->size_;
  if (Rec(p)->escaped_) --stats_.pages_escaped;
  Rec(p)->live = false;
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
      // The whole slot (at most 4 KiB): `zero` speaks for the slot's capacity, which a later,
      // larger page on it trusts.
      std::memset(block.data, 0, block.capacity);
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
  Rec(p)->maybe_nonzero = !block.zero;
  Rec(p)->size_class = block.size_class;
  Rec(p)->capacity = block.capacity;
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
  if (!shadow_clear) std::memset(arena_->ShadowOf(block.data), 0, GranuleCount(block.capacity));
  // Field by field: a braced temporary here costs a store-forwarding stall on every free.
  Arena::Block& slot = cache.emplace_back();
  slot.data = block.data;
  slot.capacity = block.capacity;
  slot.size_class = block.size_class;
  slot.zero = !may_be_nonzero;
}

Status Bus::CheckStaticWindow(std::uintptr_t lo, std::uintptr_t hi) const {
  const rt::ShadowRegion& r = rt::g_static_region;
  if (r.span != 0 && lo - r.base < r.span && hi - r.base <= r.span) return Status::Ok();
  return FailedPrecondition(fmt::format(
      "static page storage at {:#x} lies outside the program image's static window (in a shared "
      "library or a dlopen'ed module?)",
      lo));
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
  if (Status s = CheckStaticWindow(a, a + size); !s.ok()) {
    // Still exact: an untracked range is fully diffed at every commit.
    std::fprintf(stderr, "mmsb: warning: %s; page '%s' is fully diffed at every commit\n",
                 s.message().c_str(), options.name.c_str());
    escaped = true;
  }
  Page* p = InitRecord(static_cast<std::uint8_t*>(addr), new std::uint8_t[size](), size, options,
                       Location::kCpu);
  Rec(p)->is_static_ = true;
  Rec(p)->escaped_ = escaped;
  Register(p);
  return p;
}

Status Bus::FreeLocked(Page* p) {
  if (p == nullptr || !Rec(p)->live) return FailedPrecondition("page is not live (double free?)");
  if (!graph_.empty() && graph_.Height(Rec(p)->id_) >= 0) {
    ++graph_version_;
    graph_.RemovePage(Rec(p)->id_);
  }
  Unregister(p);
  if (device_ != nullptr) device_->OnFreePage(p);  // drops a device copy or unified storage
  if (Rec(p)->is_static_) {
    delete[] Rec(p)->twin;
  } else if (Rec(p)->size_class != kExternalStorage) {
    Arena::Block b{Rec(p)->data_, Rec(p)->capacity, Rec(p)->size_class, false};
    // A page that never held a non-zero byte leaves a clean slot: no zeroing on reuse.
    const bool touched = AnyTouched(ShadowFor(p), GranuleCount(Rec(p)->capacity));
    const bool dirty = Rec(p)->maybe_nonzero || Rec(p)->escaped_ || touched;
    arena_->ClearOwner(b);
    if (b.size_class == Arena::kLargeClass) {
      arena_->Free(b, dirty);
    } else {
      // The whole block's shadow was just read: an untouched page leaves it clear.
      ReleaseSmallBlock(b, dirty, !touched);
    }
  }
  Rec(p)->data_ = Rec(p)->twin = nullptr;
  Rec(p)->name_.clear();
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
  if (it == nullptr) return NotFound(fmt::format("no live page with id {}", id));
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
    if (!Rec(page)->is_static_) continue;
    const auto off =
        reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(Rec(page)->data_);
    if (off < Rec(page)->size_) return page;
  }
  return nullptr;
}

void Bus::MarkEscaped(Page* page) {
  MutexLock lock(&mu_);
  if (page == nullptr || !Rec(page)->live || Rec(page)->escaped_) return;
  Rec(page)->escaped_ = true;
  scan_[Rec(page)->slot].idle_ok = false;  // diffed in full from the next commit on
  Rec(page)->maybe_nonzero = true;
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

}  // namespace mmsb
