// LogIndex: the field-change index kept beside the log segments (see mmsb/query.h and
// docs/Debugging.md, "The index").
//
// Build (index_build.cc): one streaming pass over the segments' framed records (no replay, no
// page state) that indexes every complete group, encoding each page's changes and each run of
// kCommitsPerBlock commits straight into their blocks' bytes.
//
// The file (`query.idx`, version 3), laid out so that a query reads only what it asks about:
//   header  magic "MMSBQIDX", u32 version, u32 0, u64 log id, u64 meta size, u64 XXH3 of the
//           meta, u64 file size, u64 XXH3 of the 48 bytes before it (56 bytes);
//   meta    varint-encoded: the segments covered (sequence number, indexed end, XXH3 of the 32
//           bytes before that end), types, pages, edges, sites, builds, and two directories:
//           per commit block (count, first and last epoch) and per page (change count, last
//           epoch and position), each entry with its block's size and XXH3;
//   blocks  the commit blocks, then the pages' change blocks, back to back; a change block holds,
//           per delta record, its epoch, buckets and position, and the record's payload itself
//           when it is small (kInlineDeltaMax), so a query applies it without a read of the log.
// Open reads the header and the meta only, and trusts them only when every segment named is still
// there, unchanged up to its end, in the same order. A block is read (pread, no mapping) and
// checked when a query first needs it; a block that fails its check makes the index rebuild itself
// from the log (IndexDamaged), never trust it.
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_map>

#include <fmt/format.h>

#include "mmsb/checkpoint.h"
#include "mmsb/query.h"

#include "core/varint.h"
#include "delta/delta_view.h"
#include "log/log_format.h"
#include "log/log_records.h"
#include "log/record_reader.h"
#include "log/segments.h"
#include "query/index_format.h"
#include "query/query_internal.h"

namespace mmsb::query {

using delta_internal::DeltaView;

namespace {

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
  changes.emplace_back().enc = ByteBuf(pool);
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
  bool bad = false;
  for (std::uint64_t k = 0; k < c.count && r.ok(); ++k) {
    IndexedChange ch;
    epoch += r.V();
    const std::uint64_t lo_flag = r.V();
    const std::uint64_t lo = lo_flag >> 1;
    ch.mask = lo < 64 ? r.V() << lo : 0;
    where += r.V();
    ch.epoch = epoch;
    ch.where = where;
    std::span<const std::uint8_t> inline_delta;
    if (lo_flag & 1) {
      inline_delta = r.B();
      if (inline_delta.empty() || inline_delta.size() > kInlineDeltaMax) {
        bad = true;
        break;
      }
    }
    if (epoch > c.truncate_after) break;
    if (!inline_delta.empty() &&
        inline_pool.size() + inline_delta.size() <= std::numeric_limits<std::uint32_t>::max()) {
      // (Past 4 GiB of copies the record is read from the log instead, as a large one is.)
      inline_at[where] = {static_cast<std::uint32_t>(inline_pool.size()),
                          static_cast<std::uint32_t>(inline_delta.size())};
      inline_pool.insert(inline_pool.end(), inline_delta.begin(), inline_delta.end());
    }
    c.list.push_back(ch);
  }
  if ((bad || !r.ok()) &&
      c.enc.empty()) {  // checksummed, yet not what it says: damaged all the same
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
    commit_blocks.emplace_back().enc = ByteBuf(pool);
    commit_blocks.back().first = c.epoch;
  }
  CommitBlock& b = commit_blocks.back();
  std::uint8_t* p = b.enc.Reserve(40 + 30 * txs.size());
  p = varint::PutAt(p, c.epoch - (b.count == 0 ? 0 : b.last));
  const std::int64_t d = static_cast<std::int64_t>(c.unix_nanos - b.last_nanos);
  p = varint::PutAt(
      p, d < 0 ? ((~static_cast<std::uint64_t>(d)) << 1) | 1 : static_cast<std::uint64_t>(d) << 1);
  p = varint::PutAt(p, c.state_hash);
  p = varint::PutAt(p, txs.size());
  for (const TxRec& t : txs) {
    p = varint::PutAt(p, t.site);
    p = varint::PutAt(p, t.thread);
    p = varint::PutAt(p, t.sequence);
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
  if (auto it = inline_at.find(c.where); it != inline_at.end()) {
    const std::span<const std::uint8_t> payload(inline_pool.data() + it->second.offset,
                                                it->second.length);
    Status s = delta_internal::ParseDeltaView(payload, 0xFFFFFFFFu, false, v);
    if (!s.ok()) {
      return Corruption(fmt::format("{}: the delta copied for position {} of the log: {}",
                                    index_path, c.where, s.message()));
    }
    return Status::Ok();
  }
  const std::size_t seg = c.where >> 40;
  const std::uint64_t off = c.where & ((std::uint64_t{1} << 40) - 1);
  auto f = File(seg);
  if (!f.ok()) return f.status();
  const RandomAccessFile* file = *f;
  auto where = [&] { return fmt::format("{}:{}", segments[seg].path, off); };
  // One read for the header and (nearly always) the whole payload; a second for a longer one.
  // The first read is as long as the record read last (rounded up): a query reads one page's
  // records in a row, and they are mostly alike in size, so this copies little past the record.
  const std::size_t first_read = read_hint;
  scratch->resize(first_read);
  std::size_t got = 0;
  MMSB_RETURN_IF_ERROR(file->Read(off, first_read, scratch->data(), &got));
  if (got < log::kRecordHeaderSize) return Corruption(where() + ": past the end");
  log::RecordHeader rh;
  if (!log::ParseRecordHeader(scratch->data(), log_id, &rh) ||
      rh.type != static_cast<std::uint8_t>(LogRecordType::kDelta)) {
    return Corruption(where() + ": the index points at no delta record (rebuild it)");
  }
  const std::size_t total = log::kRecordHeaderSize + std::size_t{rh.length};
  read_hint = std::clamp<std::size_t>((total + 63) & ~std::size_t{63}, 64, 4096);
  if (total > got) {
    if (got < first_read) return Corruption(where() + ": past the end");
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

// ---- Open -------------------------------------------------------------------------------------

Status LogIndex::Impl::BuildFresh(const log::LogDirListing& listing) {
  inline_at.clear();
  inline_pool.clear();
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
