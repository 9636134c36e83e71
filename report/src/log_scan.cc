// Pass 1 of `mmsb report LOG` (log_scan.h): what changed when, from the records alone.
#include "log_scan.h"

#include <fmt/format.h>

namespace mmsb::report {

std::string Collapse(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '[') {
      size_t j = i + 1;
      while (j < path.size() && path[j] >= '0' && path[j] <= '9') ++j;
      if (j > i + 1 && j < path.size() && path[j] == ']') {
        out += "[]";
        i = j;
        continue;
      }
    }
    out += path[i];
  }
  return out;
}

std::string FieldName(const std::string& type_name, const std::string& path) {
  if (type_name.empty()) return path;
  return type_name + (path.starts_with("[") ? "" : ".") + path;
}

Status Scan::Run(const std::string& path, RecoveryMode mode) {
  LogReaderOptions ro;
  ro.mode = mode;
  auto reader = LogReader::Open(path, ro);
  if (!reader.ok()) return reader.status();
  LogEntry e;
  while (true) {
    auto more = (*reader)->Next(&e);
    if (!more.ok()) return more.status();
    if (!*more) break;
    switch (e.type) {
      case LogRecordType::kRunStart:
        for (PageSlot& p : pages) p.live = false;
        edges.clear();
        run_sites_.clear();
        runs.push_back({e.epoch > 0 ? e.epoch - 1 : 0, e.run_start.unix_nanos, "", ""});
        break;
      case LogRecordType::kBuild:
        if (!runs.empty()) {
          runs.back().build_id = e.build.build_id;
          runs.back().executable = e.build.executable;
        }
        break;
      case LogRecordType::kSite:
        run_sites_[e.site.id] = SiteIndex(e.site);
        break;
      case LogRecordType::kCommitInfo:
        pending_site_ = 0;
        if (!e.commit_info.transactions.empty()) {
          auto it = run_sites_.find(e.commit_info.transactions.front().site);
          if (it != run_sites_.end()) pending_site_ = it->second;
        }
        break;
      case LogRecordType::kTypeDescriptor: {
        auto t = std::make_shared<TypeDescriptor>(e.type_descriptor);
        for (PageSlot& p : pages) {
          if (p.type_name == t->name) p.type = t.get();
        }
        types[e.type_descriptor.name] = std::move(t);
        cache_.clear();  // entries point at the replaced descriptor
        break;
      }
      case LogRecordType::kPageCreate: {
        const std::uint32_t slot = Slot(e.page_create.id);
        PageSlot& p = pages[slot];
        p.name = e.page_create.name;
        p.type_name = e.page_create.type_name;
        p.size = e.page_create.size;
        auto t = types.find(p.type_name);
        p.type = t == types.end() ? nullptr : t->second.get();
        p.live = true;
        pending_.push_back({kNoLeaf, slot});
        break;
      }
      case LogRecordType::kPageFree: {
        const std::uint32_t slot = Slot(e.page_free);
        pages[slot].live = false;
        pending_.push_back({kNoLeaf, slot});
        break;
      }
      case LogRecordType::kGraphEdge: {
        const auto key = std::make_pair(e.edge.edge.parent, e.edge.edge.child);
        if (e.edge.op == EdgeOp::kAdd) {
          edges[key] = e.edge.edge;
        } else {
          edges.erase(key);
        }
        break;
      }
      case LogRecordType::kDelta:
        AddDelta(e.delta);
        break;
      case LogRecordType::kCommit:
        Commit(e.commit.epoch);
        break;
      default:
        break;
    }
  }
  problems = (*reader)->problems();
  return Status::Ok();
}

std::uint32_t Scan::SiteIndex(const LogSite& s) {
  const char* kind = s.kind == LogSite::Kind::kTransaction ? "transaction" : "commit";
  std::string key = fmt::format("{}\n{}\n{}\n{}", kind, s.function, s.file, s.line);
  auto [it, inserted] = site_ids_.emplace(std::move(key), static_cast<std::uint32_t>(sites.size()));
  if (inserted) {
    const std::string_view file = s.file;
    const std::string_view base = file.substr(file.find_last_of('/') + 1);
    sites.push_back(
        {fmt::format("{} at {}:{}", s.function.empty() ? "(unknown)" : s.function, base, s.line),
         kind, s.function, s.file, s.line, 0, 0});
  }
  return it->second;
}

std::uint32_t Scan::Slot(PageId id) {
  auto [it, inserted] = slot_of.emplace(id, static_cast<std::uint32_t>(pages.size()));
  if (inserted) {
    pages.emplace_back();
    pages.back().id = id;
  }
  return it->second;
}

std::uint32_t Scan::LeafId(const std::string& full) {
  auto [it, inserted] = leaf_ids_.emplace(full, static_cast<std::uint32_t>(leaves.size()));
  if (inserted) leaves.push_back({full, Collapse(full), 0});
  return it->second;
}

const TypeDescriptor* Scan::Lookup(std::string_view name) const {
  auto it = types.find(name);
  return it == types.end() ? nullptr : it->second.get();
}

Resolved Scan::Resolve(const PageSlot& p, const TypeDescriptor* type, std::uint64_t pos) {
  if (type == nullptr || type->size == 0) {
    return {LeafId("(untyped) " + (p.name.empty() ? fmt::format("page {}", p.id) : p.name)), 0,
            p.size};
  }
  const std::uint64_t whole = (p.size / type->size) * type->size;
  if (pos >= whole) return {LeafId(FieldName(type->name, fmt::format("+{}", pos))), pos, pos + 1};
  const bool array = p.size > type->size;
  const std::uint64_t rec = pos / type->size;
  const auto inner = static_cast<std::uint32_t>(pos % type->size);
  const CacheKey key{type, array ? rec : ~std::uint64_t{0}, inner};
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  Resolved r;
  auto f = ResolveField(*type, inner, [this](std::string_view name) { return Lookup(name); });
  if (!f || f->size == 0 || f->offset > inner || inner - f->offset >= f->size) {
    r = {kNoLeaf, pos, pos + 1};  // padding
  } else {
    const std::string path = array ? fmt::format("[{}].{}", rec, f->path) : f->path;
    const std::uint64_t at = rec * type->size + f->offset;
    r = {LeafId(FieldName(type->name, path)), at, at + f->size};
  }
  cache_.emplace(key, r);
  return r;
}

void Scan::AddDelta(const Delta& d) {
  auto it = slot_of.find(d.page());
  const std::uint32_t slot = it != slot_of.end() ? it->second : Slot(d.page());
  PageSlot& p = pages[slot];
  if (p.size == 0) p.size = d.page_size();
  const TypeDescriptor* type = p.type;
  pending_bytes_ += d.changed_bytes();
  std::uint32_t last_leaf = kNoLeaf;
  bool any = false;
  // ForEachRun: no vector per delta (Runs() allocates one).
  d.ForEachRun([&](std::uint64_t offset, std::uint64_t length, auto&&) {
    std::uint64_t pos = offset;
    const std::uint64_t end = offset + length;
    while (pos < end) {
      const Resolved r = Resolve(p, type, pos);
      if (r.leaf != kNoLeaf && r.leaf != last_leaf) {
        pending_.push_back({r.leaf, slot});
        last_leaf = r.leaf;
        any = true;
      }
      pos = std::max(pos + 1, r.end);
    }
  });
  if (!any) pending_.push_back({kNoLeaf, slot});
}

void Scan::Commit(Epoch epoch) {
  for (const Hit& h : pending_) {
    hits.push_back(h);
    if (h.leaf != kNoLeaf) ++leaves[h.leaf].hits;
    PageSlot& p = pages[h.page];
    if (p.last_counted != epoch) {
      p.last_counted = epoch;
      ++p.changes;
    }
  }
  pending_.clear();
  epochs.push_back({epoch, pending_bytes_, static_cast<std::uint32_t>(hits.size()), pending_site_});
  ++sites[pending_site_].epochs;
  sites[pending_site_].bytes += pending_bytes_;
  pending_bytes_ = 0;
  pending_site_ = 0;
}

}  // namespace mmsb::report
