// The wire layouts a device backend reads and writes: packed delta batches (ApplyBatchView and
// its segments), gather/scatter runs, and the targets and runs of a device-side diff. They are
// shared by the runtime, which packs them into one staging buffer (runtime/src/device/
// apply_batch.h), and the backends, which apply them (mmsb/kernels.h). All pointers in a view are
// device pointers. See docs/DeviceMemoryModel.md, "The sync"; the interface that takes them is
// mmsb/device.h.
//
// Ownership: views borrow the buffers they point into. Thread-safety: plain data.
#pragma once

#include <cstdint>

namespace mmsb {

// A page a batch writes. Every segment that names it is applied to `primary` and, when set, to
// `secondary` (a mirror's base image), each read-modify-written independently.
struct ApplyTarget {
  std::uint8_t* primary = nullptr;
  std::uint8_t* secondary = nullptr;
  std::uint64_t size = 0;  // bytes of the page
};

// Sparse run: payload[src, next.src) lands at target byte `offset`. Segments are in payload order
// and the array has one sentinel entry whose `src` is the end of the sparse payload.
struct SparseSegment {
  std::uint32_t target = 0;
  std::uint32_t offset = 0;
  std::uint32_t src = 0;
};

// Dense delta: mask bit j of word (first_granule + g) selects target byte g*64 + j; the selected
// bytes come from the payload in offset order, starting at tile_prefix[first_granule / 32].
// first_granule is a multiple of kTileGranules.
struct DenseSegment {
  std::uint32_t target = 0;
  std::uint32_t size = 0;           // bytes of the target covered (the page size)
  std::uint32_t first_granule = 0;  // index into masks
  std::uint32_t reserved = 0;
};

inline constexpr std::uint32_t kTileGranules = 32;  // granules per tile_prefix entry

struct ApplyBatchView {
  const ApplyTarget* targets = nullptr;
  std::uint32_t num_targets = 0;
  bool any_secondary = false;  // some target has a secondary
  const SparseSegment* sparse = nullptr;
  std::uint32_t num_sparse = 0;  // segments, not counting the sentinel
  const DenseSegment* dense = nullptr;
  std::uint32_t num_dense = 0;
  const std::uint64_t* masks = nullptr;        // one word per granule, num_granules of them
  const std::uint32_t* tile_prefix = nullptr;  // payload offset of each tile's first changed byte
  std::uint32_t num_granules = 0;              // a multiple of kTileGranules
  const std::uint8_t* payload = nullptr;
  std::uint64_t payload_bytes = 0;
};

// A byte range of a page and where its bytes sit in a packed buffer (gather and scatter).
struct PackedRun {
  std::uint32_t offset = 0;  // in the page
  std::uint32_t length = 0;
  std::uint64_t packed = 0;  // in the packed buffer
};

// One page of a device-side diff: `now` compared with `base`, both `size` bytes. The pages'
// granules are numbered consecutively: page i owns granules [first_granule, first_granule +
// ceil(size / 64)), and first_granule of page i+1 follows on.
struct DiffTarget {
  const std::uint8_t* now = nullptr;
  const std::uint8_t* base = nullptr;
  std::uint32_t size = 0;
  std::uint32_t first_granule = 0;
};

// A changed run found on the device: bytes [begin, end) of target `target` differ; their new
// values are at `packed` in the packed output. Runs are sorted by (target, begin), maximal, and
// never span two targets.
struct DiffRun {
  std::uint32_t target = 0;
  std::uint32_t begin = 0;
  std::uint32_t end = 0;
  std::uint32_t packed = 0;
};

struct DiffTotals {
  std::uint64_t runs = 0;   // runs found (may exceed the output capacity)
  std::uint64_t bytes = 0;  // changed bytes found
};

}  // namespace mmsb
