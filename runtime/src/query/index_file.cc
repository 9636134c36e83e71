// LogIndex, the index file: Save writes `query.idx` (version 3), Load reads its header and meta
// and leaves the blocks in the file until a query needs them. The layout is described in
// log_index.cc and docs/SerializationSpec.md ("The query index"); the file is never trusted: any
// check that fails makes Load return false, and the caller rebuilds from the log.
#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "mmsb/query.h"

#include "log/log_format.h"
#include "log/log_records.h"
#include "query/index_format.h"
#include "query/query_internal.h"

namespace mmsb::query {

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
  page_types.reserve(pages.size());
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
    m.V(b.units.size());
    for (const LogBuild::Unit& u : b.units) {
      m.S(u.source);
      m.V(u.content_hash);
    }
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
  inline_at.clear();
  inline_pool.clear();
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
    const std::uint64_t nunits = m.V();
    if (!m.ok() || nunits > ms) return false;
    for (std::uint64_t k = 0; k < nunits && m.ok(); ++k) {
      LogBuild::Unit u;
      u.source = m.S();
      u.content_hash = m.V();
      b.units.push_back(std::move(u));
    }
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

}  // namespace mmsb::query
