#include "mmsb/ir/report.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "mmsb/ir/demangle.h"

namespace mmsb::ir {

namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kReset = "\033[0m";
constexpr const char* kBold = "\033[1m";
constexpr const char* kRed = "\033[31m";
constexpr const char* kGreen = "\033[32m";
constexpr const char* kYellow = "\033[33m";
constexpr const char* kCyan = "\033[36m";

std::string Paint(const RenderOptions& o, const char* color, const std::string& s) {
  if (!o.color) return s;
  return std::string(color) + s + kReset;
}

std::string Time(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string Hex64(std::uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

// Long names (template instantiations) shortened in the middle so that tables stay readable;
// JSON and `show` always give them whole.
std::string Elide(const std::string& s, size_t max = 100) {
  if (s.size() <= max) return s;
  const size_t head = max * 2 / 3;
  const size_t tail = max - head - 3;
  return s.substr(0, head) + "..." + s.substr(s.size() - tail);
}

std::string Signed(std::int64_t v) { return (v > 0 ? "+" : "") + std::to_string(v); }

std::string Display(const std::string& path, const RenderOptions& o) {
  if (o.base_dir.empty() || path.empty()) return path;
  std::filesystem::path p(path), base(o.base_dir);
  auto rel = p.lexically_relative(base);
  if (rel.empty() || rel.begin()->string() == "..") return path;
  return rel.string();
}

// A table with left-aligned columns separated by two spaces. Colour codes do not count
// toward the width.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back({std::move(header), {}}); }
  void Add(std::vector<std::string> cells, std::vector<const char*> colors = {}) {
    rows_.push_back({std::move(cells), std::move(colors)});
  }
  std::string Render(const RenderOptions& o) const {
    std::vector<size_t> width;
    for (const auto& r : rows_) {
      if (width.size() < r.cells.size()) width.resize(r.cells.size(), 0);
      for (size_t i = 0; i < r.cells.size(); ++i) width[i] = std::max(width[i], r.cells[i].size());
    }
    std::string out;
    for (size_t ri = 0; ri < rows_.size(); ++ri) {
      const auto& r = rows_[ri];
      std::string line;
      for (size_t i = 0; i < r.cells.size(); ++i) {
        std::string cell = r.cells[i];
        const bool last = i + 1 == r.cells.size();
        if (!last) cell.resize(width[i], ' ');
        const char* color = i < r.colors.size() ? r.colors[i] : nullptr;
        if (ri == 0) color = kBold;
        line += color != nullptr ? Paint(o, color, cell) : cell;
        if (!last) line += "  ";
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n";
    }
    return out;
  }

 private:
  struct Row {
    std::vector<std::string> cells;
    std::vector<const char*> colors;
  };
  std::vector<Row> rows_;
};

Json VersionJson(const FunctionVersion& v) {
  Json j;
  j["tu"] = v.tu_source;
  j["output"] = v.tu_output;
  j["name"] = v.name;
  j["demangled"] = Demangle(v.name);
  j["stage"] = StageName(v.stage);
  j["linkage"] = v.linkage;
  j["file"] = v.file.empty() ? Json(nullptr) : Json(v.file);
  j["line"] = v.line == 0 ? Json(nullptr) : Json(v.line);
  j["instructions"] = v.instructions;
  j["blocks"] = v.blocks;
  j["structural_hash"] = Hex64(v.structural_hash);
  j["text_hash"] = HexOf(v.text_hash);
  j["page_types"] = v.page_types;
  j["captured_in"] = v.captured_in;
  return j;
}

std::string Location(const FunctionVersion& v, const RenderOptions& o) {
  if (v.file.empty()) return "-";
  return Display(v.file, o) + (v.line != 0 ? ":" + std::to_string(v.line) : "");
}

std::string Pages(const std::vector<std::string>& pages) {
  if (pages.empty()) return "-";
  std::string s;
  for (const std::string& p : pages) s += (s.empty() ? "" : ",") + p;
  return s;
}

}  // namespace

std::string ShortCompiler(const std::string& full) {
  const size_t at = full.find("clang version ");
  if (at == std::string::npos) return full;
  size_t end = full.find_first_of(" (", at + 14);
  std::string v =
      full.substr(at + 14, end == std::string::npos ? std::string::npos : end - at - 14);
  return "clang " + v;
}

std::string RenderBuilds(const std::vector<GenerationInfo>& gens, const RenderOptions& o) {
  if (gens.empty()) return "no generations yet: compile with the plugin to capture one\n";
  Table t({"gen", "opened", "label", "compiler", "flags", "TUs", "functions", "changed pre",
           "changed post"});
  for (const GenerationInfo& g : gens) {
    std::string label = g.label.empty() ? "-" : g.label;
    if (g.is_explicit) label += " (explicit)";
    if (g.is_open) label += " (open)";
    t.Add({std::to_string(g.id), Time(g.opened_at_ms), label, ShortCompiler(g.compiler),
           g.flags_hash.substr(0, 8) + (g.mixed_flags ? " (mixed)" : ""),
           std::to_string(g.own_tus) + "/" + std::to_string(g.visible_tus),
           std::to_string(g.functions), g.changed_pre ? std::to_string(*g.changed_pre) : "-",
           g.changed_post ? std::to_string(*g.changed_post) : "-"});
  }
  return t.Render(o) +
         "(TUs: compiled in this generation / seen by it, the rest inherited; changed: functions "
         "added, removed or changed since the previous generation)\n";
}

std::string RenderBuildsJson(const std::vector<GenerationInfo>& gens) {
  Json arr = Json::array();
  for (const GenerationInfo& g : gens) {
    Json j;
    j["id"] = g.id;
    j["opened_at_ms"] = g.opened_at_ms;
    j["label"] = g.label.empty() ? Json(nullptr) : Json(g.label);
    j["explicit"] = g.is_explicit;
    j["open"] = g.is_open;
    j["compiler"] = g.compiler;
    j["flags_hash"] = g.flags_hash;
    j["mixed_flags"] = g.mixed_flags;
    j["own_tus"] = g.own_tus;
    j["visible_tus"] = g.visible_tus;
    j["functions"] = g.functions;
    j["changed_pre"] = g.changed_pre ? Json(*g.changed_pre) : Json(nullptr);
    j["changed_post"] = g.changed_post ? Json(*g.changed_post) : Json(nullptr);
    arr.push_back(std::move(j));
  }
  Json root;
  root["format"] = "mmsb.ir-builds/1";
  root["generations"] = std::move(arr);
  return root.dump(2) + "\n";
}

namespace {

// Groups both stages of each (TU, function).
struct Pair {
  const FunctionVersion* pre = nullptr;
  const FunctionVersion* post = nullptr;
  const FunctionVersion& any() const { return pre != nullptr ? *pre : *post; }
};

std::vector<Pair> PairStages(const std::vector<FunctionVersion>& versions) {
  std::vector<Pair> out;
  std::map<std::int64_t, size_t> index;
  for (const FunctionVersion& v : versions) {
    auto [it, inserted] = index.emplace(v.func_id, out.size());
    if (inserted) out.emplace_back();
    Pair& p = out[it->second];
    (v.stage == Stage::kPre ? p.pre : p.post) = &v;
  }
  return out;
}

}  // namespace

std::string RenderFunctions(const std::vector<FunctionVersion>& versions, const RenderOptions& o) {
  Table t({"TU", "function", "linkage", "pre i/b", "post i/b", "pages", "location"});
  for (const Pair& p : PairStages(versions)) {
    const FunctionVersion& v = p.any();
    auto ib = [](const FunctionVersion* x) {
      return x == nullptr ? std::string("-")
                          : std::to_string(x->instructions) + "/" + std::to_string(x->blocks);
    };
    t.Add({Display(v.tu_source, o), Elide(Demangle(v.name)), v.linkage, ib(p.pre), ib(p.post),
           Pages(v.page_types), Location(v, o)});
  }
  return t.Render(o);
}

std::string RenderFunctionsJson(std::int64_t generation,
                                const std::vector<FunctionVersion>& versions) {
  Json arr = Json::array();
  for (const Pair& p : PairStages(versions)) {
    const FunctionVersion& v = p.any();
    Json j;
    j["tu"] = v.tu_source;
    j["output"] = v.tu_output;
    j["name"] = v.name;
    j["demangled"] = Demangle(v.name);
    j["linkage"] = v.linkage;
    j["file"] = v.file.empty() ? Json(nullptr) : Json(v.file);
    j["line"] = v.line == 0 ? Json(nullptr) : Json(v.line);
    j["page_types"] = v.page_types;
    j["pre"] = p.pre != nullptr ? VersionJson(*p.pre) : Json(nullptr);
    j["post"] = p.post != nullptr ? VersionJson(*p.post) : Json(nullptr);
    arr.push_back(std::move(j));
  }
  Json root;
  root["format"] = "mmsb.ir-functions/1";
  root["generation"] = generation;
  root["functions"] = std::move(arr);
  return root.dump(2) + "\n";
}

namespace {

// A diff built by hand (not by DiffGenerations) has no groups yet.
GenerationDiff WithGroups(const GenerationDiff& d) {
  GenerationDiff g = d;
  g.groups = GroupChanges(g.changes, /*by_tu=*/false);
  return g;
}

}  // namespace

std::string RenderDiff(const GenerationDiff& diff, bool stat_only, const RenderOptions& o) {
  if (diff.groups.empty() && !diff.changes.empty())
    return RenderDiff(WithGroups(diff), stat_only, o);
  const GenerationDiff& d = diff;
  std::string out;
  out += Paint(o, kBold,
               "mmsb ir diff " + std::to_string(d.from) + " " + std::to_string(d.to) + " (stage " +
                   StageName(d.stage) + ")") +
         ": " + std::to_string(d.GroupCount(ChangeKind::kChanged)) + " changed, " +
         std::to_string(d.GroupCount(ChangeKind::kAdded)) + " added, " +
         std::to_string(d.GroupCount(ChangeKind::kRemoved)) + " removed, " +
         std::to_string(d.GroupCount(ChangeKind::kRenamed)) + " renamed, " +
         std::to_string(d.GroupCount(ChangeKind::kMoved)) + " moved, " +
         std::to_string(d.unchanged) + " unchanged; instructions " + Signed(d.InstructionDelta()) +
         ", blocks " + Signed(d.BlockDelta()) + "\n";
  if (d.changes.empty()) return out;
  if (d.groups.size() < d.changes.size()) {
    out += "(" + std::to_string(d.changes.size()) + " changes in " +
           std::to_string(d.groups.size()) +
           " rows: an identical change in several TUs is one row; --by-tu lists each TU; "
           "instruction totals count every TU)\n";
  }
  out += "\n";
  Table t({"kind", "insts", "blocks", "function", "TU"});
  for (const ChangeGroup& g : d.groups) {
    const FunctionChange& c = d.changes[g.members[0]];
    auto counts = [&](auto field, std::int64_t delta) {
      std::string s = (c.before ? std::to_string(field(*c.before)) : std::string("-")) + " -> " +
                      (c.after ? std::to_string(field(*c.after)) : std::string("-"));
      if (delta != 0) s += " (" + Signed(delta) + ")";
      return s;
    };
    std::string name = Elide(Demangle(c.any().name));
    std::string tu = g.members.size() > 1 ? std::to_string(g.members.size()) + " TUs"
                                          : Display(c.any().tu_source, o);
    // A rename or move has both versions; the old one's name or TU goes in front.
    if (c.kind == ChangeKind::kRenamed && c.before)
      name.insert(0, Elide(Demangle(c.before->name)) + " -> ");
    if (c.kind == ChangeKind::kMoved && g.members.size() == 1 && c.before)
      tu.insert(0, Display(c.before->tu_source, o) + " -> ");
    std::string kind = ChangeKindName(c.kind);
    if ((c.kind == ChangeKind::kRenamed || c.kind == ChangeKind::kMoved) && c.text_changed)
      kind += "+changed";
    const char* color = c.kind == ChangeKind::kAdded     ? kGreen
                        : c.kind == ChangeKind::kRemoved ? kRed
                        : c.kind == ChangeKind::kChanged ? kYellow
                                                         : kCyan;
    t.Add({kind,
           counts([](const FunctionVersion& v) { return v.instructions; }, c.InstructionDelta()),
           counts([](const FunctionVersion& v) { return v.blocks; }, c.BlockDelta()), name, tu},
          {color});
  }
  out += t.Render(o);
  if (stat_only) return out;
  for (const ChangeGroup& g : d.groups) {
    const FunctionChange& c = d.changes[g.members[0]];
    if (c.unified.empty()) continue;
    out += "\n";
    const std::string more =
        g.members.size() > 1 ? " (and " + std::to_string(g.members.size() - 1) + " more TUs)" : "";
    auto header = [&](const std::optional<FunctionVersion>& v, std::int64_t gen) {
      if (!v) return std::string("/dev/null");
      return Display(v->tu_source, o) + more + ": " + Demangle(v->name) + " [" + v->name + "] @" +
             std::to_string(gen) + " " + StageName(d.stage);
    };
    out += Paint(o, kBold, "--- " + header(c.before, d.from)) + "\n";
    out += Paint(o, kBold, "+++ " + header(c.after, d.to)) + "\n";
    size_t begin = 0;
    while (begin < c.unified.size()) {
      size_t end = c.unified.find('\n', begin);
      if (end == std::string::npos) end = c.unified.size();
      const std::string line = c.unified.substr(begin, end - begin);
      const char* color = line.rfind("@@", 0) == 0 ? kCyan
                          : line[0] == '-'         ? kRed
                          : line[0] == '+'         ? kGreen
                                                   : nullptr;
      out += (color != nullptr ? Paint(o, color, line) : line) + "\n";
      begin = end + 1;
    }
  }
  return out;
}

std::string RenderDiffJson(const GenerationDiff& diff, bool with_text) {
  if (diff.groups.empty() && !diff.changes.empty())
    return RenderDiffJson(WithGroups(diff), with_text);
  const GenerationDiff& d = diff;
  Json root;
  root["format"] = "mmsb.ir-diff/1";
  root["from"] = d.from;
  root["to"] = d.to;
  root["stage"] = StageName(d.stage);
  Json summary;
  for (ChangeKind k : {ChangeKind::kChanged, ChangeKind::kAdded, ChangeKind::kRemoved,
                       ChangeKind::kRenamed, ChangeKind::kMoved})
    summary[ChangeKindName(k)] = d.GroupCount(k);
  summary["unchanged"] = d.unchanged;
  summary["tu_changes"] = d.changes.size();
  summary["instructions_delta"] = d.InstructionDelta();
  summary["blocks_delta"] = d.BlockDelta();
  root["summary"] = std::move(summary);
  Json arr = Json::array();
  for (const ChangeGroup& g : d.groups) {
    const FunctionChange& c = d.changes[g.members[0]];
    const FunctionVersion& v = c.any();
    Json j;
    j["kind"] = ChangeKindName(c.kind);
    j["tu"] = v.tu_source;
    j["output"] = v.tu_output;
    Json tus = Json::array();
    for (size_t m : g.members) tus.push_back(d.changes[m].any().tu_source);
    j["tu_count"] = g.members.size();
    j["tus"] = std::move(tus);
    j["name"] = v.name;
    j["demangled"] = Demangle(v.name);
    j["old_tu"] =
        c.kind == ChangeKind::kMoved && c.before ? Json(c.before->tu_source) : Json(nullptr);
    j["old_name"] =
        c.kind == ChangeKind::kRenamed && c.before ? Json(c.before->name) : Json(nullptr);
    j["text_changed"] = c.text_changed;
    auto counts = [&](std::uint32_t FunctionVersion::* field, std::int64_t delta) {
      Json x;
      x["before"] = c.before ? Json((*c.before).*field) : Json(nullptr);
      x["after"] = c.after ? Json((*c.after).*field) : Json(nullptr);
      x["delta"] = delta;
      return x;
    };
    j["instructions"] = counts(&FunctionVersion::instructions, c.InstructionDelta());
    j["blocks"] = counts(&FunctionVersion::blocks, c.BlockDelta());
    Json sh;
    sh["before"] = c.before ? Json(Hex64(c.before->structural_hash)) : Json(nullptr);
    sh["after"] = c.after ? Json(Hex64(c.after->structural_hash)) : Json(nullptr);
    j["structural_hash"] = std::move(sh);
    j["linkage"] = v.linkage;
    j["file"] = v.file.empty() ? Json(nullptr) : Json(v.file);
    j["line"] = v.line == 0 ? Json(nullptr) : Json(v.line);
    j["page_types"] = c.PageTypes();
    j["diff"] = with_text ? Json(c.unified) : Json(nullptr);
    arr.push_back(std::move(j));
  }
  root["functions"] = std::move(arr);
  return root.dump(2) + "\n";
}

std::string RenderShow(const FunctionVersion& v, const std::string& text, const RenderOptions& o) {
  std::string out;
  auto line = [&](const std::string& s) { out += Paint(o, kBold, "; " + s) + "\n"; };
  line(Demangle(v.name) + " [" + v.name + "]");
  line("TU " + Display(v.tu_source, o) + ", stage " + StageName(v.stage) + ", captured in " +
       std::to_string(v.captured_in));
  line(v.linkage + ", " + std::to_string(v.instructions) + " instructions, " +
       std::to_string(v.blocks) + " blocks, defined at " + Location(v, o));
  line("structural hash " + Hex64(v.structural_hash) + ", text " +
       HexOf(v.text_hash).substr(0, 16) + ", writes pages: " + Pages(v.page_types));
  out += text;
  if (!text.empty() && text.back() != '\n') out += '\n';
  return out;
}

std::vector<HistoryRow> HistoryRows(const std::vector<CaptureVersion>& captures) {
  std::vector<HistoryRow> rows;
  const FunctionVersion* last = nullptr;
  for (const CaptureVersion& cv : captures) {
    HistoryRow r;
    r.generation = cv.generation;
    r.captured_at_ms = cv.captured_at_ms;
    if (!cv.version) {
      if (last == nullptr) continue;
      r.change = "removed";
      r.instruction_delta = -static_cast<std::int64_t>(last->instructions);
      r.block_delta = -static_cast<std::int64_t>(last->blocks);
      last = nullptr;
      rows.push_back(std::move(r));
      continue;
    }
    const FunctionVersion& v = *cv.version;
    if (last != nullptr && last->text_hash == v.text_hash) continue;
    r.change = last == nullptr ? "added" : "changed";
    r.instruction_delta = static_cast<std::int64_t>(v.instructions) -
                          (last != nullptr ? static_cast<std::int64_t>(last->instructions) : 0);
    r.block_delta = static_cast<std::int64_t>(v.blocks) -
                    (last != nullptr ? static_cast<std::int64_t>(last->blocks) : 0);
    r.version = v;
    last = &*cv.version;
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string RenderHistory(const Store::FunctionId& id, Stage stage,
                          const std::vector<HistoryRow>& rows, const RenderOptions& o) {
  std::string out = Paint(o, kBold,
                          Demangle(id.name) + " [" + id.name + "] in " + Display(id.tu_source, o) +
                              ", stage " + StageName(stage)) +
                    "\n";
  Table t({"gen", "captured", "change", "insts", "blocks", "location"});
  for (const HistoryRow& r : rows) {
    const char* color = r.change == "added" ? kGreen : r.change == "removed" ? kRed : kYellow;
    auto num = [&](std::uint32_t value, std::int64_t delta) {
      std::string s = r.version ? std::to_string(value) : std::string("-");
      if (delta != 0 && r.change != "added") s += " (" + Signed(delta) + ")";
      return s;
    };
    t.Add({std::to_string(r.generation), Time(r.captured_at_ms), r.change,
           num(r.version ? r.version->instructions : 0, r.instruction_delta),
           num(r.version ? r.version->blocks : 0, r.block_delta),
           r.version ? Location(*r.version, o) : "-"},
          {nullptr, nullptr, color});
  }
  return out + t.Render(o);
}

std::string RenderHistoryJson(Stage stage, const std::vector<FunctionHistory>& histories) {
  Json root;
  root["format"] = "mmsb.ir-history/1";
  root["stage"] = StageName(stage);
  Json functions = Json::array();
  for (const FunctionHistory& h : histories) {
    Json f;
    f["tu"] = h.id.tu_source;
    f["name"] = h.id.name;
    f["demangled"] = Demangle(h.id.name);
    Json arr = Json::array();
    for (const HistoryRow& r : h.rows) {
      Json j;
      j["generation"] = r.generation;
      j["captured_at_ms"] = r.captured_at_ms;
      j["change"] = r.change;
      j["instructions"] = r.version ? Json(r.version->instructions) : Json(nullptr);
      j["blocks"] = r.version ? Json(r.version->blocks) : Json(nullptr);
      j["instructions_delta"] = r.instruction_delta;
      j["blocks_delta"] = r.block_delta;
      j["text_hash"] = r.version ? Json(HexOf(r.version->text_hash)) : Json(nullptr);
      arr.push_back(std::move(j));
    }
    f["changes"] = std::move(arr);
    functions.push_back(std::move(f));
  }
  root["functions"] = std::move(functions);
  return root.dump(2) + "\n";
}

}  // namespace mmsb::ir
