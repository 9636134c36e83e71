// Field resolution and the index-driven queries: history, values at an epoch, blame, touched.
//
// Invariant: a field's bytes change only in epochs that have a delta record of its page whose
// bucket mask meets the field's buckets (pages recomputed on replay excepted, and refused). So
// walking only those deltas, applied to the page's base image, keeps the field's bytes exact at
// every epoch, whatever the other deltas did to the rest of the page.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <map>
#include <set>

#include <fmt/format.h>

#include "mmsb/query.h"

#include "query/query_internal.h"
#include "query/walk.h"

namespace mmsb::query {

// ---- PageCursor ---------------------------------------------------------------------------------

Status PageCursor::Init(const LogIndex& index, PageId page, std::uint64_t mask) {
  index_ = &index;
  page_ = index.FindPage(page);
  if (page_ == nullptr) return NotFound(fmt::format("page {} is not in the log", page));
  if (page_->recomputed_on_replay) {
    return FailedPrecondition(fmt::format(
        "page {} ({}) is recomputed on replay (DerivedPolicy::kRecomputeOnReplay): its derived "
        "changes are not in the log's deltas, so the index cannot follow it; use `mmsb diff` on it",
        page_->id, page_->name.empty() ? page_->type_name : page_->name));
  }
  mask_ = mask;
  changes_ = index.ChangesOf(page);
  MMSB_RETURN_IF_ERROR(index.damage());
  pos_ = 0;
  bytes_.assign(page_->size, 0);
  MMSB_RETURN_IF_ERROR(index.BaseImage(page, bytes_));
  Skip();
  return Status::Ok();
}

void PageCursor::Skip() {
  while (pos_ < changes_.size() && (changes_[pos_].mask & mask_) == 0) ++pos_;
}

Epoch PageCursor::NextEpoch() const {
  return pos_ < changes_.size() ? changes_[pos_].epoch : kNoEpoch;
}

Status PageCursor::ApplyThrough(Epoch e) {
  while (pos_ < changes_.size() && changes_[pos_].epoch <= e) {
    MMSB_RETURN_IF_ERROR(index_->ApplyChange(changes_[pos_], bytes_));
    ++pos_;
    Skip();
  }
  return Status::Ok();
}

bool PageCursor::ExistsAt(Epoch e) const {
  // A page created in epoch C exists from C on (0: from the base checkpoint); freed in F, gone
  // from F on.
  return page_->created <= e && (page_->freed == 0 || page_->freed > e);
}

// ---- resolution ---------------------------------------------------------------------------------

namespace {

struct Component {
  bool index = false;  // [N] or [*]
  bool any = false;    // [*]
  std::uint64_t n = 0;
  std::string name;
};

Expected<std::vector<Component>> ParsePath(std::string_view s) {
  std::vector<Component> out;
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '.') {
      ++i;
      std::size_t j = i;
      while (j < s.size() && s[j] != '.' && s[j] != '[') ++j;
      if (j == i) return InvalidArgument(fmt::format("empty field name in '{}'", s));
      Component c;
      c.name = std::string(s.substr(i, j - i));
      out.push_back(std::move(c));
      i = j;
    } else if (s[i] == '[') {
      const std::size_t close = s.find(']', i);
      if (close == std::string_view::npos)
        return InvalidArgument(fmt::format("unclosed '[' in '{}'", s));
      const std::string_view in = s.substr(i + 1, close - i - 1);
      Component c;
      c.index = true;
      if (in == "*") {
        c.any = true;
      } else {
        auto r = std::from_chars(in.data(), in.data() + in.size(), c.n);
        if (in.empty() || r.ec != std::errc() || r.ptr != in.data() + in.size()) {
          return InvalidArgument(fmt::format("'[{}]' in '{}' is not an index or [*]", in, s));
        }
      }
      out.push_back(c);
      i = close + 1;
    } else {
      return InvalidArgument(fmt::format("unexpected '{}' in field path '{}'", s[i], s));
    }
  }
  return out;
}

class Resolver {
 public:
  Resolver(const LogIndex& index, const IndexedPage& page, std::string label_prefix)
      : index_(index), page_(page), label_prefix_(std::move(label_prefix)) {}

  // Leaves of `type` at `base` under path components [k, end).
  Status Walk(const TypeDescriptor& type, std::uint64_t base, const std::string& path,
              std::span<const Component> rest, int depth, std::vector<FieldRef>* out) {
    if (depth > 32) return InvalidArgument("record types nest too deeply");
    if (rest.empty()) {
      for (const FieldDescriptor& f : type.fields) {
        MMSB_RETURN_IF_ERROR(Field(f, base, path, rest, depth, out));
      }
      return Status::Ok();
    }
    if (rest[0].index) {
      return InvalidArgument(fmt::format("'{}' is a record, not an array", Label(path)));
    }
    for (const FieldDescriptor& f : type.fields) {
      if (f.name == rest[0].name) return Field(f, base, path, rest.subspan(1), depth, out);
    }
    std::string names;
    for (const FieldDescriptor& f : type.fields) names += (names.empty() ? "" : ", ") + f.name;
    return InvalidArgument(
        fmt::format("type '{}' has no field '{}' (it has: {})", type.name, rest[0].name, names));
  }

  Status Field(const FieldDescriptor& f, std::uint64_t base, const std::string& path,
               std::span<const Component> rest, int depth, std::vector<FieldRef>* out) {
    const std::string here = path.empty() ? f.name : path + "." + f.name;
    return Elements(f, base + f.offset, here, 0, 0, rest, depth, out);
  }

  // Array dimension `dim` of f (row-major), `flat` the element index so far.
  Status Elements(const FieldDescriptor& f, std::uint64_t at, const std::string& path,
                  std::size_t dim, std::uint64_t flat, std::span<const Component> rest, int depth,
                  std::vector<FieldRef>* out) {
    if (dim < f.extents.size()) {
      const std::uint32_t ext = f.extents[dim];
      if (!rest.empty() && rest[0].index) {
        if (rest[0].any) {
          for (std::uint32_t i = 0; i < ext; ++i) {
            MMSB_RETURN_IF_ERROR(Elements(f, at, fmt::format("{}[{}]", path, i), dim + 1,
                                          flat * ext + i, rest.subspan(1), depth, out));
          }
          return Status::Ok();
        }
        if (rest[0].n >= ext) {
          return InvalidArgument(fmt::format("index {} is out of range for '{}' (extent {})",
                                             rest[0].n, Label(path), ext));
        }
        return Elements(f, at, fmt::format("{}[{}]", path, rest[0].n), dim + 1,
                        flat * ext + rest[0].n, rest.subspan(1), depth, out);
      }
      if (!rest.empty()) {
        return InvalidArgument(
            fmt::format("'{}' is an array: index it before '.{}'", Label(path), rest[0].name));
      }
      for (std::uint32_t i = 0; i < ext; ++i) {
        MMSB_RETURN_IF_ERROR(Elements(f, at, fmt::format("{}[{}]", path, i), dim + 1,
                                      flat * ext + i, rest, depth, out));
      }
      return Status::Ok();
    }
    const std::uint64_t elem = at + flat * f.elem_size;
    if (f.kind == ScalarKind::kRecord) {
      auto nested = index_.FindType(f.record_type);
      if (nested && nested->size == f.elem_size) {
        return Walk(*nested, elem, path, rest, depth + 1, out);
      }
    }
    if (!rest.empty()) {
      return InvalidArgument(fmt::format("'{}' is a scalar; nothing below it", Label(path)));
    }
    if (out->size() >= kMaxFields) {
      return InvalidArgument(
          fmt::format("'{}' names more than {} fields; narrow it", label_prefix_, kMaxFields));
    }
    FieldRef r;
    r.page = page_.id;
    r.label = Label(path);
    r.offset = static_cast<std::uint32_t>(elem);
    r.size = f.elem_size;
    r.kind = f.kind == ScalarKind::kRecord ? ScalarKind::kBytes : f.kind;
    out->push_back(std::move(r));
    return Status::Ok();
  }

  // As mmsb diff prints it: the type name, then the path ("[3].x" joins without a dot).
  std::string Label(const std::string& path) const {
    if (path.empty()) return label_prefix_;
    return label_prefix_ + (path.starts_with("[") ? "" : ".") + path;
  }

  static constexpr std::size_t kMaxFields = 1u << 20;

 private:
  const LogIndex& index_;
  const IndexedPage& page_;
  std::string label_prefix_;
};

Status ResolveInPage(const LogIndex& index, const IndexedPage& page,
                     std::span<const Component> comps, std::vector<FieldRef>* out) {
  if (page.recomputed_on_replay) {
    return FailedPrecondition(fmt::format(
        "page {} ({}) is recomputed on replay (DerivedPolicy::kRecomputeOnReplay): its derived "
        "changes are not in the log's deltas, so the index cannot follow it; use `mmsb diff`",
        page.id, page.name.empty() ? page.type_name : page.name));
  }
  const TypeDescriptor* type = page.type.get();
  if (type == nullptr || type->size == 0) {
    if (!comps.empty()) {
      return InvalidArgument(fmt::format("page {} has no type in the log: name it whole", page.id));
    }
    FieldRef r;
    r.page = page.id;
    r.label = page.name.empty() ? fmt::format("page {}", page.id) : page.name;
    r.offset = 0;
    r.size = static_cast<std::uint32_t>(page.size);
    r.kind = ScalarKind::kBytes;
    out->push_back(std::move(r));
    return Status::Ok();
  }
  Resolver res(index, page, page.type_name);
  const std::uint64_t records = page.size / type->size;
  if (records > 1) {
    // A page holding several records: diff prints "[3].x".
    if (!comps.empty() && comps[0].index) {
      if (comps[0].any) {
        for (std::uint64_t i = 0; i < records; ++i) {
          MMSB_RETURN_IF_ERROR(
              res.Walk(*type, i * type->size, fmt::format("[{}]", i), comps.subspan(1), 0, out));
        }
        return Status::Ok();
      }
      if (comps[0].n >= records) {
        return InvalidArgument(fmt::format("page {} holds {} records; [{}] is out of range",
                                           page.id, records, comps[0].n));
      }
      return res.Walk(*type, comps[0].n * type->size, fmt::format("[{}]", comps[0].n),
                      comps.subspan(1), 0, out);
    }
    if (!comps.empty()) {
      return InvalidArgument(
          fmt::format("page {} holds {} records of '{}': index the record first ({}[N].{})",
                      page.id, records, type->name, type->name, comps[0].name));
    }
    for (std::uint64_t i = 0; i < records; ++i) {
      MMSB_RETURN_IF_ERROR(res.Walk(*type, i * type->size, fmt::format("[{}]", i), {}, 0, out));
    }
    return Status::Ok();
  }
  return res.Walk(*type, 0, "", comps, 0, out);
}

}  // namespace

Expected<std::vector<FieldRef>> ResolveFields(const LogIndex& index, std::string_view pattern) {
  if (pattern.empty()) return InvalidArgument("empty field name");
  // The prefix is a page name or a type name; try the longest split first (names may hold '.').
  std::vector<std::size_t> splits;
  for (std::size_t i = pattern.size(); i > 0; --i) {
    if (i == pattern.size() || pattern[i] == '.' || pattern[i] == '[') splits.push_back(i);
  }
  for (std::size_t at : splits) {
    const std::string_view prefix = pattern.substr(0, at);
    std::vector<const IndexedPage*> pages;
    for (const IndexedPage& p : index.pages()) {
      if (!p.name.empty() && p.name == prefix) pages.push_back(&p);
    }
    if (pages.empty()) {
      for (const IndexedPage& p : index.pages()) {
        if (p.type_name == prefix) pages.push_back(&p);
      }
    }
    if (pages.empty()) continue;
    auto comps = ParsePath(pattern.substr(at));
    if (!comps.ok()) return comps.status();
    std::vector<FieldRef> out;
    // A type name covers every page of the type; a path that fits some of them (`[2].x` only
    // fits pages holding several records) picks those, and fails only if it fits none.
    Status first_error = Status::Ok();
    for (const IndexedPage* p : pages) {
      Status s = ResolveInPage(index, *p, *comps, &out);
      if (s.code() == StatusCode::kInvalidArgument && pages.size() > 1) {
        if (first_error.ok()) first_error = s;
        continue;
      }
      MMSB_RETURN_IF_ERROR(s);
    }
    if (out.empty() && !first_error.ok()) return first_error;
    return out;
  }
  std::set<std::string> names;
  for (const IndexedPage& p : index.pages()) {
    if (!p.name.empty()) names.insert(p.name);
    if (!p.type_name.empty()) names.insert(p.type_name);
  }
  std::string known;
  for (const std::string& n : names) {
    if (known.size() > 300) {
      known += ", ...";
      break;
    }
    known += (known.empty() ? "" : ", ") + n;
  }
  return InvalidArgument(fmt::format("'{}' names no page or page type in log '{}' (it has: {})",
                                     pattern, index.dir(), known.empty() ? "no pages" : known));
}

// ---- history ------------------------------------------------------------------------------------

namespace {

struct PageGroup {
  PageId page = kInvalidPageId;
  std::vector<std::size_t> fields;  // into the field list
  std::uint64_t mask = 0;
};

std::vector<PageGroup> GroupByPage(const LogIndex& index, std::span<const FieldRef> fields) {
  std::map<PageId, PageGroup> m;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    PageGroup& g = m[fields[i].page];
    g.page = fields[i].page;
    g.fields.push_back(i);
    const IndexedPage* p = index.FindPage(g.page);
    g.mask |= LogIndex::BucketMask(p ? p->size : 0, fields[i].offset, fields[i].size);
  }
  std::vector<PageGroup> out;
  out.reserve(m.size());
  for (auto& [id, g] : m) out.push_back(std::move(g));
  return out;
}

bool SameBytes(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

}  // namespace

std::string FormatField(const FieldRef& f, std::span<const std::uint8_t> page) {
  if (std::uint64_t{f.offset} + f.size > page.size()) return "";
  return FormatScalar(f.kind, page.data() + f.offset, f.size);
}

Status WalkFieldChanges(const LogIndex& index, std::span<const FieldRef> fields, Epoch to,
                        const std::function<void(Epoch, const FieldRef&, std::size_t,
                                                 std::span<const std::uint8_t> before,
                                                 std::span<const std::uint8_t> after)>& fn) {
  std::vector<std::uint8_t> before;
  for (const PageGroup& g : GroupByPage(index, fields)) {
    PageCursor cur;
    MMSB_RETURN_IF_ERROR(cur.Init(index, g.page, g.mask));
    // Only the fields' bytes are kept as they were before each epoch (see walk.h).
    std::size_t lo = cur.bytes().size(), hi = 0;
    for (std::size_t i : g.fields) {
      lo = std::min<std::size_t>(lo, fields[i].offset);
      hi = std::max<std::size_t>(hi, std::size_t{fields[i].offset} + fields[i].size);
    }
    hi = std::min(hi, cur.bytes().size());
    before.assign(cur.bytes().begin(), cur.bytes().end());
    for (Epoch e = cur.NextEpoch(); e != kNoEpoch && e <= to; e = cur.NextEpoch()) {
      if (lo < hi) std::memcpy(before.data() + lo, cur.bytes().data() + lo, hi - lo);
      MMSB_RETURN_IF_ERROR(cur.ApplyThrough(e));
      for (std::size_t i : g.fields) {
        const FieldRef& f = fields[i];
        const auto a = std::span<const std::uint8_t>(before).subspan(f.offset, f.size);
        const auto b = cur.bytes().subspan(f.offset, f.size);
        if (!SameBytes(a, b)) fn(e, f, i, before, cur.bytes());
      }
    }
  }
  return Status::Ok();
}

Expected<History> FieldHistory(const LogIndex& index, std::string_view pattern,
                               const HistoryOptions& o) {
  auto fields = ResolveFields(index, pattern);
  if (!fields.ok()) return fields.status();
  History h;
  h.fields = std::move(*fields);
  // Collected in walk order with their (epoch, field) keys, then put in key order; one page's
  // changes (the common case) arrive in key order already and are not moved.
  std::vector<std::pair<Epoch, std::size_t>> keys;
  std::vector<FieldChangeAt> all;
  Status s = WalkFieldChanges(
      index, h.fields, o.to,
      [&](Epoch e, const FieldRef& f, std::size_t i, std::span<const std::uint8_t> before,
          std::span<const std::uint8_t> after) {
        if (e <= o.from) return;
        keys.emplace_back(e, i);
        all.push_back({e, f, FormatField(f, before), FormatField(f, after)});
      });
  if (!s.ok()) return s;
  if (std::is_sorted(keys.begin(), keys.end())) {
    h.changes = std::move(all);
  } else {
    std::vector<std::size_t> order(keys.size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return keys[a] < keys[b]; });
    h.changes.reserve(order.size());
    for (std::size_t k : order) h.changes.push_back(std::move(all[k]));
  }
  if (h.changes.size() > o.max_changes) {
    h.changes.resize(o.max_changes);
    h.truncated = true;
  }
  return h;
}

Expected<std::vector<std::string>> ValuesAt(const LogIndex& index, std::span<const FieldRef> fields,
                                            Epoch epoch) {
  std::vector<std::string> out(fields.size());
  for (const PageGroup& g : GroupByPage(index, fields)) {
    PageCursor cur;
    MMSB_RETURN_IF_ERROR(cur.Init(index, g.page, g.mask));
    if (!cur.ExistsAt(epoch)) continue;
    MMSB_RETURN_IF_ERROR(cur.ApplyThrough(epoch));
    for (std::size_t i : g.fields) out[i] = FormatField(fields[i], cur.bytes());
  }
  return out;
}

// ---- blame --------------------------------------------------------------------------------------

Expected<Blame> BlameField(const LogIndex& index, std::string_view pattern, Epoch at,
                           std::size_t max_together) {
  HistoryOptions ho;
  ho.to = at;
  auto h = FieldHistory(index, pattern, ho);
  if (!h.ok()) return h.status();
  if (h->changes.empty()) {
    return NotFound(
        fmt::format("'{}' never changed at or before epoch {} (its value there is "
                    "its initial one)",
                    pattern, at));
  }
  Blame b;
  b.change = h->changes.back();
  const Epoch e = b.change.epoch;
  auto ci = index.Commit(e);
  if (!ci.ok()) return ci.status();
  b.commit = std::move(*ci);
  // Every page with a delta in epoch e, resolved to fields with their old and new values.
  std::set<PageId> changed;
  for (const IndexedPage& p : index.pages()) {
    if (p.recomputed_on_replay) continue;
    auto ch = index.ChangesOf(p.id);
    auto it = std::lower_bound(ch.begin(), ch.end(), e,
                               [](const IndexedChange& c, Epoch x) { return c.epoch < x; });
    if (it == ch.end() || it->epoch != e) continue;
    changed.insert(p.id);
    std::uint64_t mask = 0;
    for (auto j = it; j != ch.end() && j->epoch == e; ++j) mask |= j->mask;
    PageCursor cur;
    MMSB_RETURN_IF_ERROR(cur.Init(index, p.id, mask));
    MMSB_RETURN_IF_ERROR(cur.ApplyThrough(e - 1));
    std::vector<std::uint8_t> before(cur.bytes().begin(), cur.bytes().end());
    std::vector<ByteRun> runs, all_runs;
    std::vector<std::uint8_t> scratch(before);
    for (auto j = it; j != ch.end() && j->epoch == e; ++j) {
      MMSB_RETURN_IF_ERROR(index.ApplyChange(*j, scratch, &runs));
      all_runs.insert(all_runs.end(), runs.begin(), runs.end());
    }
    const std::string label_prefix =
        p.type ? p.type_name : (p.name.empty() ? fmt::format("page {}", p.id) : p.name);
    std::set<std::uint32_t> seen;
    for (const ByteRun& r : all_runs) {
      for (std::uint64_t off = r.offset; off < std::uint64_t{r.offset} + r.length;) {
        FieldRef f;
        f.page = p.id;
        if (p.type && p.type->size > 0) {
          const std::uint64_t rec = off / p.type->size;
          auto lookup = [&index](std::string_view n) { return index.FindType(n).get(); };
          auto fp = ResolveField(*p.type, static_cast<std::uint32_t>(off % p.type->size), lookup);
          if (!fp) {
            ++off;
            continue;
          }
          const bool array = p.size > p.type->size;
          const std::string path = array ? fmt::format("[{}].{}", rec, fp->path) : fp->path;
          f.label = label_prefix;
          if (!path.starts_with("[")) f.label += '.';
          f.label += path;
          f.offset = static_cast<std::uint32_t>(rec * p.type->size + fp->offset);
          f.size = fp->size;
          f.kind = fp->kind;
        } else {
          f.label = fmt::format("{}+{}", label_prefix, off);
          f.offset = static_cast<std::uint32_t>(off);
          f.size = 1;
        }
        off = std::uint64_t{f.offset} + std::max<std::uint32_t>(f.size, 1);
        if (!seen.insert(f.offset).second) continue;
        if (f.page == b.change.field.page && f.offset == b.change.field.offset) continue;
        if (b.together.size() >= max_together) {
          b.together_truncated = true;
          break;
        }
        if (std::uint64_t{f.offset} + f.size > scratch.size()) continue;
        FieldChangeAt fc{e, f, FormatField(f, before), FormatField(f, scratch)};
        if (fc.old_value == fc.new_value) continue;
        b.together.push_back(std::move(fc));
      }
    }
  }
  // Derived: changed pages reachable from the blamed field's page through the graph.
  std::set<PageId> reach{b.change.field.page}, frontier{b.change.field.page};
  const std::vector<EdgeInfo> edges = index.EdgesAt(e);
  while (!frontier.empty()) {
    std::set<PageId> next;
    for (const EdgeInfo& ed : edges) {
      if (frontier.count(ed.parent) && !reach.count(ed.child)) {
        reach.insert(ed.child);
        next.insert(ed.child);
      }
    }
    frontier = std::move(next);
  }
  for (PageId id : reach) {
    if (id == b.change.field.page) continue;
    const IndexedPage* p = index.FindPage(id);
    if (changed.count(id) || (p && p->recomputed_on_replay)) b.derived.push_back(id);
  }
  return b;
}

// ---- touched ------------------------------------------------------------------------------------

Expected<Touched> TouchedBy(const LogIndex& index, std::string_view pattern, Epoch from, Epoch to) {
  HistoryOptions ho;
  ho.from = from;
  ho.to = to;
  auto h = FieldHistory(index, pattern, ho);
  if (!h.ok()) return h.status();
  std::set<Epoch> epochs;
  for (const FieldChangeAt& c : h->changes) epochs.insert(c.epoch);
  Touched t;
  t.epochs = epochs.size();
  std::map<std::string, TouchedSite> by;
  for (Epoch e : epochs) {
    auto ci = index.Commit(e);
    if (!ci.ok()) return ci.status();
    std::set<std::string> sites;
    for (const TransactionRef& r : ci->transactions) sites.insert(r.site.ToString());
    if (sites.empty()) sites.insert(TransactionSite{}.ToString());
    for (const std::string& s : sites) {
      TouchedSite& ts = by[s];
      ts.site = s;
      if (ts.epochs++ == 0) ts.first = e;
      ts.last = e;
    }
  }
  for (auto& [k, v] : by) t.sites.push_back(std::move(v));
  // Most epochs first, ties by site (the names are unique: they were the map's keys).
  std::sort(t.sites.begin(), t.sites.end(), [](const TouchedSite& a, const TouchedSite& b) {
    return a.epochs != b.epochs ? a.epochs > b.epochs : a.site < b.site;
  });
  return t;
}

}  // namespace mmsb::query
