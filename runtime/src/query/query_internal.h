// LogIndex internals shared by the index (log_index.cc) and the queries (history.cc, bisect.cc,
// slice.cc). See mmsb/query.h for the contract.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mmsb/query.h"

#include "delta/delta_view.h"
#include "log/segments.h"

namespace mmsb::query {

struct Pending;
struct PendingDelta;

class LogIndex::Impl {
 public:
  struct SegmentRec {
    std::uint64_t seq = 0;
    std::string path;
    std::uint64_t end = 0;        // just past the last indexed commit record
    std::uint64_t tail_hash = 0;  // XXH3 of the 32 bytes before `end`
    Epoch base_epoch = 0;
  };
  struct PageChanges {
    std::span<const std::uint8_t> encoded;  // into file_bytes until decoded
    std::vector<IndexedChange> list;
    bool decoded = false;
  };
  struct CommitRec {
    Epoch epoch = 0;
    std::uint64_t unix_nanos = 0;
    std::uint64_t state_hash = 0;
    std::uint32_t tx_begin = 0;
    std::uint32_t tx_count = 0;
  };
  struct TxRec {
    std::uint32_t site = 0;  // 1-based into sites; 0 unknown
    std::uint32_t thread = 0;
    std::uint64_t sequence = 0;
  };

  std::string dir;
  Env* env = nullptr;
  std::uint64_t log_id = 0;
  std::vector<SegmentRec> segments;
  mutable std::vector<std::unique_ptr<RandomAccessFile>> files;
  Epoch first_epoch = 0;
  Epoch last_epoch = 0;
  Epoch base_skip_through = 0;  // groups at or below this come from the base checkpoint
  std::string base_checkpoint;
  mutable std::unique_ptr<LogState> base_state;
  std::uint64_t log_bytes = 0;
  std::uint64_t index_bytes = 0;
  LogIndex::How how = LogIndex::How::kBuilt;

  std::vector<IndexedPage> pages;
  mutable std::vector<PageChanges> changes;  // parallel to pages
  std::unordered_map<PageId, std::size_t> by_id;
  std::map<std::string, std::shared_ptr<const TypeDescriptor>, std::less<>> types;
  std::vector<std::pair<Epoch, LogEdgeChange>> edges;
  mutable std::vector<CommitRec> commits;
  mutable std::vector<TxRec> txs;
  mutable std::span<const std::uint8_t> commits_encoded;
  mutable bool commits_decoded = true;
  std::vector<TransactionSite> sites;
  std::map<std::uint32_t, std::uint32_t> run_sites;  // the current run's site ids -> sites
  std::vector<BuildInfo> builds;
  std::vector<std::uint8_t> file_bytes;  // the loaded index file (lazy areas point into it)
  mutable std::vector<std::uint8_t> scratch;

  const IndexedPage* Page(PageId id) const;
  std::span<const IndexedChange> Changes(std::size_t i) const;
  void DecodeCommits() const;
  void DecodeAll();
  Expected<const RandomAccessFile*> File(std::size_t seg) const;
  Status ReadDelta(const IndexedChange& c, std::vector<std::uint8_t>* scratch,
                   delta_internal::DeltaView* v) const;
  Status Scan(std::size_t first_seg, std::uint64_t skip_below);
  Status ApplyGroup(std::vector<Pending>& group, const std::vector<PendingDelta>& deltas,
                    const LogCommit& c);
  std::vector<EdgeInfo> EdgesAt(Epoch epoch) const;
  std::vector<std::uint8_t> Serialize() const;
  bool Deserialize(std::vector<std::uint8_t> bytes);
  Status BuildFresh(const log::LogDirListing& listing);
  Status FinishSegments();
  bool Matches(const std::vector<SegmentRec>& now, std::size_t* resume_seg);
};

}  // namespace mmsb::query
