// `mmsb report LOG`: one pass over the log's records (LogReader) counts changed bytes per epoch
// and the leaf fields each delta touches; a second pass (Replayer) diffs the state across each
// epoch column with the runtime's DiffStates, only for the pages that changed in it.
#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "mmsb/graph.h"
#include "mmsb/log.h"
#include "mmsb/replay.h"
#include "mmsb/report/report.h"
#include "mmsb/type_desc.h"

#include "detail_chunks.h"
#include "html.h"
#include "ir_sites.h"
#include "log_scan.h"

namespace mmsb::report {

namespace {

using Json = nlohmann::json;

// Scrubber bar segments per column: the sites that committed the most bytes there.
constexpr std::size_t kSitesPerColumn = 4;

std::string PageLabel(const PageSlot& p) {
  return p.name.empty() ? fmt::format("page {}", p.id) : p.name;
}

}  // namespace

Expected<std::string> BuildLogReport(const std::string& log_path, const LogReportOptions& o,
                                     LogReportStats* stats) {
  Scan scan;
  if (Status s = scan.Run(log_path, o.mode); !s.ok()) return s;
  if (scan.epochs.empty()) {
    return NotFound("log '" + log_path + "' has no committed epoch: nothing to report");
  }
  const Epoch first = scan.epochs.front().epoch;
  const Epoch last = scan.epochs.back().epoch;
  const std::size_t max_columns = std::max<std::size_t>(o.max_columns, 1);
  std::uint64_t width = 1;
  while (last / width - first / width + 1 > max_columns) width *= 2;
  const std::uint64_t base = first / width;
  const std::size_t ncols = static_cast<std::size_t>(last / width - base + 1);
  auto col_of = [&](Epoch e) { return static_cast<std::size_t>(e / width - base); };

  // Columns: epochs present, bytes, and which epochs (and so hits) fall in them.
  struct Column {
    Epoch first = 0, last = 0;
    std::uint64_t bytes = 0;
    std::uint64_t epochs = 0;
    std::uint32_t epoch_begin = 0, epoch_end = 0;  // scan.epochs indices
  };
  std::vector<Column> cols(ncols);
  for (std::uint32_t i = 0; i < scan.epochs.size(); ++i) {
    const EpochRec& r = scan.epochs[i];
    Column& c = cols[col_of(r.epoch)];
    if (c.epochs == 0) {
      c.first = r.epoch;
      c.epoch_begin = i;
    }
    c.last = r.epoch;
    c.bytes += r.bytes;
    ++c.epochs;
    c.epoch_end = i + 1;
  }
  // Rows: collapsed field paths, the busiest max_rows; element rows under arrays.
  std::map<std::string, std::uint64_t> row_hits;
  for (const Leaf& l : scan.leaves) row_hits[l.row] += l.hits;
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
  std::vector<int> leaf_row(scan.leaves.size(), -1), leaf_child(scan.leaves.size(), -1);
  {
    std::map<std::string, std::vector<std::uint32_t>> by_row;
    for (std::uint32_t i = 0; i < scan.leaves.size(); ++i) {
      const Leaf& l = scan.leaves[i];
      auto it = row_index.find(l.row);
      leaf_row[i] = it == row_index.end() ? other_row : it->second;
      if (it != row_index.end() && l.full != l.row) by_row[l.row].push_back(i);
    }
    const std::size_t parents = rows.size();
    std::vector<Row> children;
    // Element order ("x[2]" before "x[10]"): shorter paths first, then by text.
    auto natural = [&](std::uint32_t a, std::uint32_t b) {
      const std::string& x = scan.leaves[a].full;
      const std::string& y = scan.leaves[b].full;
      return x.size() != y.size() ? x.size() < y.size() : x < y;
    };
    for (auto& [row, leaves] : by_row) {
      // The busiest max_children elements, shown in element order.
      std::sort(leaves.begin(), leaves.end(), [&](std::uint32_t a, std::uint32_t b) {
        if (scan.leaves[a].hits != scan.leaves[b].hits)
          return scan.leaves[a].hits > scan.leaves[b].hits;
        return natural(a, b);
      });
      std::sort(leaves.begin(), leaves.begin() + std::min(leaves.size(), o.max_children), natural);
      const int parent = row_index[row];
      for (std::size_t k = 0; k < leaves.size() && k < o.max_children; ++k) {
        leaf_child[leaves[k]] = static_cast<int>(parents + children.size());
        children.push_back(
            {scan.leaves[leaves[k]].full, scan.leaves[leaves[k]].full, parent, false});
      }
      if (leaves.size() > o.max_children) {
        const int other = static_cast<int>(parents + children.size());
        children.push_back({row + " (other elements)", "", parent, false});
        for (std::size_t k = o.max_children; k < leaves.size(); ++k) leaf_child[leaves[k]] = other;
      }
    }
    for (Row& c : children) rows.push_back(std::move(c));
  }

  // Cells (sparse), each with the last epoch in its column that changed the row and what
  // committed it (the cell's blame), and per column the pages to embed: first one page for every
  // row touched, then the most changed. Dense per-column scratch arrays, reset through the lists
  // of what was touched, so the loop allocates nothing per epoch.
  struct Cell {
    int row;
    std::uint32_t col;
    std::uint64_t n;
    Epoch last;
    std::uint32_t site;
  };
  std::vector<Cell> cells;
  std::vector<std::vector<std::uint32_t>> col_pages(ncols);  // pages to embed, in priority order
  std::vector<std::vector<std::uint32_t>> col_changed(ncols);
  // Per column: bytes and epochs by site, the biggest first (the scrubber's stacked bars).
  std::vector<std::vector<std::array<std::uint64_t, 3>>> col_sites(ncols);
  {
    std::vector<std::uint64_t> row_n(rows.size(), 0);
    std::vector<Epoch> row_last(rows.size(), 0);
    std::vector<std::uint32_t> row_site(rows.size(), 0);
    std::vector<int> rows_touched;
    std::vector<std::uint64_t> page_n(scan.pages.size(), 0);
    std::vector<std::uint8_t> page_chosen(scan.pages.size(), 0);
    std::vector<std::uint32_t> pages_touched;
    std::vector<std::array<std::uint64_t, 3>> site_acc(scan.sites.size(), {0, 0, 0});
    std::vector<std::uint32_t> sites_touched;
    for (std::size_t c = 0; c < ncols; ++c) {
      std::size_t chosen = 0;
      std::uint32_t hit =
          cols[c].epoch_begin == 0 ? 0 : scan.epochs[cols[c].epoch_begin - 1].hit_end;
      for (std::uint32_t ei = cols[c].epoch_begin; ei < cols[c].epoch_end; ++ei) {
        const EpochRec& er = scan.epochs[ei];
        if (site_acc[er.site][2]++ == 0) sites_touched.push_back(er.site);
        site_acc[er.site][0] = er.site;
        site_acc[er.site][1] += er.bytes;
        for (; hit < er.hit_end; ++hit) {
          const Hit& h = scan.hits[hit];
          if (page_n[h.page]++ == 0) pages_touched.push_back(h.page);
          if (h.leaf == kNoLeaf) continue;
          for (int r : {leaf_row[h.leaf], leaf_child[h.leaf]}) {
            if (r < 0) continue;
            if (row_n[r]++ == 0) {
              rows_touched.push_back(r);
              if (chosen < o.pages_per_column && !page_chosen[h.page]) {
                page_chosen[h.page] = 1;
                ++chosen;
                col_pages[c].push_back(h.page);
              }
            }
            row_last[r] = er.epoch;
            row_site[r] = er.site;
          }
        }
      }
      std::sort(rows_touched.begin(), rows_touched.end());
      for (int r : rows_touched) {
        cells.push_back({r, static_cast<std::uint32_t>(c), row_n[r], row_last[r], row_site[r]});
        row_n[r] = 0;
      }
      rows_touched.clear();
      std::sort(pages_touched.begin(), pages_touched.end(), [&](std::uint32_t a, std::uint32_t b) {
        return page_n[a] != page_n[b] ? page_n[a] > page_n[b] : a < b;
      });
      for (std::uint32_t page : pages_touched) {
        col_changed[c].push_back(page);
        if (chosen < o.pages_per_column && !page_chosen[page]) {
          page_chosen[page] = 1;
          ++chosen;
          col_pages[c].push_back(page);
        }
      }
      for (std::uint32_t page : pages_touched) page_n[page] = page_chosen[page] = 0;
      pages_touched.clear();
      for (std::uint32_t site : sites_touched) col_sites[c].push_back(site_acc[site]);
      std::sort(col_sites[c].begin(), col_sites[c].end(), [](const auto& a, const auto& b) {
        return a[1] != b[1] ? a[1] > b[1] : a[0] < b[0];
      });
      for (std::uint32_t site : sites_touched) site_acc[site] = {0, 0, 0};
      sites_touched.clear();
    }
  }
  std::sort(cells.begin(), cells.end(), [](const Cell& a, const Cell& b) {
    return a.row != b.row ? a.row < b.row : a.col < b.col;
  });

  // Pass 2: the state diff across each column, for the chosen pages. The diffs go into
  // compressed chunks (DetailChunks) the page inflates when a column is shown.
  DetailChunks chunks;
  std::vector<int> col_chunk(ncols, -1);
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
      if (cols[c].epochs == 0) continue;
      auto e = rp.AdvanceTo(cols[c].last);
      if (!e.ok()) return e.status();
      const LogState& cur = rp.state();
      LogState a, b;
      a.epoch = cols[c].first - 1;
      b.epoch = cols[c].last;
      a.types = cur.types;
      b.types = cur.types;
      for (std::uint32_t slot : col_pages[c]) {
        const PageId id = scan.pages[slot].id;
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
      col_chunk[c] = chunks.Add(c, detail.dump(-1, ' ', false, Json::error_handler_t::replace));
      // The snapshot moves to the column's end for every page that changed in it.
      for (std::uint32_t slot : col_changed[c]) {
        const PageId id = scan.pages[slot].id;
        if (const ReplayedPage* p = cur.FindPage(id)) {
          prev[id] = *p;
        } else {
          prev.erase(id);
        }
      }
    }
  }

  Json data;
  data["format"] = "mmsb.report/2";
  data["log"] = log_path;
  data["first_epoch"] = first;
  data["last_epoch"] = last;
  data["epochs"] = scan.epochs.size();
  data["width"] = width;
  data["base"] = base * width;
  if (Status st = chunks.Finish(); !st.ok()) return st;
  Json jcols = Json::array();
  for (std::size_t c = 0; c < ncols; ++c) {
    Json segs = Json::array();
    for (std::size_t k = 0; k < col_sites[c].size() && k < kSitesPerColumn; ++k)
      segs.push_back({col_sites[c][k][0], col_sites[c][k][1], col_sites[c][k][2]});
    jcols.push_back({cols[c].first, cols[c].last, cols[c].bytes, cols[c].epochs, std::move(segs),
                     col_chunk[c]});
  }
  data["columns"] = std::move(jcols);
  Json jsites = Json::array();
  for (const SiteRec& st : scan.sites)
    jsites.push_back({st.label, st.kind, st.function, st.file, st.line, st.epochs, st.bytes});
  data["sites"] = std::move(jsites);
  Json jruns = Json::array();
  for (const auto& r : scan.runs)
    jruns.push_back({r.epoch_base, r.unix_nanos, r.build_id, r.executable});
  data["runs"] = std::move(jruns);
  Json jrows = Json::array();
  for (const Row& r : rows) jrows.push_back({r.label, r.key, r.parent});
  data["rows"] = std::move(jrows);
  Json jcells = Json::array();
  for (const Cell& cell : cells)
    jcells.push_back({cell.row, cell.col, cell.n, cell.last, cell.site});
  data["cells"] = std::move(jcells);
  data["chunks"] = std::move(chunks.encoded);
  // Pages: those in edges, then the most changed, up to max_graph_pages.
  std::set<PageId> in_graph;
  for (const auto& [k, e] : scan.edges) {
    in_graph.insert(e.parent);
    in_graph.insert(e.child);
  }
  std::vector<const PageSlot*> by_changes;
  by_changes.reserve(scan.pages.size());
  for (const PageSlot& p : scan.pages) by_changes.push_back(&p);
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
  data["total_pages"] = scan.pages.size();
  Json jedges = Json::array();
  for (const auto& [k, e] : scan.edges) jedges.push_back({e.parent, e.child, EdgeKindName(e.kind)});
  data["edges"] = std::move(jedges);
  if (!o.ir_store.empty()) {
    auto ir =
        LookUpSites(scan.sites, scan.runs.empty() ? 0 : scan.runs.back().unix_nanos, o, stats);
    if (!ir.ok()) {
      return Status(ir.status().code(), "--store " + o.ir_store + ": " + ir.status().message());
    }
    data["ir"] = std::move(*ir);
  }

  const std::string title = o.title.empty() ? "mmsb report: " + log_path : o.title;
  std::string html = RenderPage(assets::kLogReportHtml, assets::kLogReportJs,
                                data.dump(-1, ' ', false, Json::error_handler_t::replace), title);
  if (stats != nullptr) {
    stats->epochs = scan.epochs.size();
    stats->first_epoch = first;
    stats->last_epoch = last;
    stats->epochs_per_column = width;
    stats->columns = ncols;
    stats->rows = rows.size();
    stats->pages = scan.pages.size();
    stats->html_bytes = html.size();
    stats->problems = scan.problems;
  }
  return html;
}

}  // namespace mmsb::report
