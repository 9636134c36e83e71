// LogIndex internals shared by the index (log_index.cc) and the queries (history.cc, bisect.cc,
// slice.cc). See mmsb/query.h for the contract.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mmsb/query.h"

#include "delta/delta_view.h"
#include "log/segments.h"
#include "query/block_pool.h"

namespace mmsb::query {

struct Pending;
struct PendingDelta;

// A growable byte buffer for the index's blocks while they are built: appends are a capacity
// check and plain stores (no library call per varint). Its memory comes from the BlockPool it
// was given (block_pool.h: huge pages, growth reuses the buffers growth leaves behind), or from
// malloc without one. The pool lives as long as any buffer from it.
class ByteBuf {
 public:
  ByteBuf() = default;
  explicit ByteBuf(std::shared_ptr<BlockPool> pool) : pool_(std::move(pool)) {}
  ~ByteBuf() { Release(); }
  ByteBuf(ByteBuf&& o) noexcept : p_(o.p_), n_(o.n_), cap_(o.cap_), pool_(std::move(o.pool_)) {
    o.p_ = nullptr;
    o.n_ = o.cap_ = 0;
  }
  ByteBuf& operator=(ByteBuf&& o) noexcept {
    if (this != &o) {
      Release();
      p_ = o.p_;
      n_ = o.n_;
      cap_ = o.cap_;
      pool_ = std::move(o.pool_);
      o.p_ = nullptr;
      o.n_ = o.cap_ = 0;
    }
    return *this;
  }
  ByteBuf(const ByteBuf&) = delete;
  ByteBuf& operator=(const ByteBuf&) = delete;

  const std::uint8_t* data() const { return p_; }
  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  operator std::span<const std::uint8_t>() const { return {p_, n_}; }
  // Empty, and its memory given back; the pool stays.
  void clear() {
    Release();
    p_ = nullptr;
    n_ = cap_ = 0;
  }
  // Room for `n` more bytes at the returned pointer; Commit(end) then keeps those written.
  std::uint8_t* Reserve(std::size_t n) {
    if (cap_ - n_ < n) Grow(n);
    return p_ + n_;
  }
  void Commit(const std::uint8_t* end) { n_ = static_cast<std::size_t>(end - p_); }
  void Assign(std::span<const std::uint8_t> b) {
    n_ = 0;
    if (b.empty()) return;
    std::memcpy(Reserve(b.size()), b.data(), b.size());
    n_ = b.size();
  }

 private:
  void Grow(std::size_t n) {
    const std::size_t want = std::max<std::size_t>({n_ + n, cap_ * 2, BlockPool::kMinBuffer});
    if (pool_) {
      const std::size_t cap = BlockPool::CapacityFor(want);
      p_ = pool_->Grow(p_, cap_, n_, want);
      cap_ = cap;
      return;
    }
    auto* q = static_cast<std::uint8_t*>(std::realloc(p_, want));
    if (q == nullptr) throw std::bad_alloc();
    p_ = q;
    cap_ = want;
  }
  void Release() {
    if (pool_) {
      pool_->Free(p_, cap_);
    } else {
      std::free(p_);
    }
  }

  std::uint8_t* p_ = nullptr;
  std::size_t n_ = 0;
  std::size_t cap_ = 0;
  std::shared_ptr<BlockPool> pool_;
};

class LogIndex::Impl {
 public:
  struct SegmentRec {
    std::uint64_t seq = 0;
    std::string path;
    std::uint64_t end = 0;        // just past the last indexed commit record
    std::uint64_t tail_hash = 0;  // XXH3 of the 32 bytes before `end`
    Epoch base_epoch = 0;
  };
  // Where an encoded block lies in the index file, and its XXH3 (checked when it is read).
  struct BlockRef {
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
    std::uint64_t hash = 0;
  };
  // One page's changes: varint-encoded (`enc`, in memory after a build or an extension; else the
  // file block `at`), decoded into `list` on first use.
  struct PageChanges {
    BlockRef at;
    ByteBuf enc;
    std::uint64_t count = 0;
    Epoch last_epoch = 0;  // the encoder's state, for appending
    std::uint64_t last_where = 0;
    std::vector<IndexedChange> list;
    bool decoded = false;
    Epoch truncate_after = ~Epoch{0};  // set when taken over from a rebuild (IndexDamaged)
  };
  struct CommitRec {
    Epoch epoch = 0;
    std::uint64_t unix_nanos = 0;
    std::uint64_t state_hash = 0;
    std::uint32_t tx_begin = 0;  // into the block's txs
    std::uint32_t tx_count = 0;
  };
  struct TxRec {
    std::uint32_t site = 0;  // 1-based into sites; 0 unknown
    std::uint32_t thread = 0;
    std::uint64_t sequence = 0;
  };
  // Up to kCommitsPerBlock consecutive commits, encoded like a page's changes.
  struct CommitBlock {
    BlockRef at;
    ByteBuf enc;
    std::uint32_t count = 0;
    Epoch first = 0;
    Epoch last = 0;
    std::uint64_t last_nanos = 0;
  };
  static constexpr std::uint32_t kCommitsPerBlock = 1024;

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
  std::string index_path;
  bool save = true;
  mutable std::string note;  // why the index file was not used, when it was not
  mutable Status damage;     // a damaged block that no rebuild could replace

  std::shared_ptr<BlockPool> pool = std::make_shared<BlockPool>();  // the blocks' memory
  std::vector<IndexedPage> pages;
  mutable std::vector<PageChanges> changes;  // parallel to pages
  std::unordered_map<PageId, std::size_t> by_id;
  std::vector<std::uint32_t> dense;  // page id -> index + 1, for small ids (the common case)
  std::map<std::string, std::shared_ptr<const TypeDescriptor>, std::less<>> types;
  std::vector<std::pair<Epoch, LogEdgeChange>> edges;
  mutable std::vector<CommitBlock> commit_blocks;
  // A few decoded commit blocks (block index -> commits, txs), so a query over many epochs
  // holds little memory.
  struct DecodedCommits {
    std::size_t block = ~std::size_t{0};
    std::vector<CommitRec> commits;
    std::vector<TxRec> txs;
  };
  mutable std::vector<DecodedCommits> commit_cache;
  mutable std::size_t commit_cache_next = 0;
  std::uint64_t commit_count = 0;
  std::vector<TransactionSite> sites;
  std::map<std::uint32_t, std::uint32_t> run_sites;  // the current run's site ids -> sites
  std::vector<BuildInfo> builds;
  mutable std::unique_ptr<RandomAccessFile> index_file;  // the loaded index (blocks read lazily)
  mutable std::vector<std::uint8_t> scratch;
  mutable std::vector<std::uint8_t> block_scratch;
  mutable std::size_t read_hint = 256;  // ReadDelta's first read: the last record's size
  std::vector<TxRec> group_txs;         // ApplyGroup's
  // The payloads of small delta records, copied from the change blocks as they are decoded
  // (index_format.h, kInlineDeltaMax): `where` -> [offset, offset + length) of `inline_pool`.
  struct InlineRef {
    std::uint32_t offset = 0;
    std::uint32_t length = 0;
  };
  mutable std::unordered_map<std::uint64_t, InlineRef> inline_at;
  mutable std::vector<std::uint8_t> inline_pool;

  const IndexedPage* Page(PageId id) const;
  std::size_t PageIndex(PageId id) const;  // ~0 when absent
  std::span<const IndexedChange> Changes(std::size_t i) const;
  const DecodedCommits* CommitsOf(std::size_t block) const;
  Status LoadEncoded();  // reads every block into memory (before extending)
  Status ReadBlock(const BlockRef& b, std::vector<std::uint8_t>* out) const;
  void IndexDamaged(const std::string& what) const;
  Expected<const RandomAccessFile*> File(std::size_t seg) const;
  // The delta behind `c`: from its change block when it was small enough to be copied there,
  // else read (and checked) from its segment into `*scratch`.
  Status ReadDelta(const IndexedChange& c, std::vector<std::uint8_t>* scratch,
                   delta_internal::DeltaView* v) const;
  Status Scan(std::size_t first_seg, std::uint64_t skip_below);
  Status ApplyGroup(std::vector<Pending>& group, const std::vector<PendingDelta>& deltas,
                    std::span<const std::uint8_t> inline_bytes, const LogCommit& c);
  void AddPage(IndexedPage page);
  void AppendCommit(const CommitRec& c, std::span<const TxRec> txs);
  std::vector<EdgeInfo> EdgesAt(Epoch epoch) const;
  Status Save(const std::string& path) const;
  bool Load(std::unique_ptr<RandomAccessFile> file);
  Status BuildFresh(const log::LogDirListing& listing);
  Status FinishSegments();
  bool Matches(const std::vector<SegmentRec>& now, std::size_t* resume_seg);
};

}  // namespace mmsb::query
