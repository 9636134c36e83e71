// ReplicaHashTracker (state_hash.h): block sums per page, page sums per state.
#include "log/state_hash.h"

#ifndef XXH_STATIC_LINKING_ONLY
#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t as a member
#endif
#include <xxhash.h>

#include <algorithm>

namespace mmsb::log {
namespace {

// splitmix64's finaliser: a bijection that spreads every input bit over the output.
std::uint64_t Mix(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

class Hasher {
 public:
  Hasher() { XXH3_64bits_reset(&st_); }
  void U64(std::uint64_t v) { XXH3_64bits_update(&st_, &v, sizeof v); }
  void Str(std::string_view s) {
    U64(s.size());
    XXH3_64bits_update(&st_, s.data(), s.size());
  }
  std::uint64_t Finish() { return XXH3_64bits_digest(&st_); }

 private:
  XXH3_state_t st_;
};

std::uint64_t HashWords(std::initializer_list<std::uint64_t> words) {
  return XXH3_64bits(std::data(words), words.size() * sizeof(std::uint64_t));
}

}  // namespace

std::uint64_t ReplicaHashTracker::BlockTerm(PageId id, std::uint64_t index,
                                            const std::uint8_t* data, std::size_t len) {
  return Mix(XXH3_64bits(data, len) + Mix(id * 0x9e3779b97f4a7c15ull + index));
}

void ReplicaHashTracker::Reset() {
  Invalidate();
  valid_ = true;
  Edges({});
}

void ReplicaHashTracker::Recontribute(PageId id, Tracked& t) {
  page_sum_ -= t.contribution;
  t.contribution = HashWords({t.meta, t.epoch, t.size, t.content, id});
  page_sum_ += t.contribution;
}

void ReplicaHashTracker::Page(PageId id, std::string_view name, std::string_view type_name,
                              Location location, bool is_static, Epoch epoch,
                              std::span<const std::uint8_t> bytes) {
  Tracked& t = pages_[id];
  Hasher h;
  h.U64(id);
  h.Str(name);
  h.Str(type_name);
  h.U64(static_cast<std::uint64_t>(location) | (is_static ? 0x100 : 0));
  t.meta = h.Finish();
  t.epoch = epoch;
  Rehash(id, t, bytes);
}

void ReplicaHashTracker::Rehash(PageId id, Tracked& t, std::span<const std::uint8_t> bytes) {
  t.size = bytes.size();
  const std::size_t n = (bytes.size() + kBlock - 1) / kBlock;
  t.blocks.resize(n);
  t.content = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t off = i * kBlock;
    t.blocks[i] =
        BlockTerm(id, i, bytes.data() + off, std::min<std::size_t>(kBlock, bytes.size() - off));
    t.content += t.blocks[i];
  }
  Recontribute(id, t);
}

void ReplicaHashTracker::Range(PageId id, std::span<const std::uint8_t> bytes, std::uint64_t offset,
                               std::uint64_t length) {
  auto it = pages_.find(id);
  if (it == pages_.end() || length == 0) return;
  Tracked& t = it->second;
  if (t.size != bytes.size()) {  // not the size it tracks: rehash it whole, stay correct
    Rehash(id, t, bytes);
    return;
  }
  const std::uint64_t end = std::min<std::uint64_t>(offset + length, bytes.size());
  for (std::uint64_t i = offset / kBlock; i * kBlock < end; ++i) {
    const std::size_t off = i * kBlock;
    const std::uint64_t term =
        BlockTerm(id, i, bytes.data() + off, std::min<std::size_t>(kBlock, bytes.size() - off));
    t.content += term - t.blocks[i];
    t.blocks[i] = term;
  }
  Recontribute(id, t);
}

void ReplicaHashTracker::SetEpoch(PageId id, Epoch epoch) {
  auto it = pages_.find(id);
  if (it == pages_.end() || it->second.epoch == epoch) return;
  it->second.epoch = epoch;
  Recontribute(id, it->second);
}

void ReplicaHashTracker::Remove(PageId id) {
  auto it = pages_.find(id);
  if (it == pages_.end()) return;
  page_sum_ -= it->second.contribution;
  pages_.erase(it);
}

void ReplicaHashTracker::Edges(std::span<const EdgeInfo> edges) {
  Hasher h;
  for (const EdgeInfo& e : edges) {
    h.U64(e.parent);
    h.U64(e.child);
    h.U64(static_cast<std::uint64_t>(e.kind) | (static_cast<std::uint64_t>(e.policy) << 8));
    h.U64(e.projection.src_offset);
    h.U64(e.projection.length);
    h.U64(e.projection.dst_offset);
  }
  edges_count_ = edges.size();
  edges_hash_ = h.Finish();
}

std::uint64_t ReplicaHashTracker::Digest(Epoch epoch, PageId page_id_high) const {
  return HashWords({0x4d4d5342'52504c32ull,  // "MMSBRPL2": not LogState::Hash()
                    epoch, page_id_high, pages_.size(), page_sum_, edges_count_, edges_hash_});
}

}  // namespace mmsb::log
