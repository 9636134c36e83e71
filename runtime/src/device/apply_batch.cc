#include "device/apply_batch.h"

#include <algorithm>
#include <cstring>
#include <span>

namespace mmsb {
namespace {

constexpr std::uint64_t kLimit = std::uint64_t{1} << 32;  // offsets are 32-bit

std::size_t Align16(std::size_t n) { return (n + 15) & ~std::size_t{15}; }

std::uint64_t RoundToTile(std::uint64_t g) {
  return (g + kTileGranules - 1) / kTileGranules * kTileGranules;
}

}  // namespace

void ApplyBatchBuilder::Reset() {
  targets_.clear();
  items_.clear();
  sparse_segments_ = dense_count_ = granules_ = sparse_bytes_ = dense_bytes_ = 0;
}

std::uint32_t ApplyBatchBuilder::AddTarget(std::uint8_t* primary, std::uint8_t* secondary,
                                           std::uint64_t size) {
  targets_.push_back({primary, secondary, size});
  return static_cast<std::uint32_t>(targets_.size() - 1);
}

std::uint64_t ApplyBatchBuilder::DenseGranules(const Delta& d) {
  return d.form() == Delta::Form::kDense ? RoundToTile(GranuleCount(d.page_size())) : 0;
}

bool ApplyBatchBuilder::Fits(std::uint64_t bytes, std::uint64_t granules) const {
  return sparse_bytes_ + dense_bytes_ + bytes < kLimit && granules_ + granules < kLimit &&
         sparse_segments_ + bytes + 1 < kLimit;
}

Status ApplyBatchBuilder::AddDelta(std::uint32_t target, const Delta& d) {
  if (target >= targets_.size()) return InvalidArgument("apply batch: unknown target");
  if (d.empty()) return Status::Ok();
  if (d.page_size() != targets_[target].size) {
    return InvalidArgument("apply batch: delta of a " + std::to_string(d.page_size()) +
                           "-byte page for a " + std::to_string(targets_[target].size) +
                           "-byte target");
  }
  if (!Fits(d.changed_bytes(), DenseGranules(d)))
    return InvalidArgument("apply batch: batch is full");
  items_.push_back({target, &d, nullptr, 0});
  if (d.form() == Delta::Form::kDense) {
    ++dense_count_;
    granules_ += DenseGranules(d);
    dense_bytes_ += d.changed_bytes();
  } else {
    sparse_segments_ += d.Runs().size();
    sparse_bytes_ += d.changed_bytes();
  }
  return Status::Ok();
}

Status ApplyBatchBuilder::AddImage(std::uint32_t target, const std::uint8_t* bytes,
                                   std::uint64_t size) {
  if (target >= targets_.size()) return InvalidArgument("apply batch: unknown target");
  if (size != targets_[target].size)
    return InvalidArgument("apply batch: image size differs from the target");
  if (size == 0) return Status::Ok();
  if (!Fits(size, 0)) return InvalidArgument("apply batch: batch is full");
  items_.push_back({target, nullptr, bytes, size});
  ++sparse_segments_;
  sparse_bytes_ += size;
  return Status::Ok();
}

ApplyBatchBuilder::Layout ApplyBatchBuilder::ComputeLayout() const {
  Layout l{};
  std::size_t at = 0;
  l.targets = at;
  at = Align16(at + targets_.size() * sizeof(ApplyTarget));
  l.sparse = at;
  at = Align16(at + (sparse_segments_ + 1) * sizeof(SparseSegment));
  l.dense = at;
  at = Align16(at + dense_count_ * sizeof(DenseSegment));
  l.masks = at;
  at = Align16(at + granules_ * sizeof(std::uint64_t));
  l.tiles = at;
  at = Align16(at + granules_ / kTileGranules * sizeof(std::uint32_t));
  l.payload = at;
  at = Align16(at + sparse_bytes_ + dense_bytes_);
  l.end = at;
  return l;
}

std::size_t ApplyBatchBuilder::PackedSize() const { return ComputeLayout().end; }

ApplyBatchView ApplyBatchBuilder::Pack(std::uint8_t* staging, std::uint8_t* device_staging) const {
  const Layout l = ComputeLayout();
  auto* targets = reinterpret_cast<ApplyTarget*>(staging + l.targets);
  auto* sparse = reinterpret_cast<SparseSegment*>(staging + l.sparse);
  auto* dense = reinterpret_cast<DenseSegment*>(staging + l.dense);
  auto* masks = reinterpret_cast<std::uint64_t*>(staging + l.masks);
  auto* tiles = reinterpret_cast<std::uint32_t*>(staging + l.tiles);
  std::uint8_t* payload = staging + l.payload;

  if (!targets_.empty())
    std::memcpy(targets, targets_.data(), targets_.size() * sizeof(ApplyTarget));
  std::uint32_t nsparse = 0, ndense = 0;
  std::uint64_t sparse_at = 0;             // sparse payload cursor
  std::uint64_t dense_at = sparse_bytes_;  // dense payload cursor (after all sparse bytes)
  std::uint64_t granule = 0;
  for (const Item& it : items_) {
    if (it.delta == nullptr) {
      sparse[nsparse++] = {it.target, 0, static_cast<std::uint32_t>(sparse_at)};
      std::memcpy(payload + sparse_at, it.image, it.image_size);
      sparse_at += it.image_size;
      continue;
    }
    const Delta& d = *it.delta;
    const std::span<const std::uint8_t> bytes = d.bytes();
    if (d.form() == Delta::Form::kSparse) {
      std::uint64_t src = sparse_at;
      for (const ByteRun& r : d.Runs()) {
        sparse[nsparse++] = {it.target, r.offset, static_cast<std::uint32_t>(src)};
        src += r.length;
      }
      std::memcpy(payload + sparse_at, bytes.data(), bytes.size());
      sparse_at += bytes.size();
      continue;
    }
    // Dense: masks as little-endian words (bit j of word g = page byte g*64 + j), then one prefix
    // per tile of 32 granules.
    const std::uint64_t words = GranuleCount(d.page_size());
    const std::uint64_t padded = DenseGranules(d);
    const std::vector<std::uint8_t> mask = d.Mask();
    std::memset(masks + granule, 0, padded * sizeof(std::uint64_t));
    std::memcpy(masks + granule, mask.data(), std::min<std::size_t>(mask.size(), words * 8));
    dense[ndense++] = {it.target, d.page_size(), static_cast<std::uint32_t>(granule), 0};
    std::uint64_t k = dense_at;
    for (std::uint64_t g = 0; g < padded; ++g) {
      if (g % kTileGranules == 0)
        tiles[(granule + g) / kTileGranules] = static_cast<std::uint32_t>(k);
      k += static_cast<std::uint64_t>(__builtin_popcountll(masks[granule + g]));
    }
    std::memcpy(payload + dense_at, bytes.data(), bytes.size());
    dense_at += bytes.size();
    granule += padded;
  }
  sparse[nsparse] = {0, 0, static_cast<std::uint32_t>(sparse_at)};  // sentinel

  ApplyBatchView v;
  v.targets = reinterpret_cast<const ApplyTarget*>(device_staging + l.targets);
  v.num_targets = static_cast<std::uint32_t>(targets_.size());
  for (const ApplyTarget& t : targets_) v.any_secondary |= t.secondary != nullptr;
  v.sparse = reinterpret_cast<const SparseSegment*>(device_staging + l.sparse);
  v.num_sparse = nsparse;
  v.dense = reinterpret_cast<const DenseSegment*>(device_staging + l.dense);
  v.num_dense = ndense;
  v.masks = reinterpret_cast<const std::uint64_t*>(device_staging + l.masks);
  v.tile_prefix = reinterpret_cast<const std::uint32_t*>(device_staging + l.tiles);
  v.num_granules = static_cast<std::uint32_t>(granules_);
  v.payload = device_staging + l.payload;
  v.payload_bytes = sparse_bytes_ + dense_bytes_;
  return v;
}

}  // namespace mmsb
