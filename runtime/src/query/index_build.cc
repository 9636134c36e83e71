// LogIndex, building: one streaming pass over the segments' framed records (no replay, no page
// state) that indexes every complete group (see log_index.cc for the file this fills in).
//
// Records are held per group and indexed only when the group's commit record is valid and counts
// them, as replay applies only complete groups. Each page's changes and each run of
// kCommitsPerBlock commits are varint-encoded as they are indexed, straight into their block's
// bytes: nothing is allocated per record.
#include <algorithm>
#include <bit>
#include <cstring>
#include <map>

#include <fmt/format.h>

#include "mmsb/query.h"

#include "core/varint.h"
#include "delta/delta_view.h"
#include "log/log_format.h"
#include "log/log_records.h"
#include "log/record_reader.h"
#include "query/index_format.h"
#include "query/query_internal.h"

namespace mmsb::query {

using delta_internal::DeltaView;

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
  std::uint32_t inline_offset = 0;  // into the group's inline bytes, when inline_length > 0
  std::uint32_t inline_length = 0;
};

namespace {

// The buckets (LogIndex::BucketShift) a parsed delta writes. A sparse view's run table is read in
// place (ParseDeltaView has checked it: every varint ends inside the record and every run inside
// the page); a dense one goes through its runs in `*scratch`.
std::uint64_t RunBucketMask(const DeltaView& v, std::vector<ByteRun>* scratch) {
  const unsigned shift = LogIndex::BucketShift(v.page_size);
  std::uint64_t mask = 0;
  auto add = [&](std::uint64_t offset, std::uint64_t length) {
    const std::uint64_t lo = offset >> shift;
    const std::uint64_t hi = (offset + length - 1) >> shift;
    mask |= (hi >= 63 ? ~std::uint64_t{0} : ((std::uint64_t{2} << hi) - 1)) &
            ~((std::uint64_t{1} << lo) - 1);
  };
  if (v.dense) {
    scratch->clear();
    delta_internal::AppendDeltaViewRuns(v, scratch);
    for (const ByteRun& r : *scratch) add(r.offset, r.length);
    return mask;
  }
  const std::uint8_t* t = v.table;
  std::uint64_t pos = 0;
  for (std::uint64_t i = 0; i < v.run_count; ++i) {
    pos += varint::GetTrusted(t);
    const std::uint64_t run = varint::GetTrusted(t);
    add(pos, run);
    pos += run;
  }
  return mask;
}

}  // namespace

Status LogIndex::Impl::Scan(std::size_t first_seg, std::uint64_t skip_below) {
  // Deltas, nearly all of a log's records, wait in a light list of their own; the group's other
  // records are applied first (creations before the deltas that need them; a free does not
  // remove a page from the index, so the order among them does not matter).
  std::vector<Pending> group;
  std::vector<PendingDelta> deltas;
  std::vector<std::uint8_t> inline_bytes;  // the group's small deltas (kInlineDeltaMax)
  std::vector<ByteRun> runs;
  for (std::size_t si = first_seg; si < segments.size(); ++si) {
    SegmentRec& seg = segments[si];
    const bool last = si + 1 == segments.size();
    // Read front to back with positioned reads into the reader's window, not mapped: on a
    // virtual machine the first touch of each 4 KiB page of a mapping traps, even after
    // MAP_POPULATE, and those traps cost more than the copy out of the page cache (the build's
    // largest cost before; docs/Performance.md). Dropped once read.
    auto fe = env->NewRandomAccessFile(seg.path);
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
    inline_bytes.clear();
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
            inline_bytes.clear();
            continue;
          }
          return Corruption(fmt::format("{}:{}: commit epoch {} does not follow epoch {}", seg.path,
                                        rec.offset, c.epoch, last_epoch));
        }
        MMSB_RETURN_IF_ERROR(ApplyGroup(group, deltas, inline_bytes, c));
        group.clear();
        deltas.clear();
        inline_bytes.clear();
        seg.end = rec.offset + log::kRecordHeaderSize + rec.payload.size();
        continue;
      }
      if (t == static_cast<std::uint8_t>(LogRecordType::kDelta)) {
        DeltaView v;
        Status s = delta_internal::ParseDeltaView(rec.payload, 0xFFFFFFFFu, false, &v);
        if (!s.ok()) return bad(s);
        // The page's encoder state is written at the commit: fetched into the cache now, while
        // the rest of the group is read (1,000 pages' states and block ends do not stay cached).
        if (const std::size_t pi = PageIndex(v.page); pi != ~std::size_t{0}) {
          __builtin_prefetch(&changes[pi], 1);
        }
        PendingDelta& d = deltas.emplace_back();
        d.page = v.page;
        d.mask = RunBucketMask(v, &runs);
        d.where = (std::uint64_t{si} << 40) | rec.offset;
        if (rec.payload.size() <= kInlineDeltaMax) {
          // Copied: the payload may lie in the reader's buffer, which the next record reuses.
          d.inline_offset = static_cast<std::uint32_t>(inline_bytes.size());
          d.inline_length = static_cast<std::uint32_t>(rec.payload.size());
          inline_bytes.insert(inline_bytes.end(), rec.payload.begin(), rec.payload.end());
        }
        continue;
      }
      Pending& p = group.emplace_back();
      p.type = t;
      if (t == log::kCompactCommitInfoType) {
        p.type = static_cast<std::uint8_t>(LogRecordType::kCommitInfo);
        if (Status s = log::DecodeCommitInfo(rec.payload, &p.info); !s.ok()) return bad(s);
        continue;
      }
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
          if (Status s = log::DecodeFixedCommitInfo(rec.payload, &p.info); !s.ok()) return bad(s);
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
                                  const std::vector<PendingDelta>& deltas,
                                  std::span<const std::uint8_t> inline_bytes, const LogCommit& c) {
  const Epoch e = c.epoch;
  CommitRec cr;
  cr.epoch = e;
  cr.unix_nanos = c.unix_nanos;
  group_txs.clear();
  for (Pending& p : group) {
    switch (static_cast<LogRecordType>(p.type)) {
      case LogRecordType::kRunStart:
        run_sites.clear();
        builds.push_back({e - 1, {}, {}, {}});
        break;
      case LogRecordType::kBuild:
        if (!builds.empty()) {
          builds.back().build_id = p.build.build_id;
          builds.back().executable = p.build.executable;
          builds.back().units = p.build.units;
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
  for (const PendingDelta& d : deltas) {  // the blocks' ends, fetched in parallel
    if (const std::size_t i = PageIndex(d.page); i != ~std::size_t{0}) {
      __builtin_prefetch(changes[i].enc.data() + changes[i].enc.size(), 1);
    }
  }
  for (const PendingDelta& d : deltas) {
    const std::size_t i = PageIndex(d.page);
    if (i == ~std::size_t{0}) {
      return Corruption(
          fmt::format("epoch {}: delta for page {}, which does not exist", e, d.page));
    }
    // Appended in the file's encoding: epoch and position as deltas from the page's previous
    // change, the mask as its lowest bucket (times two, plus one when the record's payload
    // follows) and the bits from there, then a small record's payload.
    PageChanges& pc = changes[i];
    std::uint8_t* p = pc.enc.Reserve(40 + kInlineDeltaMax);
    p = varint::PutAt(p, e - pc.last_epoch);
    const unsigned lo = d.mask == 0 ? 64 : static_cast<unsigned>(std::countr_zero(d.mask));
    p = varint::PutAt(p, (std::uint64_t{lo} << 1) | (d.inline_length > 0 ? 1 : 0));
    if (lo < 64) p = varint::PutAt(p, d.mask >> lo);
    p = varint::PutAt(p, d.where - pc.last_where);
    if (d.inline_length > 0) {
      p = varint::PutAt(p, d.inline_length);
      std::memcpy(p, inline_bytes.data() + d.inline_offset, d.inline_length);
      p += d.inline_length;
    }
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
  out.reserve(live.size());
  for (auto& [k, v] : live) out.push_back(v);
  return out;
}

}  // namespace mmsb::query
