// `mmsb report LOG`: one pass over the log's records (LogReader) counts changed bytes per epoch
// and the leaf fields each delta touches; a second pass (Replayer) diffs the state across each
// epoch column with the runtime's DiffStates, only for the pages that changed in it.
#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "mmsb/graph.h"
#include "mmsb/log.h"
#include "mmsb/replay.h"
#include "mmsb/report/report.h"
#include "mmsb/type_desc.h"

#include "html.h"

namespace mmsb::report {

namespace {

using Json = nlohmann::json;

constexpr std::uint32_t kNoLeaf = ~std::uint32_t{0};

// "Particles.x[12]" -> "Particles.x[]": the row an array element belongs to.
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

// How `mmsb diff` names a field: "Particles.x[12]", "Particles[3].x" for a page of records.
std::string FieldName(const std::string& type_name, const std::string& path) {
  if (type_name.empty()) return path;
  return type_name + (path.starts_with("[") ? "" : ".") + path;
}

struct PageSlot {
  PageId id = kInvalidPageId;
  std::string name;
  std::string type_name;
  std::uint64_t size = 0;
  std::uint64_t changes = 0;  // epochs in which it changed
  Epoch last_counted = ~Epoch{0};
  bool live = true;
};

struct Hit {
  std::uint32_t leaf;  // kNoLeaf: created or freed
  std::uint32_t page;  // slot
};

struct EpochRec {
  Epoch epoch = 0;
  std::uint64_t bytes = 0;
  std::uint32_t hit_end = 0;  // hits [previous hit_end, hit_end)
};

struct Leaf {
  std::string full;  // "Particles.x[12]"
  std::string row;   // "Particles.x[]"
  std::uint64_t hits = 0;
};

struct CacheKey {
  const TypeDescriptor* type;
  std::uint64_t rec;
  std::uint32_t inner;
  bool operator==(const CacheKey&) const = default;
};
struct CacheKeyHash {
  size_t operator()(const CacheKey& k) const {
    return std::hash<const void*>()(k.type) ^ (k.rec * 0x9E3779B97F4A7C15ull) ^
           (std::uint64_t{k.inner} << 17);
  }
};
struct Resolved {
  std::uint32_t leaf = kNoLeaf;
  std::uint64_t begin = 0;  // page offset of the leaf
  std::uint64_t end = 0;
};

// Pass 1: what changed when, from the records alone.
class Scan {
 public:
  Status Run(const std::string& path, RecoveryMode mode) {
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
          for (PageSlot& p : pages_) p.live = false;
          edges_.clear();
          break;
        case LogRecordType::kTypeDescriptor:
          types_[e.type_descriptor.name] = std::make_shared<TypeDescriptor>(e.type_descriptor);
          break;
        case LogRecordType::kPageCreate: {
          const std::uint32_t slot = Slot(e.page_create.id);
          PageSlot& p = pages_[slot];
          p.name = e.page_create.name;
          p.type_name = e.page_create.type_name;
          p.size = e.page_create.size;
          p.live = true;
          pending_.push_back({kNoLeaf, slot});
          break;
        }
        case LogRecordType::kPageFree: {
          const std::uint32_t slot = Slot(e.page_free);
          pages_[slot].live = false;
          pending_.push_back({kNoLeaf, slot});
          break;
        }
        case LogRecordType::kGraphEdge: {
          const auto key = std::make_pair(e.edge.edge.parent, e.edge.edge.child);
          if (e.edge.op == EdgeOp::kAdd) {
            edges_[key] = e.edge.edge;
          } else {
            edges_.erase(key);
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
    problems_ = (*reader)->problems();
    return Status::Ok();
  }

  std::vector<LogProblem> problems_;  // salvage: the damage skipped
  std::vector<PageSlot> pages_;
  std::unordered_map<PageId, std::uint32_t> slot_of_;
  std::map<std::string, std::shared_ptr<const TypeDescriptor>, std::less<>> types_;
  std::map<std::pair<PageId, PageId>, EdgeInfo> edges_;
  std::vector<Hit> hits_;
  std::vector<EpochRec> epochs_;
  std::vector<Leaf> leaves_;

 private:
  std::uint32_t Slot(PageId id) {
    auto [it, inserted] = slot_of_.emplace(id, static_cast<std::uint32_t>(pages_.size()));
    if (inserted) {
      pages_.emplace_back();
      pages_.back().id = id;
    }
    return it->second;
  }

  std::uint32_t LeafId(const std::string& full) {
    auto [it, inserted] = leaf_ids_.emplace(full, static_cast<std::uint32_t>(leaves_.size()));
    if (inserted) leaves_.push_back({full, Collapse(full), 0});
    return it->second;
  }

  static const TypeDescriptor* Lookup(std::string_view name, void* ctx) {
    auto* types = static_cast<decltype(types_)*>(ctx);
    auto it = types->find(name);
    return it == types->end() ? nullptr : it->second.get();
  }

  // The leaf field holding byte `pos` of a page of `type` (null: untyped) and `size` bytes.
  Resolved Resolve(const PageSlot& p, const TypeDescriptor* type, std::uint64_t pos) {
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
    auto f = ResolveField(*type, inner, &Scan::Lookup, &types_);
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

  void AddDelta(const Delta& d) {
    auto it = slot_of_.find(d.page());
    const std::uint32_t slot = it != slot_of_.end() ? it->second : Slot(d.page());
    PageSlot& p = pages_[slot];
    if (p.size == 0) p.size = d.page_size();
    auto t = types_.find(p.type_name);
    const TypeDescriptor* type = t == types_.end() ? nullptr : t->second.get();
    pending_bytes_ += d.changed_bytes();
    std::uint32_t last_leaf = kNoLeaf;
    bool any = false;
    for (const ByteRun& run : d.Runs()) {
      std::uint64_t pos = run.offset;
      const std::uint64_t end = std::uint64_t{run.offset} + run.length;
      while (pos < end) {
        const Resolved r = Resolve(p, type, pos);
        if (r.leaf != kNoLeaf && r.leaf != last_leaf) {
          pending_.push_back({r.leaf, slot});
          last_leaf = r.leaf;
          any = true;
        }
        pos = std::max(pos + 1, r.end);
      }
    }
    if (!any) pending_.push_back({kNoLeaf, slot});
  }

  void Commit(Epoch epoch) {
    for (const Hit& h : pending_) {
      hits_.push_back(h);
      if (h.leaf != kNoLeaf) ++leaves_[h.leaf].hits;
      PageSlot& p = pages_[h.page];
      if (p.last_counted != epoch) {
        p.last_counted = epoch;
        ++p.changes;
      }
    }
    pending_.clear();
    epochs_.push_back({epoch, pending_bytes_, static_cast<std::uint32_t>(hits_.size())});
    pending_bytes_ = 0;
  }

  std::unordered_map<std::string, std::uint32_t> leaf_ids_;
  std::unordered_map<CacheKey, Resolved, CacheKeyHash> cache_;
  std::vector<Hit> pending_;
  std::uint64_t pending_bytes_ = 0;
};

std::string PageLabel(const PageSlot& p) {
  return p.name.empty() ? fmt::format("page {}", p.id) : p.name;
}

}  // namespace

Expected<std::string> BuildLogReport(const std::string& log_path, const LogReportOptions& o,
                                     LogReportStats* stats) {
  Scan scan;
  if (Status s = scan.Run(log_path, o.mode); !s.ok()) return s;
  if (scan.epochs_.empty()) {
    return NotFound("log '" + log_path + "' has no committed epoch: nothing to report");
  }
  const Epoch first = scan.epochs_.front().epoch;
  const Epoch last = scan.epochs_.back().epoch;
  const std::size_t max_columns = std::max<std::size_t>(o.max_columns, 1);
  std::uint64_t width = 1;
  while (last / width - first / width + 1 > max_columns) width *= 2;
  const std::uint64_t base = first / width;
  const std::size_t ncols = static_cast<std::size_t>(last / width - base + 1);
  auto col_of = [&](Epoch e) { return static_cast<std::size_t>(e / width - base); };

  // Columns: epochs present, bytes, and which hits fall in them.
  struct Column {
    Epoch first = 0, last = 0;
    std::uint64_t bytes = 0;
    std::uint64_t epochs = 0;
    std::uint32_t hit_begin = 0, hit_end = 0;
  };
  std::vector<Column> cols(ncols);
  {
    std::uint32_t prev_end = 0;
    for (const EpochRec& r : scan.epochs_) {
      Column& c = cols[col_of(r.epoch)];
      if (c.epochs == 0) {
        c.first = r.epoch;
        c.hit_begin = prev_end;
      }
      c.last = r.epoch;
      c.bytes += r.bytes;
      ++c.epochs;
      c.hit_end = r.hit_end;
      prev_end = r.hit_end;
    }
  }

  // Rows: collapsed field paths, the busiest max_rows; element rows under arrays.
  std::map<std::string, std::uint64_t> row_hits;
  for (const Leaf& l : scan.leaves_) row_hits[l.row] += l.hits;
  std::vector<std::pair<std::string, std::uint64_t>> ranked(row_hits.begin(), row_hits.end());
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  const std::size_t max_rows = std::max<std::size_t>(o.max_rows, 1);
  const bool overflow = ranked.size() > max_rows;
  std::set<std::string> kept_rows;
  for (std::size_t i = 0; i < ranked.size() && kept_rows.size() < max_rows - (overflow ? 1 : 0);
       ++i) {
    kept_rows.insert(ranked[i].first);
  }
  struct Row {
    std::string label;
    std::string key;  // what a diff field's name (collapsed for parents) must equal; "" = other
    int parent = -1;
    bool collapsed_key = true;
  };
  std::vector<Row> rows;
  std::map<std::string, int> row_index;  // parent rows by key
  for (const std::string& r : kept_rows) {
    row_index[r] = static_cast<int>(rows.size());
    rows.push_back({r, r, -1, true});
  }
  int other_row = -1;
  if (overflow) {
    other_row = static_cast<int>(rows.size());
    rows.push_back({"(other fields)", "", -1, true});
  }
  // Element rows: the busiest leaves of each array row.
  std::vector<int> leaf_row(scan.leaves_.size(), -1), leaf_child(scan.leaves_.size(), -1);
  {
    std::map<std::string, std::vector<std::uint32_t>> by_row;
    for (std::uint32_t i = 0; i < scan.leaves_.size(); ++i) {
      const Leaf& l = scan.leaves_[i];
      auto it = row_index.find(l.row);
      leaf_row[i] = it == row_index.end() ? other_row : it->second;
      if (it != row_index.end() && l.full != l.row) by_row[l.row].push_back(i);
    }
    const std::size_t parents = rows.size();
    std::vector<Row> children;
    // Element order ("x[2]" before "x[10]"): shorter paths first, then by text.
    auto natural = [&](std::uint32_t a, std::uint32_t b) {
      const std::string& x = scan.leaves_[a].full;
      const std::string& y = scan.leaves_[b].full;
      return x.size() != y.size() ? x.size() < y.size() : x < y;
    };
    for (auto& [row, leaves] : by_row) {
      // The busiest max_children elements, shown in element order.
      std::sort(leaves.begin(), leaves.end(), [&](std::uint32_t a, std::uint32_t b) {
        if (scan.leaves_[a].hits != scan.leaves_[b].hits)
          return scan.leaves_[a].hits > scan.leaves_[b].hits;
        return natural(a, b);
      });
      std::sort(leaves.begin(), leaves.begin() + std::min(leaves.size(), o.max_children), natural);
      const int parent = row_index[row];
      for (std::size_t k = 0; k < leaves.size() && k < o.max_children; ++k) {
        leaf_child[leaves[k]] = static_cast<int>(parents + children.size());
        children.push_back(
            {scan.leaves_[leaves[k]].full, scan.leaves_[leaves[k]].full, parent, false});
      }
      if (leaves.size() > o.max_children) {
        const int other = static_cast<int>(parents + children.size());
        children.push_back({row + " (other elements)", "", parent, false});
        for (std::size_t k = o.max_children; k < leaves.size(); ++k) leaf_child[leaves[k]] = other;
      }
    }
    for (Row& c : children) rows.push_back(std::move(c));
  }

  // Cells (sparse) and, per column, the first page that touched each row.
  std::map<std::pair<int, std::size_t>, std::uint64_t> cells;
  std::vector<std::vector<std::uint32_t>> col_pages(ncols);  // pages to embed, in priority order
  std::vector<std::vector<std::uint32_t>> col_changed(ncols);
  for (std::size_t c = 0; c < ncols; ++c) {
    std::set<int> rows_seen;
    std::set<std::uint32_t> chosen;
    std::map<std::uint32_t, std::uint64_t> changed;
    for (std::uint32_t h = cols[c].hit_begin; h < cols[c].hit_end; ++h) {
      const Hit& hit = scan.hits_[h];
      ++changed[hit.page];
      if (hit.leaf == kNoLeaf) continue;
      for (int r : {leaf_row[hit.leaf], leaf_child[hit.leaf]}) {
        if (r < 0) continue;
        ++cells[{r, c}];
        if (rows_seen.insert(r).second && chosen.size() < o.pages_per_column &&
            chosen.insert(hit.page).second) {
          col_pages[c].push_back(hit.page);
        }
      }
    }
    std::vector<std::pair<std::uint32_t, std::uint64_t>> rest(changed.begin(), changed.end());
    std::sort(rest.begin(), rest.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    for (const auto& [page, n] : rest) {
      col_changed[c].push_back(page);
      if (chosen.size() < o.pages_per_column && chosen.insert(page).second)
        col_pages[c].push_back(page);
    }
  }

  // Pass 2: the state diff across each column, for the chosen pages.
  Json details = Json::array();
  {
    ReplayOptions ro;
    ro.mode = o.mode;
    ro.epoch = first > 0 ? first - 1 : 0;
    auto opened = Replayer::Open(log_path, ro);
    if (!opened.ok()) return opened.status();
    Replayer& rp = **opened;
    if (first > 1) {
      auto e = rp.AdvanceTo(first - 1);
      if (!e.ok()) return e.status();
    }
    std::map<PageId, ReplayedPage> prev(rp.state().pages.begin(), rp.state().pages.end());
    DiffOptions dopt;
    dopt.max_fields = std::max<std::size_t>(o.fields_per_page, 1);
    for (std::size_t c = 0; c < ncols; ++c) {
      if (cols[c].epochs == 0) {
        details.push_back(nullptr);
        continue;
      }
      auto e = rp.AdvanceTo(cols[c].last);
      if (!e.ok()) return e.status();
      const LogState& cur = rp.state();
      LogState a, b;
      a.epoch = cols[c].first - 1;
      b.epoch = cols[c].last;
      a.types = cur.types;
      b.types = cur.types;
      for (std::uint32_t slot : col_pages[c]) {
        const PageId id = scan.pages_[slot].id;
        if (auto it = prev.find(id); it != prev.end()) a.pages.emplace(id, it->second);
        if (const ReplayedPage* p = cur.FindPage(id)) b.pages.emplace(id, *p);
      }
      const StateDiff d = DiffStates(a, b, dopt);
      Json pages = Json::array();
      for (const PageDiff& p : d.pages) {
        Json fields = Json::array();
        for (const FieldChange& f : p.fields)
          fields.push_back({FieldName(p.type_name, f.path), f.old_value, f.new_value});
        pages.push_back({p.id, p.name, p.type_name, PageDiffKindName(p.kind), p.changed_bytes,
                         std::move(fields), p.fields_truncated});
      }
      Json detail;
      detail["from"] = a.epoch;
      detail["to"] = b.epoch;
      detail["pages"] = std::move(pages);
      detail["more"] = col_changed[c].size() - std::min(col_changed[c].size(), d.pages.size());
      details.push_back(std::move(detail));
      // The snapshot moves to the column's end for every page that changed in it.
      for (std::uint32_t slot : col_changed[c]) {
        const PageId id = scan.pages_[slot].id;
        if (const ReplayedPage* p = cur.FindPage(id)) {
          prev[id] = *p;
        } else {
          prev.erase(id);
        }
      }
    }
  }

  Json data;
  data["format"] = "mmsb.report/1";
  data["log"] = log_path;
  data["first_epoch"] = first;
  data["last_epoch"] = last;
  data["epochs"] = scan.epochs_.size();
  data["width"] = width;
  data["base"] = base * width;
  Json jcols = Json::array();
  for (const Column& c : cols) jcols.push_back({c.first, c.last, c.bytes, c.epochs});
  data["columns"] = std::move(jcols);
  Json jrows = Json::array();
  for (const Row& r : rows) jrows.push_back({r.label, r.key, r.parent});
  data["rows"] = std::move(jrows);
  Json jcells = Json::array();
  for (const auto& [rc, n] : cells) jcells.push_back({rc.first, rc.second, n});
  data["cells"] = std::move(jcells);
  data["details"] = std::move(details);
  // Pages: those in edges, then the most changed, up to max_graph_pages.
  std::set<PageId> in_graph;
  for (const auto& [k, e] : scan.edges_) {
    in_graph.insert(e.parent);
    in_graph.insert(e.child);
  }
  std::vector<const PageSlot*> by_changes;
  for (const PageSlot& p : scan.pages_) by_changes.push_back(&p);
  std::sort(by_changes.begin(), by_changes.end(), [](const PageSlot* a, const PageSlot* b) {
    return a->changes != b->changes ? a->changes > b->changes : a->id < b->id;
  });
  Json jpages = Json::array();
  std::size_t listed = 0;
  for (const PageSlot* p : by_changes) {
    const bool edge = in_graph.count(p->id) != 0;
    if (!edge && listed >= o.max_graph_pages) continue;
    ++listed;
    jpages.push_back({p->id, PageLabel(*p), p->type_name, p->size, p->changes, p->live, edge});
  }
  data["pages"] = std::move(jpages);
  data["total_pages"] = scan.pages_.size();
  Json jedges = Json::array();
  for (const auto& [k, e] : scan.edges_)
    jedges.push_back({e.parent, e.child, EdgeKindName(e.kind)});
  data["edges"] = std::move(jedges);

  const std::string title = o.title.empty() ? "mmsb report: " + log_path : o.title;
  std::string html = RenderPage(assets::k_log_report_html, assets::k_log_report_js,
                                data.dump(-1, ' ', false, Json::error_handler_t::replace), title);
  if (stats != nullptr) {
    stats->epochs = scan.epochs_.size();
    stats->first_epoch = first;
    stats->last_epoch = last;
    stats->epochs_per_column = width;
    stats->columns = ncols;
    stats->rows = rows.size();
    stats->pages = scan.pages_.size();
    stats->html_bytes = html.size();
    stats->problems = scan.problems_;
  }
  return html;
}

}  // namespace mmsb::report
