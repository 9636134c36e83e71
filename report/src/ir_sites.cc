// LookUpSites (ir_sites.h): a log report's commit sites, looked up in the IR store.
#include "ir_sites.h"

#include <string>
#include <string_view>

#include <fmt/format.h>

#include "mmsb/ir/store.h"

namespace mmsb::report {

namespace {

using Json = nlohmann::json;

// "void mmsb::Step(float)" (how a commit site names its function) -> "mmsb::Step": what
// Store::FindFunctions matches against demangled names. The return type is what precedes the
// last space outside template brackets before the parameter list.
std::string QualifiedName(std::string_view f) {
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < f.size(); ++i) {
    const char ch = f[i];
    if (ch == '<') ++depth;
    if (ch == '>' && depth > 0) --depth;
    if (depth == 0 && ch == ' ') start = i + 1;
    if (depth == 0 && ch == '(') {
      if (f.substr(start, i - start).starts_with("operator")) continue;
      return std::string(f.substr(start, i - start));
    }
  }
  return std::string(f.substr(start));
}

}  // namespace

Expected<Json> LookUpSites(const std::vector<SiteRec>& sites, std::uint64_t run_start_nanos,
                           const LogReportOptions& o, LogReportStats* stats) {
  auto store = ir::Store::Open(o.ir_store, ir::Store::Mode::kExisting);
  if (!store.ok()) return store.status();
  ir::Store& st = **store;
  auto gens = st.Generations(false);
  if (!gens.ok()) return gens.status();
  if (gens->empty()) return NotFound("IR store '" + o.ir_store + "' has no generation");
  std::int64_t gen = 0;
  std::string how;
  if (!o.ir_generation.empty()) {
    auto g = st.ResolveGeneration(o.ir_generation);
    if (!g.ok()) return g.status();
    gen = *g;
    how = "--gen " + o.ir_generation;
  } else {
    // A run is built before it starts: the newest generation opened before then is the likeliest.
    const auto start_ms = static_cast<std::int64_t>(run_start_nanos / 1000000);
    for (const ir::GenerationInfo& g : *gens) {
      if (run_start_nanos != 0 && g.opened_at_ms <= start_ms) gen = std::max(gen, g.id);
    }
    how = "the newest generation opened before the run started";
    if (gen == 0) {
      gen = gens->back().id;
      how = "latest (no generation opened before the run started)";
    }
  }
  std::int64_t prev = 0;
  for (const ir::GenerationInfo& g : *gens) {
    if (g.id < gen) prev = std::max(prev, g.id);
  }
  auto now = st.Functions(gen, ir::Stage::kPre);
  if (!now.ok()) return now.status();
  std::map<std::pair<std::string, std::string>, const ir::FunctionVersion*> by_key, before;
  for (const ir::FunctionVersion& f : *now) by_key[{f.tu_source, f.name}] = &f;
  std::vector<ir::FunctionVersion> prev_funcs;
  if (prev != 0) {
    auto p = st.Functions(prev, ir::Stage::kPre);
    if (!p.ok()) return p.status();
    prev_funcs = std::move(*p);
    for (const ir::FunctionVersion& f : prev_funcs) before[{f.tu_source, f.name}] = &f;
  }
  Json jsites = Json::object();
  std::size_t found = 0;
  for (std::size_t i = 1; i < sites.size(); ++i) {
    if (sites[i].function.empty() || sites[i].epochs == 0) continue;
    const std::string name = QualifiedName(sites[i].function);
    auto ids = st.FindFunctions(name);
    if (!ids.ok()) return ids.status();
    // The first match the run's generation defines (an inline function: one TU stands for all).
    const ir::FunctionVersion* v = nullptr;
    std::int64_t func_id = 0;
    for (const auto& id : *ids) {
      auto it = by_key.find({id.tu_source, id.name});
      if (it != by_key.end()) {
        v = it->second;
        func_id = id.func_id;
        break;
      }
    }
    if (v == nullptr) {
      jsites[std::to_string(i)] = {name, "", 0, "absent", Json::array()};
      continue;
    }
    ++found;
    std::string status = "added";
    if (auto b = before.find({v->tu_source, v->name}); b != before.end()) {
      status = b->second->text_hash == v->text_hash ? "unchanged" : "changed";
    }
    // Generations (up to the run's) whose capture changed the function's IR.
    Json changed_in = Json::array();
    auto hist = st.History(func_id, ir::Stage::kPre);
    if (!hist.ok()) return hist.status();
    std::optional<ir::TextHash> last;
    std::vector<std::int64_t> changes;
    for (const ir::CaptureVersion& cv : *hist) {
      if (cv.generation > gen || !cv.version) continue;
      if (last && *last != cv.version->text_hash) changes.push_back(cv.generation);
      last = cv.version->text_hash;
    }
    const std::size_t from = changes.size() > 10 ? changes.size() - 10 : 0;
    for (std::size_t k = from; k < changes.size(); ++k) changed_in.push_back(changes[k]);
    jsites[std::to_string(i)] = {name, v->name, v->instructions, status, std::move(changed_in)};
  }
  Json ir;
  ir["store"] = o.ir_store;
  ir["generation"] = gen;
  ir["previous"] = prev;
  ir["how"] = how;
  ir["link"] = o.ir_link;
  ir["sites"] = std::move(jsites);
  if (stats != nullptr) {
    stats->ir_generation = gen;
    stats->ir_generation_how = how;
    stats->ir_sites_found = found;
  }
  return ir;
}

}  // namespace mmsb::report
