// ApplyBatchBuilder: packs many pages' deltas into one staging buffer in the layout a backend's
// ApplyBatch reads (mmsb/device.h, ApplyBatchView; docs/DeviceMemoryModel.md, "The sync").
//
// Layout, each section 16-byte aligned:
//   targets      ApplyTarget x T
//   sparse       SparseSegment x (S + 1)     runs of sparse deltas and whole images, payload order
//   dense        DenseSegment x D
//   masks        u64 x G                     dense deltas' masks, each starting on a tile boundary
//   tile_prefix  u32 x G/32                  payload offset of each tile's first changed byte
//   payload      sparse bytes, then dense bytes
// A delta's new bytes are already packed in offset order (Delta::bytes()), for either form, so
// packing copies each delta's bytes once, straight into the pinned buffer.
//
// Ownership: the builder keeps pointers to the deltas and images it is given; they must stay alive
// until Pack() returns. Thread-safety: none (one builder per user).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "mmsb/delta.h"
#include "mmsb/device.h"
#include "mmsb/status.h"

namespace mmsb {

class ApplyBatchBuilder {
 public:
  void Reset();
  bool empty() const { return items_.empty(); }
  std::size_t items() const { return items_.size(); }

  // Declares a page the batch writes (device pointers; secondary may be null). Returns its index.
  std::uint32_t AddTarget(std::uint8_t* primary, std::uint8_t* secondary, std::uint64_t size);
  // Queues `d` for `target` (empty deltas are skipped). InvalidArgument when the delta does not
  // fit the target.
  Status AddDelta(std::uint32_t target, const Delta& d);
  // Queues a whole image of the target (a fresh or stale copy).
  Status AddImage(std::uint32_t target, const std::uint8_t* bytes, std::uint64_t size);

  // Whether `bytes` more payload and `granules` more dense granules keep the batch's 32-bit
  // offsets valid. Callers ship the current batch first when not.
  bool Fits(std::uint64_t bytes, std::uint64_t granules) const;
  static std::uint64_t DenseGranules(const Delta& d);

  // Bytes Pack() writes.
  std::size_t PackedSize() const;
  // Writes the batch into `staging` (PackedSize() bytes, 16-byte aligned) and returns its view,
  // with pointers into `device_staging`, where the caller copies the staging bytes before applying.
  ApplyBatchView Pack(std::uint8_t* staging, std::uint8_t* device_staging) const;

 private:
  struct Item {
    std::uint32_t target;
    const Delta* delta;  // or null for an image
    const std::uint8_t* image;
    std::uint64_t image_size;
  };
  struct Layout {
    std::size_t targets, sparse, dense, masks, tiles, payload, end;
  };
  Layout ComputeLayout() const;

  std::vector<ApplyTarget> targets_;
  std::vector<Item> items_;
  std::uint64_t sparse_segments_ = 0;
  std::uint64_t dense_count_ = 0;
  std::uint64_t granules_ = 0;  // padded to tiles per dense delta
  std::uint64_t sparse_bytes_ = 0;
  std::uint64_t dense_bytes_ = 0;
};

}  // namespace mmsb
