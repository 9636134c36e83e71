// `mmsb ir report`: the functions of generation B (one cell per function, however many TUs
// define it), their change since A at both stages, and their instruction counts over the
// generations the store keeps.
#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "mmsb/ir/demangle.h"
#include "mmsb/ir/diff.h"
#include "mmsb/ir/gate.h"
#include "mmsb/report/report.h"

#include "html.h"

namespace mmsb::report {

namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxTrendGenerations = 60;

struct Fn {
  std::string name;
  std::string tu;
  std::uint32_t pre = 0;
  std::uint32_t post = 0;
  int tus = 0;
  std::set<std::string> pages;
  std::string kind;  // "" unchanged, else ChangeKindName (+changed)
  std::int64_t delta = 0;
  std::string old_name;
};

std::string Cut(const std::string& s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t end = s.rfind('\n', max);
  if (end == std::string::npos) end = max;
  return s.substr(0, end) + "\n... (" + std::to_string(s.size() - end) +
         " more bytes: mmsb ir diff shows all)\n";
}

}  // namespace

Expected<std::string> BuildIrReport(ir::Store& store, std::int64_t from, std::int64_t to,
                                    const IrReportOptions& o, IrReportStats* stats) {
  auto gens = store.Generations(false);
  if (!gens.ok()) return gens.status();
  for (std::int64_t g : {from, to}) {
    if (std::none_of(gens->begin(), gens->end(),
                     [&](const ir::GenerationInfo& i) { return i.id == g; })) {
      return NotFound("no generation " + std::to_string(g) + " in " + store.path());
    }
  }
  auto versions = store.Functions(to, std::nullopt);
  if (!versions.ok()) return versions.status();

  std::map<std::string, Fn> fns;
  for (const ir::FunctionVersion& v : *versions) {
    Fn& f = fns[v.name];
    f.name = v.name;
    if (f.tu.empty()) f.tu = v.tu_source;
    if (v.stage == ir::Stage::kPre) {
      f.pre = v.instructions;
      ++f.tus;
    } else {
      f.post = v.instructions;
    }
    f.pages.insert(v.page_types.begin(), v.page_types.end());
  }

  // Changes at both stages; the pre change decides the colour.
  Json diffs = Json::object();
  std::size_t changed = 0;
  std::vector<Json> removed;
  for (ir::Stage stage : {ir::Stage::kPre, ir::Stage::kPost}) {
    ir::DiffOptions d;
    d.stage = stage;
    d.with_text = true;
    auto diff = ir::DiffGenerations(store, from, to, d);
    if (!diff.ok()) return diff.status();
    const char* key = stage == ir::Stage::kPre ? "pre" : "post";
    for (const ir::ChangeGroup& g : diff->groups) {
      const ir::FunctionChange& c = diff->changes[g.members[0]];
      if (c.kind == ir::ChangeKind::kRemoved) {
        if (stage == ir::Stage::kPre && c.before) {  // a removal has its old version
          removed.push_back({c.before->name, ir::Demangle(c.before->name), c.before->instructions,
                             static_cast<int>(g.members.size())});
        }
        continue;
      }
      auto it = fns.find(c.after->name);
      if (it == fns.end()) continue;
      if (stage == ir::Stage::kPre) {
        Fn& f = it->second;
        f.kind = ir::ChangeKindName(c.kind);
        if ((c.kind == ir::ChangeKind::kRenamed || c.kind == ir::ChangeKind::kMoved) &&
            c.text_changed)
          f.kind += "+changed";
        f.delta = c.InstructionDelta();
        if (c.kind == ir::ChangeKind::kRenamed) f.old_name = c.before->name;
        ++changed;
      }
      if (c.unified.empty()) continue;
      if (!diffs.contains(c.after->name) && diffs.size() >= o.max_diffs) continue;
      diffs[c.after->name][key] = Cut(c.unified, o.max_diff_bytes);
    }
  }

  // Trends: instructions (pre, one copy) per generation, for the newest generations.
  std::vector<std::int64_t> trend_gens;
  for (const ir::GenerationInfo& g : *gens) trend_gens.push_back(g.id);
  if (trend_gens.size() > kMaxTrendGenerations)
    trend_gens.erase(trend_gens.begin(), trend_gens.end() - kMaxTrendGenerations);
  std::map<std::string, std::vector<std::int64_t>> trend;
  for (size_t gi = 0; gi < trend_gens.size(); ++gi) {
    auto fv = store.Functions(trend_gens[gi], ir::Stage::kPre);
    if (!fv.ok()) return fv.status();
    for (const ir::FunctionVersion& v : *fv) {
      auto it = fns.find(v.name);
      if (it == fns.end()) continue;
      auto& t = trend[v.name];
      if (t.empty()) t.assign(trend_gens.size(), -1);
      if (t[gi] < 0) t[gi] = v.instructions;
    }
  }

  // The largest functions, and every changed one.
  std::vector<const Fn*> order;
  order.reserve(fns.size());
  for (const auto& [name, f] : fns) order.push_back(&f);
  std::sort(order.begin(), order.end(), [](const Fn* a, const Fn* b) {
    if (a->kind.empty() != b->kind.empty()) return !a->kind.empty();
    const std::uint32_t sa = std::max(a->pre, a->post), sb = std::max(b->pre, b->post);
    return sa != sb ? sa > sb : a->name < b->name;
  });
  Json jf = Json::array();
  std::uint64_t rest_instructions = 0;
  std::size_t rest = 0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const Fn& f = *order[i];
    if (i >= o.max_functions) {
      rest_instructions += f.pre;
      ++rest;
      continue;
    }
    Json t = Json::array();
    if (auto it = trend.find(f.name); it != trend.end()) {
      for (std::int64_t n : it->second) t.push_back(n < 0 ? Json(nullptr) : Json(n));
    }
    jf.push_back({f.name, ir::Demangle(f.name), f.tu, f.pre, f.post, f.tus,
                  std::vector<std::string>(f.pages.begin(), f.pages.end()), f.kind, f.delta,
                  f.old_name.empty() ? Json(nullptr) : Json(ir::Demangle(f.old_name)),
                  ir::FunctionAnchor(f.name), std::move(t)});
  }

  Json data;
  data["format"] = "mmsb.ir-report/1";
  data["store"] = store.path();
  data["from"] = from;
  data["to"] = to;
  data["generations"] = trend_gens;
  data["functions"] = std::move(jf);
  data["rest"] = {rest, rest_instructions};
  data["removed"] = removed;
  data["diffs"] = std::move(diffs);

  const std::string title = o.title.empty() ? "mmsb ir report: generation " + std::to_string(from) +
                                                  " \u2192 " + std::to_string(to)
                                            : o.title;
  std::string html = RenderPage(assets::kIrReportHtml, assets::kIrReportJs,
                                data.dump(-1, ' ', false, Json::error_handler_t::replace), title);
  if (stats != nullptr) {
    stats->functions = fns.size();
    stats->changed = changed;
    stats->diffs = data["diffs"].size();
    stats->generations = trend_gens.size();
    stats->html_bytes = html.size();
  }
  return html;
}

}  // namespace mmsb::report
