// LogIndex: the field-change index kept beside the log segments (see mmsb/query.h and
// docs/Debugging.md, "The index").
//
// Build: one pass over the segments' framed records (no replay, no page state): page-creates,
// frees, types, edges, provenance and, per delta record, its page, epoch, the 1/64ths of the page
// it wrote and its file position. Records are held per group and indexed only when the group's
// commit record is valid and counts them, as replay applies only complete groups.
//
// The file (`query.idx`): magic "MMSBQIDX", u32 version, u32 0, u64 log id, u64 meta_size,
// u64 commits_size, u64 changes_size, then the three varint-encoded areas and an XXH3-64 of
// everything before it. The meta area says which segments (sequence number, indexed end, XXH3 of
// the 32 bytes before that end) the index covers; Open trusts the file only when every one of
// them is still there, unchanged up to its end, in the same order. Changes and commits are
// decoded lazily, page by page, so a warm query touches only what it asks about.
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
constexpr std::uint32_t kIndexVersion = 1;
constexpr std::size_t kIndexHeader = 48;
constexpr std::uint64_t kTailBytes = 32;

class VarWriter {
 public:
  explicit VarWriter(std::vector<std::uint8_t>& out) : out_(out) {}
  void V(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<std::uint8_t>(v | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<std::uint8_t>(v));
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

Expected<std::vector<std::uint8_t>> ReadWhole(Env* env, const std::string& path) {
  auto f = env->NewRandomAccessFile(path);
  if (!f.ok()) return f.status();
  std::vector<std::uint8_t> buf((*f)->Size());
  std::size_t got = 0;
  MMSB_RETURN_IF_ERROR((*f)->Read(0, buf.size(), buf.data(), &got));
  buf.resize(got);
  return buf;
}

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

const IndexedPage* LogIndex::Impl::Page(PageId id) const {
  auto it = by_id.find(id);
  return it == by_id.end() ? nullptr : &pages[it->second];
}

std::span<const IndexedChange> LogIndex::Impl::Changes(std::size_t i) const {
  PageChanges& c = changes[i];
  if (!c.decoded) {
    VarReader r(c.encoded);
    const std::uint64_t n = r.V();
    c.list.clear();
    c.list.reserve(n);
    Epoch epoch = 0;
    std::uint64_t where = 0;
    for (std::uint64_t k = 0; k < n && r.ok(); ++k) {
      IndexedChange ch;
      epoch += r.V();
      const std::uint64_t lo = r.V();
      ch.mask = lo < 64 ? r.V() << lo : 0;
      where += r.V();
      ch.epoch = epoch;
      ch.where = where;
      c.list.push_back(ch);
    }
    c.decoded = true;
    c.encoded = {};
  }
  return c.list;
}

void LogIndex::Impl::DecodeCommits() const {
  if (commits_decoded) return;
  VarReader r(commits_encoded);
  const std::uint64_t n = r.V();
  commits.reserve(n);
  Epoch epoch = 0;
  std::uint64_t nanos = 0;
  for (std::uint64_t k = 0; k < n && r.ok(); ++k) {
    CommitRec c;
    epoch += r.V();
    const std::uint64_t zz = r.V();
    nanos += (zz & 1) ? ~(zz >> 1) : (zz >> 1);
    c.epoch = epoch;
    c.unix_nanos = nanos;
    c.state_hash = r.V();
    c.tx_begin = static_cast<std::uint32_t>(txs.size());
    const std::uint64_t nt = r.V();
    for (std::uint64_t t = 0; t < nt && r.ok(); ++t) {
      TxRec x;
      x.site = static_cast<std::uint32_t>(r.V());
      x.thread = static_cast<std::uint32_t>(r.V());
      x.sequence = r.V();
      txs.push_back(x);
    }
    c.tx_count = static_cast<std::uint32_t>(txs.size() - c.tx_begin);
    commits.push_back(c);
  }
  commits_decoded = true;
  commits_encoded = {};
}

void LogIndex::Impl::DecodeAll() {
  DecodeCommits();
  for (std::size_t i = 0; i < changes.size(); ++i) Changes(i);
}

Expected<const RandomAccessFile*> LogIndex::Impl::File(std::size_t seg) const {
  if (seg >= segments.size()) return Corruption("index names a segment the log does not have");
  if (!files[seg]) {
    // The last segment may still be cut by a writer's recovery: not mapped.
    auto f = seg + 1 == segments.size() ? env->NewRandomAccessFile(segments[seg].path)
                                        : env->NewMappedFile(segments[seg].path);
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
  std::uint8_t hdr[log::kRecordHeaderSize];
  const std::uint8_t* h = nullptr;
  auto map = file->Map();
  if (!map.empty()) {
    if (off + log::kRecordHeaderSize > map.size()) return Corruption(where() + ": past the end");
    h = map.data() + off;
  } else {
    std::size_t got = 0;
    MMSB_RETURN_IF_ERROR(file->Read(off, sizeof hdr, hdr, &got));
    if (got != sizeof hdr) return Corruption(where() + ": past the end");
    h = hdr;
  }
  log::RecordHeader rh;
  if (!log::ParseRecordHeader(h, log_id, &rh) ||
      rh.type != static_cast<std::uint8_t>(LogRecordType::kDelta)) {
    return Corruption(where() + ": the index points at no delta record (rebuild it)");
  }
  std::span<const std::uint8_t> payload;
  const std::uint64_t poff = off + log::kRecordHeaderSize;
  if (!map.empty()) {
    if (poff + rh.length > map.size()) return Corruption(where() + ": past the end");
    payload = map.subspan(poff, rh.length);
  } else {
    scratch->resize(rh.length);
    std::size_t got = 0;
    MMSB_RETURN_IF_ERROR(file->Read(poff, rh.length, scratch->data(), &got));
    if (got != rh.length) return Corruption(where() + ": past the end");
    payload = *scratch;
  }
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
    auto fe = File(si);
    if (!fe.ok()) return fe.status();
    log::RecordReader rr(*fe, seg.path);
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
  cr.tx_begin = static_cast<std::uint32_t>(txs.size());
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
          txs.push_back({it == run_sites.end() ? 0u : it->second, t.thread, t.sequence});
        }
        break;
      case LogRecordType::kTypeDescriptor:
        types[p.type_desc->name] = p.type_desc;
        break;
      case LogRecordType::kPageCreate: {
        if (by_id.count(p.create.id)) {
          return Corruption(fmt::format("epoch {}: page {} is created twice", e, p.create.id));
        }
        IndexedPage pg;
        pg.id = p.create.id;
        pg.name = p.create.name;
        pg.type_name = p.create.type_name;
        pg.size = p.create.size;
        pg.created = e;
        if (auto it = types.find(pg.type_name); it != types.end()) pg.type = it->second;
        by_id[pg.id] = pages.size();
        pages.push_back(std::move(pg));
        changes.emplace_back().decoded = true;
        break;
      }
      case LogRecordType::kPageFree:
        if (auto it = by_id.find(p.page); it != by_id.end()) pages[it->second].freed = e;
        break;
      case LogRecordType::kGraphEdge:
        edges.push_back({e, p.edge});
        break;
      case LogRecordType::kRecompute:
        // Children recomputed on replay change without deltas: flag every child of a
        // recompute-on-replay edge live now, so queries on them refuse instead of answering wrong.
        for (const EdgeInfo& ed : EdgesAt(e)) {
          if (ed.policy != DerivedPolicy::kRecomputeOnReplay) continue;
          if (auto ci = by_id.find(ed.child); ci != by_id.end()) {
            pages[ci->second].recomputed_on_replay = true;
          }
        }
        break;
      default:
        break;
    }
  }
  for (const PendingDelta& d : deltas) {
    auto it = by_id.find(d.page);
    if (it == by_id.end()) {
      return Corruption(
          fmt::format("epoch {}: delta for page {}, which does not exist", e, d.page));
    }
    changes[it->second].list.push_back({e, d.mask, d.where});
  }
  cr.tx_count = static_cast<std::uint32_t>(txs.size() - cr.tx_begin);
  commits.push_back(cr);
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

std::vector<std::uint8_t> LogIndex::Impl::Serialize() const {
  std::vector<std::uint8_t> meta, commits_area, changes_area;
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
  // Commits.
  {
    VarWriter w(commits_area);
    w.V(commits.size());
    Epoch pe = 0;
    std::uint64_t pn = 0;
    for (const CommitRec& c : commits) {
      w.V(c.epoch - pe);
      const std::int64_t d = static_cast<std::int64_t>(c.unix_nanos - pn);
      w.V(d < 0 ? ((~static_cast<std::uint64_t>(d)) << 1) | 1 : static_cast<std::uint64_t>(d) << 1);
      w.V(c.state_hash);
      w.V(c.tx_count);
      for (std::uint32_t k = 0; k < c.tx_count; ++k) {
        const TxRec& t = txs[c.tx_begin + k];
        w.V(t.site);
        w.V(t.thread);
        w.V(t.sequence);
      }
      pe = c.epoch;
      pn = c.unix_nanos;
    }
  }
  // Changes, one block per page; the meta area gets each block's size.
  std::vector<std::uint64_t> block_sizes;
  for (std::size_t i = 0; i < pages.size(); ++i) {
    const std::size_t before = changes_area.size();
    VarWriter w(changes_area);
    const auto& list = changes[i].list;
    w.V(list.size());
    Epoch pe = 0;
    std::uint64_t pw = 0;
    for (const IndexedChange& c : list) {
      w.V(c.epoch - pe);
      const unsigned lo = c.mask == 0 ? 64 : static_cast<unsigned>(std::countr_zero(c.mask));
      w.V(lo);
      if (lo < 64) w.V(c.mask >> lo);
      w.V(c.where - pw);
      pe = c.epoch;
      pw = c.where;
    }
    block_sizes.push_back(changes_area.size() - before);
  }
  for (std::uint64_t b : block_sizes) m.V(b);

  std::vector<std::uint8_t> out(kIndexHeader);
  std::memcpy(out.data(), kIndexMagic, 8);
  log::Put32(out.data() + 8, kIndexVersion);
  log::Put32(out.data() + 12, 0);
  log::Put64(out.data() + 16, log_id);
  log::Put64(out.data() + 24, meta.size());
  log::Put64(out.data() + 32, commits_area.size());
  log::Put64(out.data() + 40, changes_area.size());
  out.insert(out.end(), meta.begin(), meta.end());
  out.insert(out.end(), commits_area.begin(), commits_area.end());
  out.insert(out.end(), changes_area.begin(), changes_area.end());
  const std::uint64_t h = XXH3_64bits(out.data(), out.size());
  out.resize(out.size() + 8);
  log::Put64(out.data() + out.size() - 8, h);
  return out;
}

bool LogIndex::Impl::Deserialize(std::vector<std::uint8_t> bytes) {
  if (bytes.size() < kIndexHeader + 8) return false;
  if (std::memcmp(bytes.data(), kIndexMagic, 8) != 0) return false;
  if (log::Get32(bytes.data() + 8) != kIndexVersion) return false;
  const std::uint64_t h = log::Get64(bytes.data() + bytes.size() - 8);
  if (XXH3_64bits(bytes.data(), bytes.size() - 8) != h) return false;
  log_id = log::Get64(bytes.data() + 16);
  const std::uint64_t ms = log::Get64(bytes.data() + 24), cs = log::Get64(bytes.data() + 32),
                      xs = log::Get64(bytes.data() + 40);
  if (ms > bytes.size() || cs > bytes.size() || xs > bytes.size() ||
      kIndexHeader + ms + cs + xs + 8 != bytes.size()) {
    return false;
  }
  file_bytes = std::move(bytes);
  const std::span<const std::uint8_t> all(file_bytes);
  VarReader m(all.subspan(kIndexHeader, ms));
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
  by_id.clear();
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
    by_id[p.id] = pages.size();
    pages.push_back(std::move(p));
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
  changes.assign(pages.size(), {});
  std::uint64_t at = kIndexHeader + ms + cs;
  for (std::size_t i = 0; i < pages.size() && m.ok(); ++i) {
    const std::uint64_t n = m.V();
    if (n > kIndexHeader + ms + cs + xs - at) return false;
    changes[i].encoded = all.subspan(at, n);
    at += n;
  }
  if (!m.ok() || !m.at_end() || at != kIndexHeader + ms + cs + xs) return false;
  commits.clear();
  txs.clear();
  commits_encoded = all.subspan(kIndexHeader + ms, cs);
  commits_decoded = false;
  return true;
}

// ---- Open -------------------------------------------------------------------------------------

Status LogIndex::Impl::BuildFresh(const log::LogDirListing& listing) {
  pages.clear();
  changes.clear();
  by_id.clear();
  types.clear();
  edges.clear();
  commits.clear();
  txs.clear();
  sites.clear();
  run_sites.clear();
  builds.clear();
  commits_decoded = true;
  file_bytes.clear();
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
  auto fe = File(0);
  if (!fe.ok()) return fe.status();
  log::RecordReader rr(*fe, segments[0].path);
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
      by_id[id] = pages.size();
      pages.push_back(std::move(pg));
      changes.emplace_back().decoded = true;
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
  Env* env = impl->env;
  if (!env->IsDirectory(dir)) {
    return NotFound(fmt::format("'{}' is not a log directory (queries need the directory)", dir));
  }
  auto listing = log::ListLogDir(env, dir);
  if (!listing.ok()) return listing.status();
  std::vector<Impl::SegmentRec> now;
  for (const auto& s : listing->segments) now.push_back({s.seq, s.path, 0, 0, 0});
  for (std::size_t i = 1; i < now.size(); ++i) {
    if (now[i].seq != now[i - 1].seq + 1) {
      return Corruption(fmt::format("{}: segment {} is missing", dir, now[i - 1].seq + 1));
    }
  }
  const std::string path = options.index_path.empty() ? DefaultIndexPath(dir) : options.index_path;
  bool loaded = false;
  std::size_t resume_seg = 0;
  if (env->FileExists(path)) {
    auto bytes = ReadWhole(env, path);
    if (bytes.ok() && impl->Deserialize(std::move(*bytes)) && impl->Matches(now, &resume_seg)) {
      loaded = true;
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
    x.index_bytes = x.file_bytes.size();
    if (!grown) {
      x.how = How::kLoaded;
      for (std::size_t i = 0; i < x.segments.size(); ++i) x.segments[i].path = now[i].path;
      x.files.clear();
      x.files.resize(x.segments.size());
      x.log_bytes = 0;
      for (const Impl::SegmentRec& s : x.segments) x.log_bytes += s.end;
      return std::unique_ptr<LogIndex>(new LogIndex(std::move(impl)));
    }
    x.DecodeAll();
    x.file_bytes.clear();
    for (std::size_t i = x.segments.size(); i < now.size(); ++i) x.segments.push_back(now[i]);
    for (std::size_t i = 0; i < x.segments.size(); ++i) x.segments[i].path = now[i].path;
    x.files.clear();
    x.files.resize(x.segments.size());
    const std::uint64_t from = x.segments[resume_seg].end;
    Status s = x.Scan(resume_seg, from);
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
  const std::vector<std::uint8_t> bytes = x.Serialize();
  x.index_bytes = bytes.size();
  if (options.save) {
    // A cache: write to a temporary name, then rename, so a reader never sees half a file.
    const std::string tmp = path + ".tmp";
    auto f = env->NewWritableFile(tmp);
    if (f.ok() && (*f)->Append(bytes).ok() && (*f)->Close().ok()) {
      if (!env->RenameFile(tmp, path).ok()) (void)env->RemoveFile(tmp);
    }
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
  auto it = impl_->by_id.find(id);
  if (it == impl_->by_id.end()) return {};
  return impl_->Changes(it->second);
}

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
  impl_->DecodeCommits();
  const auto& cs = impl_->commits;
  auto it = std::lower_bound(cs.begin(), cs.end(), epoch,
                             [](const Impl::CommitRec& c, Epoch e) { return c.epoch < e; });
  if (it == cs.end() || it->epoch != epoch) {
    return NotFound(fmt::format("epoch {} is not committed in log '{}'", epoch, impl_->dir));
  }
  CommitInfo ci;
  ci.epoch = it->epoch;
  ci.unix_nanos = it->unix_nanos;
  for (std::uint32_t k = 0; k < it->tx_count; ++k) {
    const Impl::TxRec& t = impl_->txs[it->tx_begin + k];
    TransactionRef r;
    if (t.site > 0 && t.site <= impl_->sites.size()) r.site = impl_->sites[t.site - 1];
    r.thread = t.thread;
    r.sequence = t.sequence;
    ci.transactions.push_back(std::move(r));
  }
  return ci;
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
