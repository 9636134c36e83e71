// The CPU reference backend: mmsb/device.h semantics stated as plainly as possible, byte by byte.
// It is the oracle for the CUDA kernels, so it shares no code with them (kernel_bodies.h).
#include <algorithm>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "mmsb/kernels.h"
#include "mmsb/types.h"

namespace mmsb {
namespace {

constexpr std::size_t kAlign = 256;

std::string Hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

}  // namespace

CpuBackend::CpuBackend(CpuBackendOptions options) : options_(options) {
  info_.name = "cpu-reference";
  info_.is_reference = true;
  info_.total_bytes = options_.capacity_bytes;
  info_.managed_memory = options_.managed_memory;
  info_.concurrent_managed = options_.managed_memory;
  info_.multiprocessors = 1;
}

CpuBackend::~CpuBackend() {
  for (auto& [ptr, a] : allocations_) {
    ::operator delete(const_cast<void*>(ptr), std::align_val_t{kAlign});
  }
}

CpuBackend::Fault CpuBackend::Tick(bool can_defer) {
  if (fail_countdown_ == 0 || --fail_countdown_ != 0) return Fault::kNone;
  if (!injected_deferred_ || !can_defer) return Fault::kNow;
  if (pending_.ok()) pending_ = injected_;
  return Fault::kDeferred;
}

void CpuBackend::FailNthOperation(std::uint64_t n, Status s, bool deferred) {
  fail_countdown_ = n;
  injected_ = std::move(s);
  injected_deferred_ = deferred;
}

Status CpuBackend::MemoryInfo(std::uint64_t* free_bytes, std::uint64_t* total_bytes) {
  const std::uint64_t used = counters_.allocated_bytes + counters_.managed_bytes;
  if (free_bytes)
    *free_bytes = used >= options_.capacity_bytes ? 0 : options_.capacity_bytes - used;
  if (total_bytes) *total_bytes = options_.capacity_bytes;
  return Status::Ok();
}

Expected<void*> CpuBackend::AllocateKind(std::size_t bytes, Kind kind) {
  if (Tick(/*can_defer=*/false) != Fault::kNone) return injected_;  // allocations fail at once
  if (kind == Kind::kManaged && !options_.managed_memory) {
    return Unsupported("the CPU reference backend was configured without managed memory");
  }
  if (kind != Kind::kPinned) {
    const std::uint64_t used = counters_.allocated_bytes + counters_.managed_bytes;
    if (bytes > options_.capacity_bytes || used > options_.capacity_bytes - bytes) {
      return OutOfMemory(
          "out of device memory: " + std::to_string(bytes) + " bytes requested, " +
          std::to_string(options_.capacity_bytes - std::min(used, options_.capacity_bytes)) +
          " free");
    }
  }
  void* p = ::operator new(std::max<std::size_t>(bytes, 1), std::align_val_t{kAlign}, std::nothrow);
  if (p == nullptr) return OutOfMemory("host allocation failed");
  allocations_[p] = {bytes, kind};
  switch (kind) {
    case Kind::kDevice:
      counters_.allocated_bytes += bytes;
      break;
    case Kind::kPinned:
      counters_.pinned_bytes += bytes;
      break;
    case Kind::kManaged:
      counters_.managed_bytes += bytes;
      break;
  }
  return p;
}

void CpuBackend::FreeKind(void* ptr, Kind kind) {
  if (ptr == nullptr) return;
  auto it = allocations_.find(ptr);
  if (it == allocations_.end() || it->second.kind != kind) {
    std::fprintf(stderr, "mmsb: cpu-reference: free of unknown pointer %s\n", Hex(ptr).c_str());
    return;
  }
  switch (kind) {
    case Kind::kDevice:
      counters_.allocated_bytes -= it->second.bytes;
      break;
    case Kind::kPinned:
      counters_.pinned_bytes -= it->second.bytes;
      break;
    case Kind::kManaged:
      counters_.managed_bytes -= it->second.bytes;
      break;
  }
  allocations_.erase(it);
  ::operator delete(ptr, std::align_val_t{kAlign});
}

Expected<void*> CpuBackend::Allocate(std::size_t bytes) {
  return AllocateKind(bytes, Kind::kDevice);
}
void CpuBackend::Free(void* p) { FreeKind(p, Kind::kDevice); }
Expected<void*> CpuBackend::AllocatePinned(std::size_t bytes) {
  return AllocateKind(bytes, Kind::kPinned);
}
void CpuBackend::FreePinned(void* p) { FreeKind(p, Kind::kPinned); }
Expected<void*> CpuBackend::AllocateManaged(std::size_t bytes) {
  return AllocateKind(bytes, Kind::kManaged);
}
void CpuBackend::FreeManaged(void* p) { FreeKind(p, Kind::kManaged); }

// Every operation below starts with MMSB_CPU_OP: an injected failure is returned at once, or
// deferred to the next Synchronize with the operation's effect skipped.
#define MMSB_CPU_OP()                 \
  switch (Tick(/*can_defer=*/true)) { \
    case Fault::kNow:                 \
      return injected_;               \
    case Fault::kDeferred:            \
      return Status::Ok();            \
    case Fault::kNone:                \
      break;                          \
  }

Status CpuBackend::Prefetch(const void* managed_ptr, std::size_t bytes, MemoryPlace place) {
  ++counters_.prefetches;
  MMSB_CPU_OP();
  return Status::Ok();
}

Status CpuBackend::CopyToDevice(void* device_dst, const void* host_src, std::size_t bytes) {
  ++counters_.to_device_copies;
  MMSB_CPU_OP();
  if (bytes) std::memcpy(device_dst, host_src, bytes);
  return Status::Ok();
}

Status CpuBackend::CopyToHost(void* host_dst, const void* device_src, std::size_t bytes) {
  ++counters_.to_host_copies;
  MMSB_CPU_OP();
  if (bytes) std::memcpy(host_dst, device_src, bytes);
  return Status::Ok();
}

Status CpuBackend::Copy(void* dst, const void* src, std::size_t bytes) {
  MMSB_CPU_OP();
  if (bytes) std::memcpy(dst, src, bytes);
  return Status::Ok();
}

Status CpuBackend::Zero(void* dst, std::size_t bytes) {
  MMSB_CPU_OP();
  if (bytes) std::memset(dst, 0, bytes);
  return Status::Ok();
}

Status CpuBackend::MaskedMerge(void* out, const void* page, const void* delta, const void* mask,
                               std::size_t bytes) {
  MMSB_CPU_OP();
  auto* o = static_cast<std::uint8_t*>(out);
  const auto* p = static_cast<const std::uint8_t*>(page);
  const auto* d = static_cast<const std::uint8_t*>(delta);
  const auto* m = static_cast<const std::uint8_t*>(mask);
  for (std::size_t i = 0; i < bytes; ++i)
    o[i] = static_cast<std::uint8_t>((p[i] & ~m[i]) | (d[i] & m[i]));
  return Status::Ok();
}

Status CpuBackend::ApplyBatch(const ApplyBatchView& b) {
  ++counters_.apply_batches;
  // Validate everything before writing anything: the batch comes from the runtime's packer, and a
  // bad one is a bug this reference should catch rather than paper over.
  for (std::uint32_t i = 0; i < b.num_sparse; ++i) {
    const SparseSegment& s = b.sparse[i];
    const std::uint64_t len = std::uint64_t{b.sparse[i + 1].src} - s.src;
    if (b.sparse[i + 1].src < s.src || s.target >= b.num_targets ||
        s.offset + len > b.targets[s.target].size || b.sparse[i + 1].src > b.payload_bytes) {
      return InvalidArgument("apply batch: sparse segment " + std::to_string(i) +
                             " is out of range");
    }
  }
  for (std::uint32_t i = 0; i < b.num_dense; ++i) {
    const DenseSegment& d = b.dense[i];
    if (d.target >= b.num_targets || d.size > b.targets[d.target].size ||
        d.first_granule % kTileGranules != 0 ||
        d.first_granule + GranuleCount(d.size) > b.num_granules ||
        (i > 0 && d.first_granule < b.dense[i - 1].first_granule)) {
      return InvalidArgument("apply batch: dense segment " + std::to_string(i) +
                             " is out of range");
    }
  }
  MMSB_CPU_OP();
  for (int copy = 0; copy < 2; ++copy) {
    for (std::uint32_t i = 0; i < b.num_sparse; ++i) {
      const SparseSegment& s = b.sparse[i];
      const ApplyTarget& t = b.targets[s.target];
      std::uint8_t* base = copy == 0 ? t.primary : t.secondary;
      if (base == nullptr) continue;
      std::memcpy(base + s.offset, b.payload + s.src, b.sparse[i + 1].src - s.src);
    }
    for (std::uint32_t i = 0; i < b.num_dense; ++i) {
      const DenseSegment& d = b.dense[i];
      const ApplyTarget& t = b.targets[d.target];
      std::uint8_t* base = copy == 0 ? t.primary : t.secondary;
      if (base == nullptr) continue;
      std::uint64_t k = b.tile_prefix[d.first_granule / kTileGranules];
      for (std::uint32_t byte = 0; byte < d.size; ++byte) {
        const std::uint64_t word = b.masks[d.first_granule + byte / 64];
        if ((word >> (byte % 64)) & 1u) {
          if (k >= b.payload_bytes) return InvalidArgument("apply batch: dense payload overrun");
          base[byte] = b.payload[k++];
        }
      }
    }
  }
  return Status::Ok();
}

Status CpuBackend::Gather(std::uint8_t* packed, const std::uint8_t* page, const PackedRun* runs,
                          std::uint32_t count) {
  MMSB_CPU_OP();
  for (std::uint32_t i = 0; i < count; ++i) {
    std::memcpy(packed + runs[i].packed, page + runs[i].offset, runs[i].length);
  }
  return Status::Ok();
}

Status CpuBackend::Scatter(std::uint8_t* page, const std::uint8_t* packed, const PackedRun* runs,
                           std::uint32_t count) {
  MMSB_CPU_OP();
  for (std::uint32_t i = 0; i < count; ++i) {
    std::memcpy(page + runs[i].offset, packed + runs[i].packed, runs[i].length);
  }
  return Status::Ok();
}

Status CpuBackend::CompareMask(const void* a, const void* b, std::size_t bytes,
                               std::uint64_t* mask64) {
  MMSB_CPU_OP();
  const auto* x = static_cast<const std::uint8_t*>(a);
  const auto* y = static_cast<const std::uint8_t*>(b);
  const std::size_t granules = GranuleCount(bytes);
  std::fill(mask64, mask64 + granules, 0);
  for (std::size_t i = 0; i < bytes; ++i) {
    if (x[i] != y[i]) mask64[i / 64] |= std::uint64_t{1} << (i % 64);
  }
  return Status::Ok();
}

Status CpuBackend::DiffToRuns(const DiffTarget* targets, std::uint32_t num_targets,
                              std::uint32_t num_granules, DiffRun* runs, std::uint64_t max_runs,
                              std::uint8_t* packed, std::uint64_t max_bytes, DiffTotals* totals) {
  ++counters_.diff_calls;
  std::uint64_t granules = 0;
  for (std::uint32_t t = 0; t < num_targets; ++t) {
    if (targets[t].first_granule != granules) {
      return InvalidArgument("diff: target " + std::to_string(t) + " does not start at granule " +
                             std::to_string(granules));
    }
    granules += GranuleCount(targets[t].size);
  }
  if (granules != num_granules)
    return InvalidArgument("diff: num_granules does not match the targets");
  MMSB_CPU_OP();
  std::uint64_t nruns = 0, nbytes = 0;
  for (std::uint32_t t = 0; t < num_targets; ++t) {
    const DiffTarget& d = targets[t];
    std::uint32_t i = 0;
    while (i < d.size) {
      if (d.now[i] == d.base[i]) {
        ++i;
        continue;
      }
      std::uint32_t j = i;
      while (j < d.size && d.now[j] != d.base[j]) ++j;
      if (nruns < max_runs) runs[nruns] = {t, i, j, static_cast<std::uint32_t>(nbytes)};
      ++nruns;
      for (std::uint32_t k = i; k < j; ++k, ++nbytes) {
        if (nbytes < max_bytes) packed[nbytes] = d.now[k];
      }
      i = j;
    }
  }
  totals->runs = nruns;
  totals->bytes = nbytes;
  return Status::Ok();
}

Status CpuBackend::Synchronize() {
  ++counters_.synchronizes;
  Status s = std::move(pending_);
  pending_ = Status::Ok();
  return s;
}

}  // namespace mmsb
