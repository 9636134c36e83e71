// State diff between two epochs (byte ranges and, with a type descriptor, fields), and the JSON
// forms of a diff and a replayed state.
#include <xxhash.h>

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "mmsb/replay.h"

namespace mmsb {

const char* PageDiffKindName(PageDiff::Kind k) {
  switch (k) {
    case PageDiff::Kind::kChanged:
      return "changed";
    case PageDiff::Kind::kAdded:
      return "added";
    case PageDiff::Kind::kRemoved:
      return "removed";
  }
  return "unknown";
}

namespace {

// Field-level changes of `runs` between `before` and `after` for a page laid out as `type`
// (repeated when the page holds several records).
void ResolveFields(const TypeDescriptor& type, const LogState& types,
                   std::span<const std::uint8_t> before, std::span<const std::uint8_t> after,
                   const std::vector<ByteRun>& runs, std::size_t max_fields, PageDiff* out) {
  if (type.size == 0) return;
  const TypeLookup lookup = [&types](std::string_view name) { return types.FindType(name); };
  const std::uint64_t whole = (after.size() / type.size) * type.size;
  const bool array = after.size() > type.size;
  for (const ByteRun& r : runs) {
    std::uint64_t pos = r.offset;
    const std::uint64_t end = std::uint64_t{r.offset} + r.length;
    while (pos < end) {
      if (out->fields.size() >= max_fields) {
        out->fields_truncated = true;
        return;
      }
      if (pos >= whole) {  // bytes past the last whole record: raw
        FieldChange fc;
        fc.path = fmt::format("+{}", pos);
        fc.offset = static_cast<std::uint32_t>(pos);
        fc.size = 1;
        fc.old_value = FormatScalar(ScalarKind::kBytes, &before[pos], 1);
        fc.new_value = FormatScalar(ScalarKind::kBytes, &after[pos], 1);
        out->fields.push_back(std::move(fc));
        ++pos;
        continue;
      }
      const std::uint64_t rec = pos / type.size;
      const auto inner = static_cast<std::uint32_t>(pos % type.size);
      auto f = ResolveField(type, inner, lookup);
      if (!f || f->size == 0 || f->offset > inner || inner - f->offset >= f->size) {
        ++pos;  // padding
        continue;
      }
      const std::uint64_t at = rec * type.size + f->offset;
      if (at + f->size > after.size()) {
        ++pos;
        continue;
      }
      FieldChange fc;
      fc.path = array ? fmt::format("[{}].{}", rec, f->path) : f->path;
      fc.offset = static_cast<std::uint32_t>(at);
      fc.size = f->size;
      fc.kind = f->kind;
      fc.old_value = FormatScalar(f->kind, &before[at], f->size);
      fc.new_value = FormatScalar(f->kind, &after[at], f->size);
      out->fields.push_back(std::move(fc));
      pos = at + f->size;
    }
  }
}

bool Selected(const ReplayedPage& p, const DiffOptions& o) {
  if (o.page && p.id != *o.page) return false;
  if (!o.type_name.empty() && p.type_name != o.type_name) return false;
  return true;
}

PageDiff Describe(const ReplayedPage& p, PageDiff::Kind kind) {
  PageDiff d;
  d.kind = kind;
  d.id = p.id;
  d.name = p.name;
  d.type_name = p.type_name;
  d.size = p.bytes.size();
  return d;
}

nlohmann::json EdgeJson(const EdgeInfo& e) {
  nlohmann::json j;
  j["parent"] = e.parent;
  j["child"] = e.child;
  j["kind"] = EdgeKindName(e.kind);
  j["policy"] = e.policy == DerivedPolicy::kLog ? "log" : "recompute_on_replay";
  j["src_offset"] = e.projection.src_offset;
  j["length"] = e.projection.length;
  j["dst_offset"] = e.projection.dst_offset;
  return j;
}

}  // namespace

StateDiff DiffStates(const LogState& from, const LogState& to, const DiffOptions& options) {
  StateDiff out;
  out.from = from.epoch;
  out.to = to.epoch;
  std::set<PageId> ids;
  for (const auto& [id, p] : from.pages) ids.insert(id);
  for (const auto& [id, p] : to.pages) ids.insert(id);
  std::vector<std::uint8_t> zeros;
  for (PageId id : ids) {
    const ReplayedPage* a = from.FindPage(id);
    const ReplayedPage* b = to.FindPage(id);
    if (!Selected(b ? *b : *a, options)) continue;
    if (b == nullptr) {
      out.pages.push_back(Describe(*a, PageDiff::Kind::kRemoved));
      continue;
    }
    std::span<const std::uint8_t> before;
    PageDiff d;
    if (a == nullptr) {
      d = Describe(*b, PageDiff::Kind::kAdded);
      if (zeros.size() < b->bytes.size()) zeros.assign(b->bytes.size(), 0);
      before = {zeros.data(), b->bytes.size()};
    } else {
      d = Describe(*b, PageDiff::Kind::kChanged);
      if (a->bytes.size() != b->bytes.size()) {
        // A page id never changes size; a log that says otherwise gets a whole-page change.
        d.runs.push_back({0, static_cast<std::uint32_t>(b->bytes.size())});
        d.changed_bytes = b->bytes.size();
        out.pages.push_back(std::move(d));
        continue;
      }
      before = a->bytes;
    }
    const Delta delta = Diff(id, 0, before, b->bytes);
    if (delta.empty() && d.kind == PageDiff::Kind::kChanged) continue;
    d.runs = delta.Runs();
    d.changed_bytes = delta.changed_bytes();
    const TypeDescriptor* type = b->type ? b->type.get() : to.FindType(b->type_name);
    if (type != nullptr) ResolveFields(*type, to, before, b->bytes, d.runs, options.max_fields, &d);
    out.pages.push_back(std::move(d));
  }
  auto key = [](const EdgeInfo& e) { return std::make_pair(e.child, e.parent); };
  std::set<std::pair<PageId, PageId>> ka, kb;
  for (const EdgeInfo& e : from.edges) ka.insert(key(e));
  for (const EdgeInfo& e : to.edges) kb.insert(key(e));
  for (const EdgeInfo& e : to.edges) {
    if (!ka.count(key(e))) out.edges_added.push_back(e);
  }
  for (const EdgeInfo& e : from.edges) {
    if (!kb.count(key(e))) out.edges_removed.push_back(e);
  }
  return out;
}

Expected<StateDiff> DiffEpochs(const std::string& path, Epoch from, Epoch to,
                               const DiffOptions& options, const ReplayOptions& replay,
                               ReplayReport* report) {
  const Epoch lo = std::min(from, to), hi = std::max(from, to);
  ReplayOptions o = replay;
  o.epoch = lo;
  LogState a;
  std::unique_ptr<Replayer> r;
  if (lo > 0) {
    auto opened = Replayer::Open(path, o);
    if (!opened.ok()) return opened.status();
    r = std::move(*opened);
    auto e = r->AdvanceTo(lo);
    if (!e.ok()) return e.status();
    if (r->report().last_log_epoch < lo) {
      return NotFound(
          fmt::format("epoch {} is beyond the end of log '{}' (last committed epoch {})", lo, path,
                      r->report().last_log_epoch));
    }
    a = r->state();
  } else {
    o.epoch = hi;
    auto opened = Replayer::Open(path, o);
    if (!opened.ok()) return opened.status();
    r = std::move(*opened);
  }
  auto e = r->AdvanceTo(hi);
  if (report) *report = r->report();
  if (!e.ok()) return e.status();
  if (r->report().last_log_epoch < hi) {
    return NotFound(fmt::format("epoch {} is beyond the end of log '{}' (last committed epoch {})",
                                hi, path, r->report().last_log_epoch));
  }
  // A filter that names nothing in either state is a question about something else: an error,
  // never an empty answer.
  const LogState& b = r->state();
  if (options.page && a.FindPage(*options.page) == nullptr && b.FindPage(*options.page) == nullptr)
    return NotFound(fmt::format("page {} exists neither at epoch {} nor at epoch {} of '{}'",
                                *options.page, lo, hi, path));
  auto has_type = [&](const LogState& st) {
    if (st.FindType(options.type_name) != nullptr) return true;
    for (const auto& [id, p] : st.pages)
      if (p.type_name == options.type_name) return true;
    return false;
  };
  if (!options.type_name.empty() && !has_type(a) && !has_type(b)) {
    return NotFound(fmt::format("no page type '{}' at epoch {} or {} of '{}'", options.type_name,
                                lo, hi, path));
  }
  if (from <= to) return DiffStates(a, r->state(), options);
  return DiffStates(r->state(), a, options);
}

std::string StateDiffToJson(const StateDiff& diff) {
  nlohmann::json j;
  j["format"] = "mmsb.diff/1";
  j["from"] = diff.from;
  j["to"] = diff.to;
  j["pages"] = nlohmann::json::array();
  for (const PageDiff& p : diff.pages) {
    nlohmann::json jp;
    jp["id"] = p.id;
    jp["name"] = p.name;
    jp["type"] = p.type_name;
    jp["change"] = PageDiffKindName(p.kind);
    jp["size"] = p.size;
    jp["changed_bytes"] = p.changed_bytes;
    jp["runs"] = nlohmann::json::array();
    for (const ByteRun& r : p.runs) jp["runs"].push_back({r.offset, r.length});
    jp["fields"] = nlohmann::json::array();
    for (const FieldChange& f : p.fields) {
      jp["fields"].push_back({{"path", f.path},
                              {"offset", f.offset},
                              {"size", f.size},
                              {"kind", ScalarKindName(f.kind)},
                              {"old", f.old_value},
                              {"new", f.new_value}});
    }
    jp["fields_truncated"] = p.fields_truncated;
    j["pages"].push_back(std::move(jp));
  }
  j["edges_added"] = nlohmann::json::array();
  for (const EdgeInfo& e : diff.edges_added) j["edges_added"].push_back(EdgeJson(e));
  j["edges_removed"] = nlohmann::json::array();
  for (const EdgeInfo& e : diff.edges_removed) j["edges_removed"].push_back(EdgeJson(e));
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string LogStateToJson(const LogState& state, const ReplayReport* report, bool with_bytes) {
  nlohmann::json j;
  j["format"] = "mmsb.state/1";
  j["epoch"] = state.epoch;
  j["unix_nanos"] = state.unix_nanos;
  j["page_id_high"] = state.page_id_high;
  j["state_xxh3"] = fmt::format("{:016x}", state.Hash());
  j["pages"] = nlohmann::json::array();
  for (const auto& [id, p] : state.pages) {
    nlohmann::json jp;
    jp["id"] = id;
    jp["name"] = p.name;
    jp["type"] = p.type_name;
    jp["location"] = LocationName(p.location);
    jp["static"] = p.is_static;
    jp["epoch"] = p.epoch;
    jp["size"] = p.bytes.size();
    jp["xxh3"] = fmt::format("{:016x}", XXH3_64bits(p.bytes.data(), p.bytes.size()));
    if (with_bytes) {
      std::string hex;
      hex.reserve(p.bytes.size() * 2);
      for (std::uint8_t b : p.bytes) fmt::format_to(std::back_inserter(hex), "{:02x}", b);
      jp["bytes"] = std::move(hex);
    }
    j["pages"].push_back(std::move(jp));
  }
  j["types"] = nlohmann::json::array();
  for (const auto& [name, t] : state.types) {
    nlohmann::json jt;
    jt["name"] = name;
    jt["size"] = t->size;
    jt["align"] = t->align;
    jt["fields"] = nlohmann::json::array();
    for (const FieldDescriptor& f : t->fields) {
      jt["fields"].push_back({{"name", f.name},
                              {"offset", f.offset},
                              {"size", f.size},
                              {"kind", ScalarKindName(f.kind)},
                              {"elem_size", f.elem_size},
                              {"extents", f.extents},
                              {"record_type", f.record_type}});
    }
    j["types"].push_back(std::move(jt));
  }
  j["edges"] = nlohmann::json::array();
  for (const EdgeInfo& e : state.edges) j["edges"].push_back(EdgeJson(e));
  if (report != nullptr) {
    nlohmann::json jr;
    jr["checkpoint_epoch"] = report->checkpoint_epoch;
    jr["checkpoint_file"] = report->checkpoint_file;
    jr["last_log_epoch"] = report->last_log_epoch;
    jr["epochs_applied"] = report->epochs_applied;
    jr["epochs_dropped"] = report->epochs_dropped;
    jr["deltas_applied"] = report->deltas_applied;
    jr["deltas_recomputed"] = report->deltas_recomputed;
    jr["records"] = report->records;
    jr["unknown_records"] = report->unknown_records;
    jr["bytes_read"] = report->bytes_read;
    jr["problems"] = nlohmann::json::array();
    for (const LogProblem& p : report->problems) {
      jr["problems"].push_back({{"kind", LogProblemKindName(p.kind)},
                                {"error", p.is_error()},
                                {"file", p.file},
                                {"offset", p.offset},
                                {"length", p.length},
                                {"epoch", p.epoch},
                                {"message", p.message}});
    }
    j["replay"] = std::move(jr);
  }
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace mmsb
