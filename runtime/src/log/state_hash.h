// StateHasher: the canonical hash of a replicated state (LogState::ReplicaHash).
//
// One definition for the two sides that must agree bit for bit: a follower hashes the LogState
// replay rebuilt, a leader's LogSink hashes its live pages (in log ids and log epochs) after each
// commit. Feed pages in increasing id order and edges in (child, parent) order.
// Thread-safety: a StateHasher is a single-threaded value.
#pragma once

#ifndef XXH_STATIC_LINKING_ONLY
#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t as a member
#endif
#include <xxhash.h>

#include <cstdint>
#include <span>
#include <string_view>

#include "mmsb/graph.h"
#include "mmsb/types.h"

namespace mmsb::log {

class StateHasher {
 public:
  StateHasher(Epoch epoch, PageId page_id_high, std::uint64_t pages) {
    XXH3_64bits_reset(&st_);
    U64(0x4d4d5342'52504c31ull);  // "MMSBRPL1": not LogState::Hash()
    U64(epoch);
    U64(page_id_high);
    U64(pages);
  }
  void Page(PageId id, std::string_view name, std::string_view type_name, Location location,
            bool is_static, Epoch epoch, std::span<const std::uint8_t> bytes) {
    U64(id);
    Str(name);
    Str(type_name);
    U64(static_cast<std::uint64_t>(location) | (is_static ? 0x100 : 0));
    U64(epoch);
    U64(bytes.size());
    XXH3_64bits_update(&st_, bytes.data(), bytes.size());
  }
  void Edges(std::uint64_t n) { U64(n); }
  void Edge(const EdgeInfo& e) {
    U64(e.parent);
    U64(e.child);
    U64(static_cast<std::uint64_t>(e.kind) | (static_cast<std::uint64_t>(e.policy) << 8));
    U64(e.projection.src_offset);
    U64(e.projection.length);
    U64(e.projection.dst_offset);
  }
  std::uint64_t Finish() { return XXH3_64bits_digest(&st_); }

 private:
  void U64(std::uint64_t v) { XXH3_64bits_update(&st_, &v, sizeof v); }
  void Str(std::string_view s) {
    U64(s.size());
    XXH3_64bits_update(&st_, s.data(), s.size());
  }
  XXH3_state_t st_;
};

}  // namespace mmsb::log
