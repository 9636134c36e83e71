#include "mmsb/ir/gate.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <regex>

#include <nlohmann/json.hpp>

#include "mmsb/ir/demangle.h"

namespace mmsb::ir {

namespace {

using Json = nlohmann::ordered_json;

Expected<std::vector<std::string>> RegexList(const nlohmann::json& v, const char* key) {
  if (!v.is_array())
    return InvalidArgument(std::string("budget: \"") + key + "\" must be an array of regexes");
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string())
      return InvalidArgument(std::string("budget: \"") + key + "\" must be an array of regexes");
    const std::string re = e.get<std::string>();
    try {
      // Compiled only to reject a bad pattern here, naming the key; Matcher compiles it for use.
      // NOLINTNEXTLINE(bugprone-unused-local-non-trivial-variable)
      std::regex check(re, std::regex::ECMAScript);
    } catch (const std::regex_error& err) {
      return InvalidArgument(std::string("budget: \"") + key + "\": bad regex '" + re +
                             "': " + err.what());
    }
    out.push_back(re);
  }
  return out;
}

struct Matcher {
  std::vector<std::regex> res;
  explicit Matcher(const std::vector<std::string>& patterns) {
    for (const std::string& p : patterns) res.emplace_back(p, std::regex::ECMAScript);
  }
  bool Matches(const FunctionChange& c) const {
    for (const std::regex& re : res) {
      for (const auto* v : {c.before ? &*c.before : nullptr, c.after ? &*c.after : nullptr}) {
        if (v != nullptr &&
            (std::regex_search(v->name, re) || std::regex_search(Demangle(v->name), re)))
          return true;
      }
    }
    return false;
  }
};

// A change of the function's code (not a pure rename or move).
bool BodyChanged(const FunctionChange& c) {
  if (c.kind == ChangeKind::kRenamed || c.kind == ChangeKind::kMoved) return c.text_changed;
  return true;
}

std::string KindLabel(const FunctionChange& c) {
  std::string k = ChangeKindName(c.kind);
  if ((c.kind == ChangeKind::kRenamed || c.kind == ChangeKind::kMoved) && c.text_changed)
    k += "+changed";
  return k;
}

std::string Signed(std::int64_t v) { return (v > 0 ? "+" : "") + std::to_string(v); }

std::string Percent(double p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.2f%%", p);
  return buf;
}

double GrowthPercent(std::int64_t before, std::int64_t after) {
  if (before == 0) return after == 0 ? 0.0 : 100.0;
  return 100.0 * static_cast<double>(after - before) / static_cast<double>(before);
}

Expected<std::int64_t> TotalInstructions(Store& store, std::int64_t gen, Stage stage) {
  auto fns = store.Functions(gen, stage);
  if (!fns.ok()) return fns.status();
  std::int64_t n = 0;
  for (const FunctionVersion& v : *fns) n += v.instructions;
  return n;
}

}  // namespace

Expected<GateBudget> ParseGateBudget(std::string_view text) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false,
                                             /*ignore_comments=*/true);
  if (doc.is_discarded()) return InvalidArgument("budget: not valid JSON");
  if (!doc.is_object()) return InvalidArgument("budget: must be a JSON object");
  GateBudget b;
  for (const auto& [key, v] : doc.items()) {
    if (key == "stage") {
      auto st = v.is_string() ? ParseStage(v.get<std::string>()) : std::nullopt;
      if (!st) return InvalidArgument("budget: \"stage\" must be \"pre\" or \"post\"");
      b.stage = *st;
    } else if (key == "total_growth_percent") {
      if (!v.is_number())
        return InvalidArgument("budget: \"total_growth_percent\" must be a number");
      b.total_growth_percent = v.get<double>();
    } else if (key == "function_growth") {
      if (!v.is_number_integer())
        return InvalidArgument("budget: \"function_growth\" must be an integer (instructions)");
      b.function_growth = v.get<std::int64_t>();
    } else if (key == "unchanged") {
      auto list = RegexList(v, "unchanged");
      if (!list.ok()) return list.status();
      b.unchanged = std::move(*list);
    } else if (key == "no_growth_at_post") {
      auto list = RegexList(v, "no_growth_at_post");
      if (!list.ok()) return list.status();
      b.no_growth_at_post = std::move(*list);
    } else if (key == "top") {
      if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > 10000)
        return InvalidArgument("budget: \"top\" must be an integer from 0 to 10000");
      b.top = v.get<int>();
    } else {
      return InvalidArgument("budget: unknown key \"" + key +
                             "\" (known: stage, total_growth_percent, function_growth, unchanged, "
                             "no_growth_at_post, top)");
    }
  }
  return b;
}

Expected<GateResult> EvaluateGate(Store& store, std::int64_t from, std::int64_t to,
                                  const GateBudget& budget) {
  GateResult r;
  r.from = from;
  r.to = to;
  r.stage = budget.stage;
  r.budget = budget;
  DiffOptions o;
  o.stage = budget.stage;
  o.with_text = false;
  auto diff = DiffGenerations(store, from, to, o);
  if (!diff.ok()) return diff.status();
  auto before = TotalInstructions(store, from, budget.stage);
  if (!before.ok()) return before.status();
  r.total_before = *before;
  r.total_after = *before + diff->InstructionDelta();

  if (budget.total_growth_percent) {
    const double p = GrowthPercent(r.total_before, r.total_after);
    if (p > *budget.total_growth_percent) {
      char limit[32];
      std::snprintf(limit, sizeof limit, "%g%%", *budget.total_growth_percent);
      r.violations.push_back({"total_growth_percent", "",
                              "total instructions " + std::to_string(r.total_before) + " -> " +
                                  std::to_string(r.total_after) + " (" + Percent(p) + "), budget " +
                                  limit,
                              0});
    }
  }
  const Matcher unchanged(budget.unchanged);
  std::vector<GateRow> rows;
  for (const ChangeGroup& g : diff->groups) {
    const FunctionChange& c = diff->changes[g.members[0]];
    const int tus = static_cast<int>(g.members.size());
    const std::string name = c.any().name;
    const std::int64_t growth = c.InstructionDelta();
    if (budget.function_growth && c.kind != ChangeKind::kAdded &&
        growth > *budget.function_growth) {
      r.violations.push_back({"function_growth", name,
                              Signed(growth) + " instructions (" +
                                  std::to_string(c.before->instructions) + " -> " +
                                  std::to_string(c.after ? c.after->instructions : 0) +
                                  "), budget " + std::to_string(*budget.function_growth),
                              tus});
    }
    if (!unchanged.res.empty() && BodyChanged(c) && unchanged.Matches(c)) {
      r.violations.push_back({"unchanged", name, KindLabel(c) + ", must stay unchanged", tus});
    }
    rows.push_back({name, KindLabel(c), c.before ? c.before->instructions : 0,
                    c.after ? c.after->instructions : 0, tus});
  }
  if (!budget.no_growth_at_post.empty()) {
    DiffOptions post = o;
    post.stage = Stage::kPost;
    auto pd = DiffGenerations(store, from, to, post);
    if (!pd.ok()) return pd.status();
    const Matcher grow(budget.no_growth_at_post);
    for (const ChangeGroup& g : pd->groups) {
      const FunctionChange& c = pd->changes[g.members[0]];
      if (c.kind == ChangeKind::kAdded || c.InstructionDelta() <= 0 || !grow.Matches(c)) continue;
      r.violations.push_back({"no_growth_at_post", c.any().name,
                              Signed(c.InstructionDelta()) + " instructions at post (" +
                                  std::to_string(c.before->instructions) + " -> " +
                                  std::to_string(c.after->instructions) + "), must not grow",
                              static_cast<int>(g.members.size())});
    }
  }
  std::sort(rows.begin(), rows.end(), [](const GateRow& a, const GateRow& b) {
    const std::int64_t ga = a.after - a.before, gb = b.after - b.before;
    return ga != gb ? ga > gb : a.name < b.name;
  });
  if (rows.size() > static_cast<size_t>(budget.top)) rows.resize(budget.top);
  r.top = std::move(rows);
  return r;
}

std::string FunctionAnchor(std::string_view mangled) {
  std::string a = "fn-";
  for (char c : mangled) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    a += ok ? c : '-';
  }
  return a;
}

namespace {

// Markdown table cells: no pipes or newlines; backticks become quotes inside code spans.
std::string Cell(std::string s) {
  for (char& c : s) {
    if (c == '|' || c == '\n') c = ' ';
    if (c == '`') c = '\'';
  }
  return s;
}

std::string Link(const std::string& name, const std::string& url) {
  std::string label = "`" + Cell(Demangle(name)) + "`";
  if (url.empty()) return label;
  return "[" + label + "](" + url + "#" + FunctionAnchor(name) + ")";
}

}  // namespace

std::string RenderGateMarkdown(const GateResult& r, const std::string& url) {
  std::string out = "## mmsb ir gate: ";
  out += r.pass() ? "within budget"
                  : "over budget (" + std::to_string(r.violations.size()) + " " +
                        (r.violations.size() == 1 ? "rule" : "rules") + " broken)";
  out += "\n\nGenerations " + std::to_string(r.from) + " -> " + std::to_string(r.to) + ", stage " +
         StageName(r.stage) + ": instructions " + std::to_string(r.total_before) + " -> " +
         std::to_string(r.total_after) + " (" + Signed(r.total_after - r.total_before) + ", " +
         Percent(GrowthPercent(r.total_before, r.total_after)) + ").\n";
  if (!r.violations.empty()) {
    out += "\n| rule | function | TUs | what |\n|---|---|---|---|\n";
    for (const GateViolation& v : r.violations) {
      out += "| " + v.rule + " | " + (v.name.empty() ? "(all)" : Link(v.name, url)) + " | " +
             (v.tus == 0 ? "-" : std::to_string(v.tus)) + " | " + Cell(v.detail) + " |\n";
    }
  }
  if (!r.top.empty()) {
    out += "\n### Top " + std::to_string(r.top.size()) +
           " by growth\n\n| function | change | TUs | before | after | growth |\n"
           "|---|---|---|---|---|---|\n";
    for (const GateRow& row : r.top) {
      out += "| " + Link(row.name, url) + " | " + row.kind + " | " + std::to_string(row.tus) +
             " | " + std::to_string(row.before) + " | " + std::to_string(row.after) + " | " +
             Signed(row.after - row.before) + " |\n";
    }
  }
  return out;
}

std::string RenderGateJson(const GateResult& r) {
  Json root;
  root["format"] = "mmsb.ir-gate/1";
  root["pass"] = r.pass();
  root["from"] = r.from;
  root["to"] = r.to;
  root["stage"] = StageName(r.stage);
  Json b;
  b["total_growth_percent"] =
      r.budget.total_growth_percent ? Json(*r.budget.total_growth_percent) : Json(nullptr);
  b["function_growth"] = r.budget.function_growth ? Json(*r.budget.function_growth) : Json(nullptr);
  b["unchanged"] = r.budget.unchanged;
  b["no_growth_at_post"] = r.budget.no_growth_at_post;
  b["top"] = r.budget.top;
  root["budget"] = std::move(b);
  root["instructions_before"] = r.total_before;
  root["instructions_after"] = r.total_after;
  Json vs = Json::array();
  for (const GateViolation& v : r.violations) {
    Json j;
    j["rule"] = v.rule;
    j["name"] = v.name.empty() ? Json(nullptr) : Json(v.name);
    j["demangled"] = v.name.empty() ? Json(nullptr) : Json(Demangle(v.name));
    j["anchor"] = v.name.empty() ? Json(nullptr) : Json(FunctionAnchor(v.name));
    j["tus"] = v.tus;
    j["detail"] = v.detail;
    vs.push_back(std::move(j));
  }
  root["violations"] = std::move(vs);
  Json top = Json::array();
  for (const GateRow& row : r.top) {
    Json j;
    j["name"] = row.name;
    j["demangled"] = Demangle(row.name);
    j["kind"] = row.kind;
    j["tus"] = row.tus;
    j["before"] = row.before;
    j["after"] = row.after;
    j["growth"] = row.after - row.before;
    top.push_back(std::move(j));
  }
  root["top"] = std::move(top);
  return root.dump(2) + "\n";
}

}  // namespace mmsb::ir
