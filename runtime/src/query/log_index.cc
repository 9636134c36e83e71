// LogIndex: the field-change index kept beside the log segments (see mmsb/query.h and
// docs/Debugging.md, "The index").
//
// Build: one streaming pass over the segments' framed records (no replay, no page state):
// page-creates, frees, types, edges, provenance and, per delta record, its page, epoch, the
// 1/64ths of the page it wrote and its file position. Records are held per group and indexed only
// when the group's commit record is valid and counts them, as replay applies only complete groups.
// Each page's changes and each run of kCommitsPerBlock commits are varint-encoded as they are
// indexed, straight into their block's bytes: nothing is allocated per record.
//
// The file (`query.idx`, version 2), laid out so that a query reads only what it asks about:
//   header  magic "MMSBQIDX", u32 version, u32 0, u64 log id, u64 meta size, u64 XXH3 of the
//           meta, u64 file size, u64 XXH3 of the 48 bytes before it (56 bytes);
//   meta    varint-encoded: the segments covered (sequence number, indexed end, XXH3 of the 32
//           bytes before that end), types, pages, edges, sites, builds, and two directories:
//           per commit block (count, first and last epoch) and per page (change count, last
//           epoch and position), each entry with its block's size and XXH3;
//   blocks  the commit blocks, then the pages' change blocks, back to back.
// Open reads the header and the meta only, and trusts them only when every segment named is still
// there, unchanged up to its end, in the same order. A block is read (pread, no mapping) and
// checked when a query first needs it; a block that fails its check makes the index rebuild itself
// from the log (IndexDamaged), never trust it.
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <unordered_map>

#include <fmt/format.h>

#include "mmsb/checkpoint.h"
#include "mmsb/query.h"

#include "delta/delta_view.h"
#include "log/log_format.h"
#include "log/log_records.h"
#include "log/record_reader.h"
#include "log/segments.h"
#include "query/query_internal.h"

namespace mmsb::query {

using delta_internal::DeltaView;

namespace {

constexpr char kIndexMagic[8] = {'M', 'M', 'S', 'B', 'Q', 'I', 'D', 'X'};
constexpr std::uint32_t kIndexVersion = 2;
constexpr std::size_t kIndexHeader = 56;
constexpr std::uint64_t kTailBytes = 32;

// Appends v as a varint at p (at most 10 bytes).
inline void PutVar(std::uint8_t*& p, std::uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<std::uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<std::uint8_t>(v);
}

class VarWriter {
 public:
  explicit VarWriter(std::vector<std::uint8_t>& out) : out_(out) {}
  void V(std::uint64_t v) {
    std::uint8_t buf[10];
    std::uint8_t* p = buf;
    PutVar(p, v);
    out_.insert(out_.end(), buf, p);
  }
  void S(std::string_view s) {
    V(s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void B(std::span<const std::uint8_t> b) {
    V(b.size());
    out_.insert(out_.end(), b.begin(), b.end());
  }

 private:
  std::vector<std::uint8_t>& out_;
};

class VarReader {
 public:
  explicit VarReader(std::span<const std::uint8_t> in) : in_(in) {}
  std::uint64_t V() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return Fail();
      const std::uint8_t b = in_[pos_++];
      v |= std::uint64_t{b & 0x7Fu} << shift;
      if ((b & 0x80) == 0) return v;
    }
    return Fail();
  }
  std::string S() {
    auto b = B();
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  std::span<const std::uint8_t> B() {
    const std::uint64_t n = V();
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      return {};
    }
    auto r = in_.subspan(pos_, n);
    pos_ += n;
    return r;
  }
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == in_.size(); }

 private:
  std::uint64_t Fail() {
    ok_ = false;
    pos_ = in_.size();
    return 0;
  }
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

std::string DefaultIndexPath(const std::string& dir) { return dir + "/query.idx"; }

Expected<std::uint64_t> TailHash(const RandomAccessFile& f, std::uint64_t end) {
  std::uint8_t buf[kTailBytes];
  const std::uint64_t start = end >= kTailBytes ? end - kTailBytes : 0;
  std::size_t got = 0;
  MMSB_RETURN_IF_ERROR(f.Read(start, end - start, buf, &got));
  if (got != end - start) return Corruption("segment is shorter than its index says");
  return XXH3_64bits(buf, got);
}

}  // namespace

// ---- Impl ---------------------------------------------------------------------------------------

std::size_t LogIndex::Impl::PageIndex(PageId id) const {
  if (id < dense.size()) return dense[id] == 0 ? ~std::size_t{0} : dense[id] - 1;
  auto it = by_id.find(id);
  return it == by_id.end() ? ~std::size_t{0} : it->second;
}

const IndexedPage* LogIndex::Impl::Page(PageId id) const {
  const std::size_t i = PageIndex(id);
  return i == ~std::size_t{0} ? nullptr : &pages[i];
}

void LogIndex::Impl::AddPage(IndexedPage page) {
  constexpr PageId kDenseIds = PageId{1} << 22;
  if (page.id < kDenseIds) {
    if (page.id >= dense.size()) dense.resize(std::max<std::size_t>(page.id + 1, dense.size() * 2));
    dense[page.id] = static_cast<std::uint32_t>(pages.size() + 1);
  }
  by_id[page.id] = pages.size();
  pages.push_back(std::move(page));
  changes.emplace_back();
}

Status LogIndex::Impl::ReadBlock(const BlockRef& b, std::vector<std::uint8_t>* out) const {
  out->resize(b.size);
  if (!index_file) return Corruption("no index file to read a block from");
  std::size_t got = 0;
  MMSB_RETURN_IF_ERROR(index_file->Read(b.offset, b.size, out->data(), &got));
  if (got != b.size) return Corruption(fmt::format("block at {} is cut short", b.offset));
  if (XXH3_64bits(out->data(), out->size()) != b.hash) {
    return Corruption(fmt::format("block at {} fails its checksum", b.offset));
  }
  return Status::Ok();
}

// A block of the loaded index failed its check: rebuild from the log, take over the parts not yet
// handed out (decoded page lists and returned spans stay as they are: they came from blocks that
// passed), and write the rebuilt file for the next query.
void LogIndex::Impl::IndexDamaged(const std::string& what) const {
  note = fmt::format("{}: {}; rebuilt it from the log", index_path, what);
  auto listing = log::ListLogDir(env, dir);
  Impl fresh;
  fresh.dir = dir;
  fresh.env = env;
  Status s = listing.status();
  if (s.ok()) {
    for (const auto& seg : listing->segments)
      fresh.segments.push_back({seg.seq, seg.path, 0, 0, 0});
    s = fresh.BuildFresh(*listing);
  }
  if (s.ok()) s = fresh.FinishSegments();
  if (!s.ok() || fresh.last_epoch < last_epoch) {
    damage =
        Corruption(fmt::format("{}: {}, and rebuilding it from the log failed: {}", index_path,
                               what, s.ok() ? "the log is shorter than the index" : s.message()));
    for (PageChanges& c : changes) {
      if (!c.decoded) {
        c.list.clear();
        c.decoded = true;
      }
    }
    return;
  }
  if (save) (void)fresh.Save(index_path);  // before its blocks move over below
  for (std::size_t i = 0; i < pages.size(); ++i) {
    PageChanges& c = changes[i];
    if (c.decoded) continue;
    const std::size_t j = fresh.PageIndex(pages[i].id);
    c.at = {};
    c.count = 0;
    c.enc.clear();
    if (j != ~std::size_t{0}) {
      c.enc = std::move(fresh.changes[j].enc);
      c.count = fresh.changes[j].count;
    }
    c.decoded = false;
    c.truncate_after = last_epoch;  // the rebuilt index may cover epochs this one does not
  }
  commit_blocks = std::move(fresh.commit_blocks);
  commit_cache.clear();
  index_file.reset();
}

std::span<const IndexedChange> LogIndex::Impl::Changes(std::size_t i) const {
  PageChanges& c = changes[i];
  if (c.decoded) return c.list;
  std::span<const std::uint8_t> bytes = c.enc;
  if (c.enc.empty() && c.count > 0) {
    if (Status s = ReadBlock(c.at, &block_scratch); !s.ok()) {
      IndexDamaged(fmt::format("the changes of page {}: {}", pages[i].id, s.message()));
      return Changes(i);
    }
    bytes = block_scratch;
  }
  VarReader r(bytes);
  c.list.clear();
  c.list.reserve(c.count);
  Epoch epoch = 0;
  std::uint64_t where = 0;
  for (std::uint64_t k = 0; k < c.count && r.ok(); ++k) {
    IndexedChange ch;
    epoch += r.V();
    const std::uint64_t lo = r.V();
    ch.mask = lo < 64 ? r.V() << lo : 0;
    where += r.V();
    ch.epoch = epoch;
    ch.where = where;
    if (epoch > c.truncate_after) break;
    c.list.push_back(ch);
  }
  if (!r.ok() && c.enc.empty()) {  // checksummed, yet not what it says: damaged all the same
    c.list.clear();
    IndexDamaged(fmt::format("the changes of page {} do not decode", pages[i].id));
    return Changes(i);
  }
  c.decoded = true;
  c.enc.clear();
  return c.list;
}

const LogIndex::Impl::DecodedCommits* LogIndex::Impl::CommitsOf(std::size_t block) const {
  for (const DecodedCommits& d : commit_cache) {
    if (d.block == block) return &d;
  }
  constexpr std::size_t kCached = 8;
  if (commit_cache.size() < kCached) commit_cache.emplace_back();
  DecodedCommits& d = commit_cache[commit_cache_next++ % commit_cache.size()];
  d.block = ~std::size_t{0};
  d.commits.clear();
  d.txs.clear();
  const CommitBlock& b = commit_blocks[block];
  std::span<const std::uint8_t> bytes = b.enc;
  if (b.enc.empty() && b.count > 0) {
    if (Status s = ReadBlock(b.at, &block_scratch); !s.ok()) {
      IndexDamaged(fmt::format("commit block {}: {}", block, s.message()));
      return block < commit_blocks.size() ? CommitsOf(block) : nullptr;
    }
    bytes = block_scratch;
  }
  VarReader r(bytes);
  Epoch epoch = 0;
  std::uint64_t nanos = 0;
  for (std::uint32_t k = 0; k < b.count && r.ok(); ++k) {
    CommitRec c;
    epoch += r.V();
    const std::uint64_t zz = r.V();
    nanos += (zz & 1) ? ~(zz >> 1) : (zz >> 1);
    c.epoch = epoch;
    c.unix_nanos = nanos;
    c.state_hash = r.V();
    c.tx_begin = static_cast<std::uint32_t>(d.txs.size());
    const std::uint64_t nt = r.V();
    for (std::uint64_t t = 0; t < nt && r.ok(); ++t) {
      TxRec x;
      x.site = static_cast<std::uint32_t>(r.V());
      x.thread = static_cast<std::uint32_t>(r.V());
      x.sequence = r.V();
      d.txs.push_back(x);
    }
    c.tx_count = static_cast<std::uint32_t>(d.txs.size() - c.tx_begin);
    d.commits.push_back(c);
  }
  if (!r.ok() && b.enc.empty()) {
    IndexDamaged(fmt::format("commit block {} does not decode", block));
    return block < commit_blocks.size() ? CommitsOf(block) : nullptr;
  }
  d.block = block;
  return &d;
}

void LogIndex::Impl::AppendCommit(const CommitRec& c, std::span<const TxRec> txs) {
  if (commit_blocks.empty() || commit_blocks.back().count == kCommitsPerBlock) {
    commit_blocks.emplace_back();
    commit_blocks.back().first = c.epoch;
  }
  CommitBlock& b = commit_blocks.back();
  std::uint8_t* p = b.enc.Reserve(40 + 30 * txs.size());
  PutVar(p, c.epoch - (b.count == 0 ? 0 : b.last));
  const std::int64_t d = static_cast<std::int64_t>(c.unix_nanos - b.last_nanos);
  PutVar(p,
         d < 0 ? ((~static_cast<std::uint64_t>(d)) << 1) | 1 : static_cast<std::uint64_t>(d) << 1);
  PutVar(p, c.state_hash);
  PutVar(p, txs.size());
  for (const TxRec& t : txs) {
    PutVar(p, t.site);
    PutVar(p, t.thread);
    PutVar(p, t.sequence);
  }
  b.enc.Commit(p);
  b.last = c.epoch;
  b.last_nanos = c.unix_nanos;
  ++b.count;
  ++commit_count;
}

// Before extending a loaded index: every block into memory, checked, and each page's encoder state
// (its last epoch and position) recovered.
Status LogIndex::Impl::LoadEncoded() {
  for (CommitBlock& b : commit_blocks) {
    if (!b.enc.empty() || b.count == 0) continue;
    MMSB_RETURN_IF_ERROR(ReadBlock(b.at, &block_scratch));
    b.enc.Assign(block_scratch);
  }
  for (PageChanges& c : changes) {
    if (!c.enc.empty() || c.count == 0) continue;
    MMSB_RETURN_IF_ERROR(ReadBlock(c.at, &block_scratch));
    c.enc.Assign(block_scratch);
    c.decoded = false;
    c.list.clear();
  }
  commit_cache.clear();
  index_file.reset();
  return Status::Ok();
}

Expected<const RandomAccessFile*> LogIndex::Impl::File(std::size_t seg) const {
  if (seg >= segments.size()) return Corruption("index names a segment the log does not have");
  if (!files[seg]) {
    // Positioned reads, not a mapping: a query reads a few records here and there, and mapping
    // (with its page-table set-up) would cost more than the reads.
    auto f = env->NewRandomAccessFile(segments[seg].path);
    if (!f.ok()) return f.status();
    files[seg] = std::move(*f);
  }
  return files[seg].get();
}

Status LogIndex::Impl::ReadDelta(const IndexedChange& c, std::vector<std::uint8_t>* scratch,
                                 DeltaView* v) const {
  const std::size_t seg = c.where >> 40;
  const std::uint64_t off = c.where & ((std::uint64_t{1} << 40) - 1);
  auto f = File(seg);
  if (!f.ok()) return f.status();
  const RandomAccessFile* file = *f;
  auto where = [&] { return fmt::format("{}:{}", segments[seg].path, off); };
  // One read for the header and (nearly always) the whole payload; a second for a longer one.
  constexpr std::size_t kFirstRead = 512;
  scratch->resize(kFirstRead);
  std::size_t got = 0;
  MMSB_RETURN_IF_ERROR(file->Read(off, kFirstRead, scratch->data(), &got));
  if (got < log::kRecordHeaderSize) return Corruption(where() + ": past the end");
  log::RecordHeader rh;
  if (!log::ParseRecordHeader(scratch->data(), log_id, &rh) ||
      rh.type != static_cast<std::uint8_t>(LogRecordType::kDelta)) {
    return Corruption(where() + ": the index points at no delta record (rebuild it)");
  }
  const std::size_t total = log::kRecordHeaderSize + std::size_t{rh.length};
  if (total > got) {
    if (got < kFirstRead) return Corruption(where() + ": past the end");
    scratch->resize(total);
    std::size_t more = 0;
    MMSB_RETURN_IF_ERROR(file->Read(off + got, total - got, scratch->data() + got, &more));
    if (more != total - got) return Corruption(where() + ": past the end");
  }
  const std::span<const std::uint8_t> payload(scratch->data() + log::kRecordHeaderSize, rh.length);
  if (!log::PayloadMatches(rh, payload)) return Corruption(where() + ": delta checksum mismatch");
  Status s = delta_internal::ParseDeltaView(payload, 0xFFFFFFFFu, false, v);
  if (!s.ok()) return Corruption(where() + ": " + s.message());
  return Status::Ok();
}

// ---- building -------------------------------------------------------------------------------

// One record of a group waiting for its commit.
struct Pending {
  std::uint8_t type = 0;
  LogPageCreate create;
  PageId page = kInvalidPageId;  // free
  std::shared_ptr<const TypeDescriptor> type_desc;
  LogEdgeChange edge;
  LogSite site;
  LogCommitInfo info;
  LogBuild build;
  LogRunStart run_start;
};

struct PendingDelta {
  PageId page = kInvalidPageId;
  std::uint64_t mask = 0;
  std::uint64_t where = 0;
};

Status LogIndex::Impl::Scan(std::size_t first_seg, std::uint64_t skip_below) {
  // Deltas, nearly all of a log's records, wait in a light list of their own; the group's other
  // records are applied first (creations before the deltas that need them; a free does not
  // remove a page from the index, so the order among them does not matter).
  std::vector<Pending> group;
  std::vector<PendingDelta> deltas;
  std::vector<ByteRun> runs;
  for (std::size_t si = first_seg; si < segments.size(); ++si) {
    SegmentRec& seg = segments[si];
    const bool last = si + 1 == segments.size();
    // Read front to back, so mapped (the last segment may still be cut by a writer's recovery:
    // not mapped); dropped once read.
    auto fe = last ? env->NewRandomAccessFile(seg.path) : env->NewMappedFile(seg.path);
    if (!fe.ok()) return fe.status();
    log::RecordReader rr(fe->get(), seg.path);
    log::FileHeader fh;
    Status hs = rr.ReadHeader(&fh);
    if (!hs.ok()) {
      if (last && rr.file_size() <= log::kFileHeaderSize) break;  // a header never completed
      return hs;
    }
    if (fh.log_id != log_id) {
      return Corruption(fmt::format("{}: belongs to another log (log id differs)", seg.path));
    }
    seg.base_epoch = fh.base_epoch;
    if (seg.end == 0) seg.end = rr.position();
    const std::uint64_t resume = si == first_seg ? skip_below : 0;
    group.clear();
    deltas.clear();
    for (;;) {
      log::RecordReader::Record rec;
      log::RecordReader::Damage dmg;
      Status io;
      auto res = rr.Next(&rec, &dmg, &io);
      if (res == log::RecordReader::Result::kEnd) break;
      if (res == log::RecordReader::Result::kError) return io;
      if (res == log::RecordReader::Result::kDamage) {
        if (dmg.torn_tail && last) break;
        return Corruption(fmt::format(
            "{}:{}: {} bytes are not a valid record; the index needs an undamaged log (mmsb log "
            "verify {} says more)",
            seg.path, dmg.offset, dmg.length, dir));
      }
      if (rec.offset < resume) continue;
      const std::uint8_t t = rec.type;
      auto bad = [&](const Status& s) {
        return Corruption(fmt::format("{}:{}: {}", seg.path, rec.offset, s.message()));
      };
      if (t == static_cast<std::uint8_t>(LogRecordType::kEvent) ||
          t == static_cast<std::uint8_t>(LogRecordType::kCheckpointMarker)) {
        continue;  // not part of any group's count
      }
      if (t == static_cast<std::uint8_t>(LogRecordType::kCommit)) {
        LogCommit c;
        if (Status s = log::DecodeCommit(rec.payload, &c); !s.ok()) return bad(s);
        if (c.record_count != group.size() + deltas.size()) {
          return Corruption(fmt::format(
              "{}:{}: commit of epoch {} counts {} records, the log holds {}; the index needs an "
              "undamaged log",
              seg.path, rec.offset, c.epoch, c.record_count, group.size() + deltas.size()));
        }
        if (c.epoch <= last_epoch) {
          if (c.epoch <= base_skip_through) {  // covered by the base checkpoint
            group.clear();
            deltas.clear();
            continue;
          }
          return Corruption(fmt::format("{}:{}: commit epoch {} does not follow epoch {}", seg.path,
                                        rec.offset, c.epoch, last_epoch));
        }
        MMSB_RETURN_IF_ERROR(ApplyGroup(group, deltas, c));
        group.clear();
        deltas.clear();
        seg.end = rec.offset + log::kRecordHeaderSize + rec.payload.size();
        continue;
      }
      if (t == static_cast<std::uint8_t>(LogRecordType::kDelta)) {
        DeltaView v;
        Status s = delta_internal::ParseDeltaView(rec.payload, 0xFFFFFFFFu, false, &v);
        if (!s.ok()) return bad(s);
        runs.clear();
        delta_internal::AppendDeltaViewRuns(v, &runs);
        PendingDelta& d = deltas.emplace_back();
        d.page = v.page;
        d.mask = 0;
        const unsigned shift = LogIndex::BucketShift(v.page_size);
        for (const ByteRun& r : runs) {
          const std::uint64_t lo = r.offset >> shift;
          const std::uint64_t hi = (std::uint64_t{r.offset} + r.length - 1) >> shift;
          d.mask |= (hi >= 63 ? ~std::uint64_t{0} : ((std::uint64_t{2} << hi) - 1)) &
                    ~((std::uint64_t{1} << lo) - 1);
        }
        d.where = (std::uint64_t{si} << 40) | rec.offset;
        continue;
      }
      Pending& p = group.emplace_back();
      p.type = t;
      switch (static_cast<LogRecordType>(t)) {
        case LogRecordType::kPageCreate:
          if (Status s = log::DecodePageCreate(rec.payload, &p.create); !s.ok()) return bad(s);
          break;
        case LogRecordType::kPageFree:
          if (Status s = log::DecodePageFree(rec.payload, &p.page); !s.ok()) return bad(s);
          break;
        case LogRecordType::kTypeDescriptor: {
          auto td = std::make_shared<TypeDescriptor>();
          if (Status s = log::DecodeTypeDescriptor(rec.payload, td.get()); !s.ok()) return bad(s);
          p.type_desc = std::move(td);
          break;
        }
        case LogRecordType::kGraphEdge:
          if (Status s = log::DecodeEdgeChange(rec.payload, &p.edge); !s.ok()) return bad(s);
          break;
        case LogRecordType::kRunStart:
          if (Status s = log::DecodeRunStart(rec.payload, &p.run_start); !s.ok()) return bad(s);
          break;
        case LogRecordType::kSite:
          if (Status s = log::DecodeSite(rec.payload, &p.site); !s.ok()) return bad(s);
          break;
        case LogRecordType::kCommitInfo:
          if (Status s = log::DecodeCommitInfo(rec.payload, &p.info); !s.ok()) return bad(s);
          break;
        case LogRecordType::kBuild:
          if (Status s = log::DecodeBuild(rec.payload, &p.build); !s.ok()) return bad(s);
          break;
        default:  // recompute, and types this build does not know: counted, nothing to index
          break;
      }
    }
    if (!last && (!group.empty() || !deltas.empty())) {
      return Corruption(fmt::format("{}: ends inside an epoch's group", seg.path));
    }
  }
  return Status::Ok();
}

Status LogIndex::Impl::ApplyGroup(std::vector<Pending>& group,
                                  const std::vector<PendingDelta>& deltas, const LogCommit& c) {
  const Epoch e = c.epoch;
  CommitRec cr;
  cr.epoch = e;
  cr.unix_nanos = c.unix_nanos;
  group_txs.clear();
  for (Pending& p : group) {
    switch (static_cast<LogRecordType>(p.type)) {
      case LogRecordType::kRunStart:
        run_sites.clear();
        builds.push_back({e - 1, {}, {}});
        break;
      case LogRecordType::kBuild:
        if (!builds.empty()) {
          builds.back().build_id = p.build.build_id;
          builds.back().executable = p.build.executable;
        }
        break;
      case LogRecordType::kSite: {
        TransactionSite s;
        s.kind = p.site.kind == LogSite::Kind::kCommitCall ? TransactionSite::Kind::kCommitCall
                                                           : TransactionSite::Kind::kTransaction;
        s.function = p.site.function;
        s.file = p.site.file;
        s.line = p.site.line;
        sites.push_back(std::move(s));
        run_sites[p.site.id] = static_cast<std::uint32_t>(sites.size());  // global, 1-based
        break;
      }
      case LogRecordType::kCommitInfo:
        cr.state_hash = p.info.state_hash;
        for (const LogCommitTransaction& t : p.info.transactions) {
          auto it = run_sites.find(t.site);
          group_txs.push_back({it == run_sites.end() ? 0u : it->second, t.thread, t.sequence});
        }
        break;
      case LogRecordType::kTypeDescriptor:
        types[p.type_desc->name] = p.type_desc;
        break;
      case LogRecordType::kPageCreate: {
        if (PageIndex(p.create.id) != ~std::size_t{0}) {
          return Corruption(fmt::format("epoch {}: page {} is created twice", e, p.create.id));
        }
        IndexedPage pg;
        pg.id = p.create.id;
        pg.name = p.create.name;
        pg.type_name = p.create.type_name;
        pg.size = p.create.size;
        pg.created = e;
        if (auto it = types.find(pg.type_name); it != types.end()) pg.type = it->second;
        AddPage(std::move(pg));
        break;
      }
      case LogRecordType::kPageFree:
        if (const std::size_t i = PageIndex(p.page); i != ~std::size_t{0}) pages[i].freed = e;
        break;
      case LogRecordType::kGraphEdge:
        edges.push_back({e, p.edge});
        break;
      case LogRecordType::kRecompute:
        // Children recomputed on replay change without deltas: flag every child of a
        // recompute-on-replay edge live now, so queries on them refuse instead of answering wrong.
        for (const EdgeInfo& ed : EdgesAt(e)) {
          if (ed.policy != DerivedPolicy::kRecomputeOnReplay) continue;
          if (const std::size_t ci = PageIndex(ed.child); ci != ~std::size_t{0}) {
            pages[ci].recomputed_on_replay = true;
          }
        }
        break;
      default:
        break;
    }
  }
  for (const PendingDelta& d : deltas) {
    const std::size_t i = PageIndex(d.page);
    if (i == ~std::size_t{0}) {
      return Corruption(
          fmt::format("epoch {}: delta for page {}, which does not exist", e, d.page));
    }
    // Appended in the file's encoding: epoch and position as deltas from the page's previous
    // change, the mask as its lowest bucket and the bits from there.
    PageChanges& pc = changes[i];
    std::uint8_t* p = pc.enc.Reserve(40);
    PutVar(p, e - pc.last_epoch);
    const unsigned lo = d.mask == 0 ? 64 : static_cast<unsigned>(std::countr_zero(d.mask));
    PutVar(p, lo);
    if (lo < 64) PutVar(p, d.mask >> lo);
    PutVar(p, d.where - pc.last_where);
    pc.enc.Commit(p);
    pc.last_epoch = e;
    pc.last_where = d.where;
    ++pc.count;
    pc.decoded = false;
  }
  AppendCommit(cr, group_txs);
  last_epoch = e;
  return Status::Ok();
}

std::vector<EdgeInfo> LogIndex::Impl::EdgesAt(Epoch epoch) const {
  std::map<std::pair<PageId, PageId>, EdgeInfo> live;
  for (const auto& [e, ch] : edges) {
    if (e > epoch) break;
    if (ch.op == EdgeOp::kAdd) {
      live[{ch.edge.child, ch.edge.parent}] = ch.edge;
    } else {
      live.erase({ch.edge.child, ch.edge.parent});
    }
  }
  std::vector<EdgeInfo> out;
  for (auto& [k, v] : live) out.push_back(v);
  return out;
}

// ---- the index file -----------------------------------------------------------------------------

Status LogIndex::Impl::Save(const std::string& path) const {
  std::vector<std::uint8_t> meta;
  VarWriter m(meta);
  m.V(first_epoch);
  m.V(last_epoch);
  m.V(base_skip_through);
  m.S(base_checkpoint);
  m.V(segments.size());
  for (const SegmentRec& s : segments) {
    m.V(s.seq);
    m.V(s.end);
    m.V(s.tail_hash);
    m.V(s.base_epoch);
  }
  // Types: every descriptor a page uses, plus the latest of each name.
  std::vector<std::shared_ptr<const TypeDescriptor>> tlist;
  std::unordered_map<const TypeDescriptor*, std::size_t> tidx;
  auto add_type = [&](const std::shared_ptr<const TypeDescriptor>& t) -> std::size_t {
    if (!t) return 0;
    auto [it, fresh] = tidx.emplace(t.get(), tlist.size() + 1);
    if (fresh) tlist.push_back(t);
    return it->second;
  };
  for (const auto& [n, t] : types) add_type(t);
  std::vector<std::size_t> page_types;
  for (const IndexedPage& p : pages) page_types.push_back(add_type(p.type));
  m.V(tlist.size());
  std::vector<std::uint8_t> tb;
  for (const auto& t : tlist) {
    tb.clear();
    log::EncodeTypeDescriptor(*t, tb);
    m.B(tb);
  }
  m.V(types.size());
  for (const auto& [n, t] : types) m.V(tidx.at(t.get()));
  m.V(pages.size());
  for (std::size_t i = 0; i < pages.size(); ++i) {
    const IndexedPage& p = pages[i];
    m.V(p.id);
    m.S(p.name);
    m.S(p.type_name);
    m.V(p.size);
    m.V(p.created);
    m.V(p.freed);
    m.V(p.recomputed_on_replay ? 1 : 0);
    m.V(page_types[i]);
  }
  m.V(edges.size());
  std::vector<std::uint8_t> eb;
  for (const auto& [e, ch] : edges) {
    m.V(e);
    eb.clear();
    log::EncodeEdgeChange(ch, eb);
    m.B(eb);
  }
  m.V(sites.size());
  for (const TransactionSite& s : sites) {
    m.V(static_cast<std::uint64_t>(s.kind));
    m.S(s.function);
    m.S(s.file);
    m.V(s.line);
  }
  m.V(run_sites.size());
  for (const auto& [local, global] : run_sites) {
    m.V(local);
    m.V(global);
  }
  m.V(builds.size());
  for (const BuildInfo& b : builds) {
    m.V(b.epoch_base);
    m.S(b.build_id);
    m.S(b.executable);
  }
  // The directories. Every block is in memory here (built, extended, or taken over from a
  // rebuild): Save runs only after one of those.
  m.V(commit_blocks.size());
  for (const CommitBlock& b : commit_blocks) {
    m.V(b.count);
    m.V(b.first);
    m.V(b.last);
    m.V(b.last_nanos);
    m.V(b.enc.size());
    m.V(XXH3_64bits(b.enc.data(), b.enc.size()));
  }
  for (const PageChanges& c : changes) {
    m.V(c.count);
    m.V(c.last_epoch);
    m.V(c.last_where);
    m.V(c.enc.size());
    m.V(XXH3_64bits(c.enc.data(), c.enc.size()));
  }
  std::uint64_t total = kIndexHeader + meta.size();
  for (const CommitBlock& b : commit_blocks) total += b.enc.size();
  for (const PageChanges& c : changes) total += c.enc.size();

  std::uint8_t header[kIndexHeader];
  std::memcpy(header, kIndexMagic, 8);
  log::Put32(header + 8, kIndexVersion);
  log::Put32(header + 12, 0);
  log::Put64(header + 16, log_id);
  log::Put64(header + 24, meta.size());
  log::Put64(header + 32, XXH3_64bits(meta.data(), meta.size()));
  log::Put64(header + 40, total);
  log::Put64(header + 48, XXH3_64bits(header, 48));

  // A cache: write to a temporary name, then rename, so a reader never sees half a file.
  const std::string tmp = path + ".tmp";
  auto f = env->NewWritableFile(tmp);
  if (!f.ok()) return f.status();
  Status s = (*f)->Append({header, kIndexHeader});
  if (s.ok()) s = (*f)->Append(meta);
  for (const CommitBlock& b : commit_blocks) {
    if (s.ok() && !b.enc.empty()) s = (*f)->Append(b.enc);
  }
  for (const PageChanges& c : changes) {
    if (s.ok() && !c.enc.empty()) s = (*f)->Append(c.enc);
  }
  if (Status cs = (*f)->Close(); s.ok()) s = cs;
  if (s.ok()) s = env->RenameFile(tmp, path);
  if (!s.ok()) (void)env->RemoveFile(tmp);
  return s;
}

// Reads the header and the meta; the blocks stay in the file until a query needs them.
bool LogIndex::Impl::Load(std::unique_ptr<RandomAccessFile> file) {
  std::uint8_t header[kIndexHeader];
  std::size_t got = 0;
  if (!file->Read(0, kIndexHeader, header, &got).ok() || got != kIndexHeader) return false;
  if (std::memcmp(header, kIndexMagic, 8) != 0) return false;
  if (log::Get32(header + 8) != kIndexVersion) return false;
  if (XXH3_64bits(header, 48) != log::Get64(header + 48)) return false;
  const std::uint64_t ms = log::Get64(header + 24), total = log::Get64(header + 40);
  if (total != file->Size() || ms > total - kIndexHeader) return false;
  log_id = log::Get64(header + 16);
  std::vector<std::uint8_t> meta(ms);
  if (!file->Read(kIndexHeader, ms, meta.data(), &got).ok() || got != ms) return false;
  if (XXH3_64bits(meta.data(), meta.size()) != log::Get64(header + 32)) return false;
  VarReader m(meta);
  first_epoch = m.V();
  last_epoch = m.V();
  base_skip_through = m.V();
  base_checkpoint = m.S();
  const std::uint64_t nseg = m.V();
  if (!m.ok() || nseg > ms) return false;
  segments.clear();
  for (std::uint64_t i = 0; i < nseg && m.ok(); ++i) {
    SegmentRec s;
    s.seq = m.V();
    s.end = m.V();
    s.tail_hash = m.V();
    s.base_epoch = m.V();
    segments.push_back(s);
  }
  const std::uint64_t ntypes = m.V();
  if (!m.ok() || ntypes > ms) return false;
  std::vector<std::shared_ptr<const TypeDescriptor>> tlist;
  for (std::uint64_t i = 0; i < ntypes && m.ok(); ++i) {
    auto td = std::make_shared<TypeDescriptor>();
    if (!log::DecodeTypeDescriptor(m.B(), td.get()).ok()) return false;
    tlist.push_back(std::move(td));
  }
  auto type_at = [&](std::uint64_t k) -> std::shared_ptr<const TypeDescriptor> {
    return k == 0 || k > tlist.size() ? nullptr : tlist[k - 1];
  };
  const std::uint64_t nnamed = m.V();
  if (!m.ok() || nnamed > ms) return false;
  types.clear();
  for (std::uint64_t i = 0; i < nnamed && m.ok(); ++i) {
    auto t = type_at(m.V());
    if (!t) return false;
    types[t->name] = t;
  }
  const std::uint64_t npages = m.V();
  if (!m.ok() || npages > ms) return false;
  pages.clear();
  changes.clear();
  by_id.clear();
  dense.clear();
  for (std::uint64_t i = 0; i < npages && m.ok(); ++i) {
    IndexedPage p;
    p.id = m.V();
    p.name = m.S();
    p.type_name = m.S();
    p.size = m.V();
    p.created = m.V();
    p.freed = m.V();
    p.recomputed_on_replay = m.V() != 0;
    p.type = type_at(m.V());
    if (PageIndex(p.id) != ~std::size_t{0}) return false;
    AddPage(std::move(p));
  }
  const std::uint64_t nedges = m.V();
  if (!m.ok() || nedges > ms) return false;
  edges.clear();
  for (std::uint64_t i = 0; i < nedges && m.ok(); ++i) {
    const Epoch e = m.V();
    LogEdgeChange ch;
    if (!log::DecodeEdgeChange(m.B(), &ch).ok()) return false;
    edges.push_back({e, ch});
  }
  const std::uint64_t nsites = m.V();
  if (!m.ok() || nsites > ms) return false;
  sites.clear();
  for (std::uint64_t i = 0; i < nsites && m.ok(); ++i) {
    TransactionSite s;
    s.kind = static_cast<TransactionSite::Kind>(std::min<std::uint64_t>(m.V(), 2));
    s.function = m.S();
    s.file = m.S();
    s.line = static_cast<std::uint32_t>(m.V());
    sites.push_back(std::move(s));
  }
  const std::uint64_t nrun = m.V();
  if (!m.ok() || nrun > ms) return false;
  run_sites.clear();
  for (std::uint64_t i = 0; i < nrun && m.ok(); ++i) {
    const auto local = static_cast<std::uint32_t>(m.V());
    run_sites[local] = static_cast<std::uint32_t>(m.V());
  }
  const std::uint64_t nbuilds = m.V();
  if (!m.ok() || nbuilds > ms) return false;
  builds.clear();
  for (std::uint64_t i = 0; i < nbuilds && m.ok(); ++i) {
    BuildInfo b;
    b.epoch_base = m.V();
    b.build_id = m.S();
    b.executable = m.S();
    builds.push_back(std::move(b));
  }
  // Block directories; the blocks follow the meta back to back and must end the file exactly.
  std::uint64_t at = kIndexHeader + ms;
  auto block = [&](BlockRef* r) {
    r->size = m.V();
    r->hash = m.V();
    r->offset = at;
    if (r->size > total - at) return false;
    at += r->size;
    return true;
  };
  const std::uint64_t nblocks = m.V();
  if (!m.ok() || nblocks > ms) return false;
  commit_blocks.clear();
  commit_blocks.resize(nblocks);
  commit_count = 0;
  Epoch prev = 0;
  for (CommitBlock& b : commit_blocks) {
    b.count = static_cast<std::uint32_t>(m.V());
    b.first = m.V();
    b.last = m.V();
    b.last_nanos = m.V();
    if (!m.ok() || !block(&b.at) || b.count == 0 || b.count > kCommitsPerBlock ||
        b.first > b.last || b.first <= prev) {
      return false;
    }
    prev = b.last;
    commit_count += b.count;
  }
  for (PageChanges& c : changes) {
    c.count = m.V();
    c.last_epoch = m.V();
    c.last_where = m.V();
    if (!m.ok() || !block(&c.at) || c.count > c.at.size) return false;
    c.decoded = false;
  }
  if (!m.ok() || !m.at_end() || at != total) return false;
  commit_cache.clear();
  index_file = std::move(file);
  return true;
}

// ---- Open -------------------------------------------------------------------------------------

Status LogIndex::Impl::BuildFresh(const log::LogDirListing& listing) {
  pages.clear();
  changes.clear();
  by_id.clear();
  dense.clear();
  types.clear();
  edges.clear();
  commit_blocks.clear();
  commit_cache.clear();
  commit_count = 0;
  sites.clear();
  run_sites.clear();
  builds.clear();
  index_file.reset();
  files.clear();
  files.resize(segments.size());
  first_epoch = 0;
  last_epoch = 0;
  base_skip_through = 0;
  base_checkpoint.clear();
  for (SegmentRec& s : segments) s.end = 0;
  if (segments.empty()) return Status::Ok();
  // The first segment's base: when earlier segments were retired, the oldest checkpoint at or
  // after it supplies the pages, and the index starts there.
  auto fe = env->NewRandomAccessFile(segments[0].path);
  if (!fe.ok()) return fe.status();
  log::RecordReader rr(fe->get(), segments[0].path);
  log::FileHeader fh;
  MMSB_RETURN_IF_ERROR(rr.ReadHeader(&fh));
  log_id = fh.log_id;
  // Where the log's history starts: the first segment's base (older segments retired), or just
  // before its first commit (a slice, whose first segment starts after its checkpoint).
  Epoch start = fh.base_epoch;
  for (;;) {
    log::RecordReader::Record rec;
    log::RecordReader::Damage dmg;
    Status io;
    if (rr.Next(&rec, &dmg, &io) != log::RecordReader::Result::kRecord) break;
    if (rec.type != static_cast<std::uint8_t>(LogRecordType::kCommit)) continue;
    LogCommit c;
    if (log::DecodeCommit(rec.payload, &c).ok()) start = std::max(start, c.epoch - 1);
    break;
  }
  if (start > 0) {
    const log::LogDirListing::Checkpoint* ck = nullptr;
    for (const auto& c : listing.checkpoints) {
      if (c.epoch >= start) {
        ck = &c;
        break;
      }
    }
    if (ck == nullptr) {
      return NotFound(fmt::format(
          "log '{}' starts after epoch {} (older segments were retired) and has no checkpoint "
          "to start the index from",
          dir, start));
    }
    CheckpointLoadOptions co;
    co.env = env;
    auto st = LoadCheckpoint(ck->path, co);
    if (!st.ok()) return st.status();
    base_checkpoint = ck->path;
    base_skip_through = ck->epoch;
    first_epoch = ck->epoch;
    last_epoch = ck->epoch;
    for (const auto& [n, t] : st->types) types[n] = t;
    for (const auto& [id, p] : st->pages) {
      IndexedPage pg;
      pg.id = id;
      pg.name = p.name;
      pg.type_name = p.type_name;
      pg.size = p.bytes.size();
      pg.created = 0;
      pg.type = p.type;
      AddPage(std::move(pg));
    }
    for (const EdgeInfo& e : st->edges) edges.push_back({ck->epoch, {EdgeOp::kAdd, e}});
  }
  return Scan(0, 0);
}

Status LogIndex::Impl::FinishSegments() {
  for (std::size_t i = 0; i < segments.size(); ++i) {
    auto f = File(i);
    if (!f.ok()) return f.status();
    auto h = TailHash(**f, segments[i].end);
    if (!h.ok()) return h.status();
    segments[i].tail_hash = *h;
  }
  log_bytes = 0;
  for (const SegmentRec& s : segments) log_bytes += s.end;
  return Status::Ok();
}

// Whether the loaded index still describes a prefix of the log; `*resume_seg` is the first
// segment to scan on.
bool LogIndex::Impl::Matches(const std::vector<SegmentRec>& now, std::size_t* resume_seg) {
  if (segments.size() > now.size()) return false;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (segments[i].seq != now[i].seq) return false;
    auto f = env->NewRandomAccessFile(now[i].path);
    if (!f.ok()) return false;
    if ((*f)->Size() < segments[i].end) return false;
    auto h = TailHash(**f, segments[i].end);
    if (!h.ok() || *h != segments[i].tail_hash) return false;
  }
  *resume_seg = segments.empty() ? 0 : segments.size() - 1;
  return true;
}

LogIndex::LogIndex(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LogIndex::~LogIndex() = default;

Expected<std::unique_ptr<LogIndex>> LogIndex::Open(const std::string& dir,
                                                   const IndexOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  impl->env = options.env ? options.env : Env::Default();
  impl->save = options.save;
  Env* env = impl->env;
  if (!env->IsDirectory(dir)) {
    return NotFound(fmt::format("'{}' is not a log directory (queries need the directory)", dir));
  }
  auto listing = log::ListLogDir(env, dir);
  if (!listing.ok()) return listing.status();
  // A directory with no segment, checkpoint or LOCK is not a log: refuse it rather than answer
  // as if it were an empty one (and before the index file is written into it).
  if (listing->segments.empty() && listing->checkpoints.empty() && !listing->has_lock) {
    return NotFound(fmt::format(
        "'{}' is a directory but not an MMSB log: no segment, checkpoint or LOCK file in it", dir));
  }
  std::vector<Impl::SegmentRec> now;
  for (const auto& s : listing->segments) now.push_back({s.seq, s.path, 0, 0, 0});
  for (std::size_t i = 1; i < now.size(); ++i) {
    if (now[i].seq != now[i - 1].seq + 1) {
      return Corruption(fmt::format("{}: segment {} is missing", dir, now[i - 1].seq + 1));
    }
  }
  const std::string path = options.index_path.empty() ? DefaultIndexPath(dir) : options.index_path;
  impl->index_path = path;
  bool loaded = false;
  std::size_t resume_seg = 0;
  if (env->FileExists(path)) {
    auto f = env->NewRandomAccessFile(path);
    if (!f.ok()) {
      impl->note = fmt::format("{}: {}; rebuilt it from the log", path, f.status().message());
    } else if (const std::uint64_t size = (*f)->Size(); !impl->Load(std::move(*f))) {
      impl->note = fmt::format("{}: damaged or of another version; rebuilt it from the log", path);
    } else if (!impl->Matches(now, &resume_seg)) {
      impl->note = fmt::format("{}: the log's segments changed; rebuilt it from the log", path);
    } else {
      loaded = true;
      impl->index_bytes = size;
    }
  }
  Impl& x = *impl;
  if (loaded) {
    // Extend: the last indexed segment may have grown, and new segments may follow.
    bool grown = now.size() > x.segments.size();
    if (!grown && !x.segments.empty()) {
      auto sz = env->GetFileSize(now[resume_seg].path);
      grown = sz.ok() && *sz > x.segments[resume_seg].end;
    }
    if (!grown) {
      x.how = How::kLoaded;
      for (std::size_t i = 0; i < x.segments.size(); ++i) x.segments[i].path = now[i].path;
      x.files.clear();
      x.files.resize(x.segments.size());
      x.log_bytes = 0;
      for (const Impl::SegmentRec& s : x.segments) x.log_bytes += s.end;
      return std::unique_ptr<LogIndex>(new LogIndex(std::move(impl)));
    }
    Status s = x.LoadEncoded();
    if (s.ok()) {
      for (std::size_t i = x.segments.size(); i < now.size(); ++i) x.segments.push_back(now[i]);
      for (std::size_t i = 0; i < x.segments.size(); ++i) x.segments[i].path = now[i].path;
      x.files.clear();
      x.files.resize(x.segments.size());
      const std::uint64_t from = x.segments[resume_seg].end;
      s = x.Scan(resume_seg, from);
    } else {
      x.note = fmt::format("{}: {}; rebuilt it from the log", path, s.message());
    }
    if (s.ok()) {
      x.how = How::kExtended;
    } else {
      loaded = false;  // rebuild below, which reports the log's own error if there is one
    }
  }
  if (!loaded) {
    x.segments = now;
    MMSB_RETURN_IF_ERROR(x.BuildFresh(*listing));
    x.how = How::kBuilt;
  }
  MMSB_RETURN_IF_ERROR(x.FinishSegments());
  x.index_bytes = 0;
  if (options.save) {
    // A read-only log directory is not an error: the index then lives in memory only.
    if (x.Save(path).ok()) {
      auto sz = env->GetFileSize(path);
      if (sz.ok()) x.index_bytes = *sz;
    }
  }
  if (x.index_bytes == 0) {
    std::uint64_t n = 0;
    for (const auto& b : x.commit_blocks) n += b.enc.size();
    for (const auto& c : x.changes) n += c.enc.size();
    x.index_bytes = n;
  }
  return std::unique_ptr<LogIndex>(new LogIndex(std::move(impl)));
}

// ---- accessors ----------------------------------------------------------------------------------

const std::string& LogIndex::dir() const { return impl_->dir; }
Epoch LogIndex::first_epoch() const { return impl_->first_epoch; }
Epoch LogIndex::last_epoch() const { return impl_->last_epoch; }
std::uint64_t LogIndex::log_bytes() const { return impl_->log_bytes; }
std::uint64_t LogIndex::index_bytes() const { return impl_->index_bytes; }
LogIndex::How LogIndex::how() const { return impl_->how; }
const std::vector<IndexedPage>& LogIndex::pages() const { return impl_->pages; }
const IndexedPage* LogIndex::FindPage(PageId id) const { return impl_->Page(id); }

std::shared_ptr<const TypeDescriptor> LogIndex::FindType(std::string_view name) const {
  auto it = impl_->types.find(name);
  return it == impl_->types.end() ? nullptr : it->second;
}

std::span<const IndexedChange> LogIndex::ChangesOf(PageId id) const {
  const std::size_t i = impl_->PageIndex(id);
  if (i == ~std::size_t{0}) return {};
  return impl_->Changes(i);
}

const std::string& LogIndex::note() const { return impl_->note; }
Status LogIndex::damage() const { return impl_->damage; }

unsigned LogIndex::BucketShift(std::uint64_t size) {
  unsigned shift = 0;
  while (size > 1 && ((size - 1) >> shift) >= 64) ++shift;
  return shift;
}

std::uint64_t LogIndex::BucketMask(std::uint64_t size, std::uint64_t offset, std::uint64_t length) {
  if (length == 0) return 0;
  const unsigned shift = BucketShift(size);
  const std::uint64_t lo = offset >> shift, hi = (offset + length - 1) >> shift;
  if (lo >= 64) return 0;
  const std::uint64_t top = hi >= 63 ? ~std::uint64_t{0} : ((std::uint64_t{2} << hi) - 1);
  return top & ~((std::uint64_t{1} << lo) - 1);
}

Expected<CommitInfo> LogIndex::Commit(Epoch epoch) const {
  const auto& blocks = impl_->commit_blocks;
  auto bit = std::upper_bound(blocks.begin(), blocks.end(), epoch,
                              [](Epoch e, const Impl::CommitBlock& b) { return e < b.first; });
  const Impl::DecodedCommits* d = nullptr;
  if (bit != blocks.begin() && epoch <= impl_->last_epoch) {
    d = impl_->CommitsOf(static_cast<std::size_t>(bit - blocks.begin() - 1));
  }
  if (d != nullptr) {
    const auto& cs = d->commits;
    auto it = std::lower_bound(cs.begin(), cs.end(), epoch,
                               [](const Impl::CommitRec& c, Epoch e) { return c.epoch < e; });
    if (it != cs.end() && it->epoch == epoch) {
      CommitInfo ci;
      ci.epoch = it->epoch;
      ci.unix_nanos = it->unix_nanos;
      for (std::uint32_t k = 0; k < it->tx_count; ++k) {
        const Impl::TxRec& t = d->txs[it->tx_begin + k];
        TransactionRef r;
        if (t.site > 0 && t.site <= impl_->sites.size()) r.site = impl_->sites[t.site - 1];
        r.thread = t.thread;
        r.sequence = t.sequence;
        ci.transactions.push_back(std::move(r));
      }
      return ci;
    }
  }
  if (!impl_->damage.ok()) return impl_->damage;
  return NotFound(fmt::format("epoch {} is not committed in log '{}'", epoch, impl_->dir));
}

std::vector<EdgeInfo> LogIndex::EdgesAt(Epoch epoch) const { return impl_->EdgesAt(epoch); }

BuildInfo LogIndex::BuildAt(Epoch epoch) const {
  BuildInfo out;
  for (const BuildInfo& b : impl_->builds) {
    if (b.epoch_base < epoch) out = b;
  }
  return out;
}

Status LogIndex::ApplyChange(const IndexedChange& change, std::span<std::uint8_t> page_bytes,
                             std::vector<ByteRun>* runs) const {
  DeltaView v;
  MMSB_RETURN_IF_ERROR(impl_->ReadDelta(change, &impl_->scratch, &v));
  if (v.page_size != page_bytes.size()) {
    return Corruption(fmt::format("delta of page {} says {} bytes, the page has {}", v.page,
                                  v.page_size, page_bytes.size()));
  }
  delta_internal::ApplyDeltaView(v, page_bytes.data());
  if (runs != nullptr) {
    runs->clear();
    delta_internal::AppendDeltaViewRuns(v, runs);
  }
  return Status::Ok();
}

Status LogIndex::BaseImage(PageId id, std::span<std::uint8_t> out) const {
  std::fill(out.begin(), out.end(), 0);
  const IndexedPage* p = FindPage(id);
  if (p == nullptr || p->created != 0 || impl_->base_checkpoint.empty()) return Status::Ok();
  if (!impl_->base_state) {
    CheckpointLoadOptions co;
    co.env = impl_->env;
    auto st = LoadCheckpoint(impl_->base_checkpoint, co);
    if (!st.ok()) return st.status();
    impl_->base_state = std::make_unique<LogState>(std::move(*st));
  }
  const ReplayedPage* rp = impl_->base_state->FindPage(id);
  if (rp == nullptr || rp->bytes.size() != out.size()) {
    return Corruption(fmt::format("checkpoint '{}' does not hold page {} as indexed",
                                  impl_->base_checkpoint, id));
  }
  std::copy(rp->bytes.begin(), rp->bytes.end(), out.begin());
  return Status::Ok();
}

std::string TransactionSite::ToString() const {
  if (kind == Kind::kUnknown) return "(unknown)";
  std::string s = function.empty() ? std::string("(unnamed)") : function;
  if (kind == Kind::kCommitCall) s = "mmsb::commit() in " + s;
  if (!file.empty()) s += fmt::format(" at {}:{}", file, line);
  return s;
}

}  // namespace mmsb::query
