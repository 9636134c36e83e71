// ReplicaHashTracker: the canonical hash of a replicated state (LogState::ReplicaHash), kept up to
// date from each epoch's changes at a cost of O(changed bytes), not O(state).
//
// One definition for the two sides that must agree bit for bit: a follower's Replayer tracks the
// LogState replay rebuilds, a leader's LogSink tracks its committed pages (in log ids and log
// epochs). Both feed the tracker what an epoch changed; LogState::ReplicaHash() builds a tracker
// from scratch, so a full pass and the incremental value are the same number by construction.
//
// Definition (docs/Replication.md, "The state hash"): a page's bytes are cut into kBlock-byte
// blocks; block i of page p contributes Mix(XXH3(block) + Mix(p * K + i)), and the page's content
// sum is the sum of its blocks' contributions mod 2^64. A page contributes
// XXH3(meta, epoch, size, content sum), where meta = XXH3(id, name, type name, location, static).
// The state's hash is XXH3("MMSBRPL2", epoch, page_id_high, page count, sum of the pages'
// contributions mod 2^64, edge count, XXH3 of the edges in (child, parent) order). Sums make the
// update of one block or one page O(1): subtract its old contribution, add its new one. It is a
// check against accidental divergence (a 64-bit hash), not against an adversary.
//
// Invariant the callers keep: after every change of a tracked page's bytes, epoch or existence,
// they call Range/SetEpoch/Remove/Page for it before Digest(); Page() (a full rehash of one page)
// is always allowed. Invalidate() makes the owner rebuild from scratch.
// Thread-safety: a single-threaded value.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mmsb/graph.h"
#include "mmsb/types.h"

namespace mmsb::log {

class ReplicaHashTracker {
 public:
  static constexpr std::uint32_t kBlock = 256;

  bool valid() const { return valid_; }
  // Forget everything: the owner rebuilds (Reset, then Page for every page).
  void Invalidate() {
    valid_ = false;
    pages_.clear();
    page_sum_ = 0;
  }
  // Starts an empty tracked state (no pages, no edges).
  void Reset();

  // (Re)hashes a whole page: created, loaded, or of unknown change.
  void Page(PageId id, std::string_view name, std::string_view type_name, Location location,
            bool is_static, Epoch epoch, std::span<const std::uint8_t> bytes);
  // The bytes [offset, offset + length) of page `id` changed; `bytes` is the whole page now.
  void Range(PageId id, std::span<const std::uint8_t> bytes, std::uint64_t offset,
             std::uint64_t length);
  void SetEpoch(PageId id, Epoch epoch);
  void Remove(PageId id);
  bool Has(PageId id) const { return pages_.count(id) != 0; }
  // The edges, sorted by (child, parent); call whenever they change.
  void Edges(std::span<const EdgeInfo> edges);

  std::uint64_t Digest(Epoch epoch, PageId page_id_high) const;

 private:
  struct Tracked {
    std::uint64_t meta = 0;
    Epoch epoch = 0;
    std::uint64_t size = 0;
    std::uint64_t content = 0;       // sum of the blocks' terms
    std::uint64_t contribution = 0;  // this page's term in page_sum_
    std::vector<std::uint64_t> blocks;
  };
  static std::uint64_t BlockTerm(PageId id, std::uint64_t index, const std::uint8_t* data,
                                 std::size_t len);
  void Recontribute(PageId id, Tracked& t);
  void Rehash(PageId id, Tracked& t, std::span<const std::uint8_t> bytes);  // blocks, then term

  bool valid_ = false;
  std::unordered_map<PageId, Tracked> pages_;
  std::uint64_t page_sum_ = 0;
  std::uint64_t edges_count_ = 0;
  std::uint64_t edges_hash_ = 0;
};

}  // namespace mmsb::log
