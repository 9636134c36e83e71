#include "mmsb/ir/diff.h"

#include <algorithm>
#include <map>
#include <regex>
#include <set>
#include <tuple>

#include "mmsb/ir/demangle.h"

namespace mmsb::ir {

const char* ChangeKindName(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kChanged:
      return "changed";
    case ChangeKind::kAdded:
      return "added";
    case ChangeKind::kRemoved:
      return "removed";
    case ChangeKind::kRenamed:
      return "renamed";
    case ChangeKind::kMoved:
      return "moved";
  }
  return "changed";
}

std::int64_t FunctionChange::InstructionDelta() const {
  return static_cast<std::int64_t>(after ? after->instructions : 0) -
         static_cast<std::int64_t>(before ? before->instructions : 0);
}

std::int64_t FunctionChange::BlockDelta() const {
  return static_cast<std::int64_t>(after ? after->blocks : 0) -
         static_cast<std::int64_t>(before ? before->blocks : 0);
}

std::vector<std::string> FunctionChange::PageTypes() const {
  std::set<std::string> all;
  if (before) all.insert(before->page_types.begin(), before->page_types.end());
  if (after) all.insert(after->page_types.begin(), after->page_types.end());
  return {all.begin(), all.end()};
}

int GenerationDiff::Count(ChangeKind kind) const {
  return static_cast<int>(std::count_if(changes.begin(), changes.end(),
                                        [&](const FunctionChange& c) { return c.kind == kind; }));
}

int GenerationDiff::GroupCount(ChangeKind kind) const {
  return static_cast<int>(std::count_if(groups.begin(), groups.end(), [&](const ChangeGroup& g) {
    return !g.members.empty() && changes[g.members[0]].kind == kind;
  }));
}

std::vector<ChangeGroup> GroupChanges(const std::vector<FunctionChange>& changes, bool by_tu) {
  std::vector<ChangeGroup> groups;
  // kind, old name, new name, old text, new text: equal keys are the same edit of one function.
  using GroupKey = std::tuple<int, std::string, std::string, TextHash, TextHash>;
  std::map<GroupKey, size_t> index;
  for (size_t i = 0; i < changes.size(); ++i) {
    const FunctionChange& c = changes[i];
    if (by_tu) {
      groups.push_back({{i}});
      continue;
    }
    GroupKey key{static_cast<int>(c.kind), c.before ? c.before->name : std::string(),
                 c.after ? c.after->name : std::string(),
                 c.before ? c.before->text_hash : TextHash{},
                 c.after ? c.after->text_hash : TextHash{}};
    auto [it, inserted] = index.emplace(std::move(key), groups.size());
    if (inserted) groups.emplace_back();
    groups[it->second].members.push_back(i);
  }
  return groups;
}

std::int64_t GenerationDiff::InstructionDelta() const {
  std::int64_t d = 0;
  for (const FunctionChange& c : changes) d += c.InstructionDelta();
  return d;
}

std::int64_t GenerationDiff::BlockDelta() const {
  std::int64_t d = 0;
  for (const FunctionChange& c : changes) d += c.BlockDelta();
  return d;
}

bool PageTypeMatches(std::string_view type, std::string_view query) {
  if (query.empty()) return false;
  if (type == query) return true;
  return type.size() > query.size() + 2 && type.substr(type.size() - query.size()) == query &&
         type.substr(type.size() - query.size() - 2, 2) == "::";
}

namespace {

bool Opens(char c) { return c == '<' || c == '(' || c == '['; }
bool Closes(char c) { return c == '>' || c == ')' || c == ']'; }

// Brackets in operator names ("operator<", "operator()") are not nesting.
size_t SkipOperator(std::string_view s, size_t i) {
  static constexpr std::string_view kOp = "operator";
  if (s.compare(i, kOp.size(), kOp) != 0) return i;
  size_t j = i + kOp.size();
  while (j < s.size() && (s[j] == '<' || s[j] == '>' || s[j] == '(' || s[j] == ')' || s[j] == '[' ||
                          s[j] == ']' || s[j] == '-' || s[j] == '=')) {
    ++j;
  }
  return j;
}

// "char* fmt::detail::allocate<char>" -> "fmt::detail::allocate<char>": drops what precedes the
// last space outside brackets (a template function's return type), unless it is "operator new".
std::string_view StripReturnType(std::string_view s) {
  int depth = 0;
  size_t cut = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const size_t after_op = SkipOperator(s, i);
    if (after_op != i) {
      i = after_op - 1;
      continue;
    }
    const char c = s[i];
    if (Opens(c)) {
      ++depth;
    } else if (Closes(c)) {
      --depth;
    } else if (c == ' ' && depth == 0 && !(i >= 8 && s.substr(i - 8, 8) == "operator")) {
      cut = i + 1;
    }
  }
  return depth == 0 ? s.substr(cut) : s;
}

// Splits a qualified name at "::" outside brackets.
std::vector<std::string_view> Components(std::string_view s) {
  std::vector<std::string_view> out;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const size_t after_op = SkipOperator(s, i);
    if (after_op != i) {
      i = after_op - 1;
      continue;
    }
    const char c = s[i];
    if (Opens(c)) {
      ++depth;
    } else if (Closes(c)) {
      --depth;
    } else if (c == ':' && depth == 0 && i + 1 < s.size() && s[i + 1] == ':') {
      out.push_back(s.substr(start, i - start));
      start = i + 2;
      ++i;
    }
  }
  out.push_back(s.substr(start));
  return out;
}

// "allocate<char>" -> "allocate"; operator names stay whole.
std::string_view WithoutTemplateArgs(std::string_view c) {
  if (c.starts_with("operator") || c.empty() || c.back() != '>') return c;
  const size_t lt = c.find('<');
  return lt == std::string_view::npos ? c : c.substr(0, lt);
}

bool EndsAtBoundary(std::string_view s, std::string_view suffix) {
  if (suffix.empty() || s.size() < suffix.size() || !s.ends_with(suffix)) return false;
  return s.size() == suffix.size() || s.substr(0, s.size() - suffix.size()).ends_with("::");
}

}  // namespace

int NameMatchRank(std::string_view query, std::string_view mangled) {
  if (query.empty()) return 0;
  if (query == mangled) return 4;
  const std::string d = Demangle(mangled);
  if (query == d) return 3;
  const std::string base = WithoutParameters(d);
  if (query == base) return 2;
  if (query.find('(') != std::string_view::npos) return EndsAtBoundary(StripReturnType(d), query);
  const std::vector<std::string_view> name = Components(StripReturnType(base));
  const std::vector<std::string_view> want = Components(query);
  if (want.size() > name.size()) return 0;
  const size_t skip = name.size() - want.size();
  for (size_t i = 0; i < want.size(); ++i) {
    const std::string_view have = name[skip + i];
    if (want[i] == have) continue;
    if (want[i].find('<') == std::string_view::npos && WithoutTemplateArgs(have) == want[i])
      continue;
    return 0;
  }
  return 1;
}

std::vector<std::string> AmbiguousCandidates(std::string_view query,
                                             const std::vector<Store::FunctionId>& ids) {
  std::map<std::string, std::set<std::string>> tus_by_name;
  for (const Store::FunctionId& id : ids) {
    if (NameMatchRank(query, id.name) != 1) return {};
    tus_by_name[Demangle(id.name)].insert(id.tu_source);
  }
  if (tus_by_name.size() <= 1) return {};
  std::vector<std::string> out;
  out.reserve(tus_by_name.size());
  for (const auto& [name, tus] : tus_by_name) {
    out.push_back(name + " (" + std::to_string(tus.size()) + (tus.size() == 1 ? " TU)" : " TUs)"));
  }
  return out;
}

namespace {

using Key = std::tuple<std::string, std::string, std::string>;  // TU source, output, name

Key KeyOf(const FunctionVersion& v) { return {v.tu_source, v.tu_output, v.name}; }

// `text` with every occurrence of the symbol `from` replaced by `to`.
std::string Substitute(std::string text, const std::string& from, const std::string& to) {
  if (from.empty()) return text;
  size_t pos = 0;
  while ((pos = text.find(from, pos)) != std::string::npos) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
  return text;
}

}  // namespace

Expected<GenerationDiff> DiffGenerations(Store& store, std::int64_t from, std::int64_t to,
                                         const DiffOptions& options) {
  std::optional<std::regex> re;
  if (!options.function_regex.empty()) {
    try {
      re.emplace(options.function_regex, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return InvalidArgument("bad --function regex '" + options.function_regex + "': " + e.what());
    }
  }
  auto a = store.Functions(from, options.stage);
  if (!a.ok()) return a.status();
  auto b = store.Functions(to, options.stage);
  if (!b.ok()) return b.status();

  std::map<Key, FunctionVersion*> before;
  for (FunctionVersion& v : *a) before.emplace(KeyOf(v), &v);

  GenerationDiff diff;
  diff.from = from;
  diff.to = to;
  diff.stage = options.stage;
  std::vector<FunctionChange> all;
  std::vector<const FunctionVersion*> unchanged;
  std::vector<FunctionVersion*> added;
  for (FunctionVersion& v : *b) {
    auto it = before.find(KeyOf(v));
    if (it == before.end()) {
      added.push_back(&v);
      continue;
    }
    if (it->second->text_hash == v.text_hash) {
      unchanged.push_back(&v);
    } else {
      FunctionChange c;
      c.kind = ChangeKind::kChanged;
      c.before = *it->second;
      c.after = v;
      c.text_changed = true;
      all.push_back(std::move(c));
    }
    before.erase(it);
  }
  std::vector<FunctionVersion*> removed;
  removed.reserve(before.size());
  for (auto& [key, v] : before) removed.push_back(v);

  // Moves: a name that left exactly one TU and arrived in exactly one other.
  {
    std::map<std::string, std::vector<size_t>> rem_by_name, add_by_name;
    for (size_t i = 0; i < removed.size(); ++i) rem_by_name[removed[i]->name].push_back(i);
    for (size_t i = 0; i < added.size(); ++i) add_by_name[added[i]->name].push_back(i);
    std::set<size_t> rem_used, add_used;
    for (const auto& [name, ris] : rem_by_name) {
      auto ai = add_by_name.find(name);
      if (ris.size() != 1 || ai == add_by_name.end() || ai->second.size() != 1) continue;
      FunctionChange c;
      c.kind = ChangeKind::kMoved;
      c.before = *removed[ris[0]];
      c.after = *added[ai->second[0]];
      c.text_changed = c.before->text_hash != c.after->text_hash;
      all.push_back(std::move(c));
      rem_used.insert(ris[0]);
      add_used.insert(ai->second[0]);
    }
    std::vector<FunctionVersion*> r2, a2;
    for (size_t i = 0; i < removed.size(); ++i)
      if (rem_used.count(i) == 0) r2.push_back(removed[i]);
    for (size_t i = 0; i < added.size(); ++i)
      if (add_used.count(i) == 0) a2.push_back(added[i]);
    removed.swap(r2);
    added.swap(a2);
  }

  // Renames: same TU, same structural hash.
  {
    using HashKey = std::tuple<std::string, std::string, std::uint64_t>;
    std::map<HashKey, std::vector<size_t>> rem_by_hash, add_by_hash;
    for (size_t i = 0; i < removed.size(); ++i) {
      const FunctionVersion& v = *removed[i];
      rem_by_hash[{v.tu_source, v.tu_output, v.structural_hash}].push_back(i);
    }
    for (size_t i = 0; i < added.size(); ++i) {
      const FunctionVersion& v = *added[i];
      add_by_hash[{v.tu_source, v.tu_output, v.structural_hash}].push_back(i);
    }
    std::set<size_t> rem_used, add_used;
    for (const auto& [hk, ris] : rem_by_hash) {
      auto ait = add_by_hash.find(hk);
      if (ait == add_by_hash.end()) continue;
      const std::vector<size_t>& ais = ait->second;
      auto pair_up = [&](size_t ri, size_t ai, bool text_changed) {
        FunctionChange c;
        c.kind = ChangeKind::kRenamed;
        c.before = *removed[ri];
        c.after = *added[ai];
        c.text_changed = text_changed;
        all.push_back(std::move(c));
        rem_used.insert(ri);
        add_used.insert(ai);
      };
      if (ris.size() == 1 && ais.size() == 1) {
        const FunctionVersion& r = *removed[ris[0]];
        const FunctionVersion& ad = *added[ais[0]];
        bool same = false;
        auto rt = store.Text(r.text_hash);
        auto at = store.Text(ad.text_hash);
        if (rt.ok() && at.ok()) same = Substitute(*rt, r.name, ad.name) == *at;
        pair_up(ris[0], ais[0], !same);
        continue;
      }
      // Several candidates: pair only exact renames (equal text once the name is substituted).
      std::map<size_t, std::string> added_texts;
      for (size_t ai : ais) {
        auto t = store.Text(added[ai]->text_hash);
        if (t.ok()) added_texts[ai] = std::move(*t);
      }
      for (size_t ri : ris) {
        auto rt = store.Text(removed[ri]->text_hash);
        if (!rt.ok()) continue;
        for (size_t ai : ais) {
          if (add_used.count(ai) != 0 || added_texts.count(ai) == 0) continue;
          if (Substitute(*rt, removed[ri]->name, added[ai]->name) == added_texts[ai]) {
            pair_up(ri, ai, false);
            break;
          }
        }
      }
    }
    for (size_t i = 0; i < removed.size(); ++i) {
      if (rem_used.count(i) != 0) continue;
      FunctionChange c;
      c.kind = ChangeKind::kRemoved;
      c.before = *removed[i];
      c.text_changed = true;
      all.push_back(std::move(c));
    }
    for (size_t i = 0; i < added.size(); ++i) {
      if (add_used.count(i) != 0) continue;
      FunctionChange c;
      c.kind = ChangeKind::kAdded;
      c.after = *added[i];
      c.text_changed = true;
      all.push_back(std::move(c));
    }
  }

  // Filters.
  auto name_matches = [&](const FunctionVersion& v) {
    return std::regex_search(v.name, *re) || std::regex_search(Demangle(v.name), *re);
  };
  auto keep = [&](const FunctionChange& c) {
    if (re && !((c.before && name_matches(*c.before)) || (c.after && name_matches(*c.after))))
      return false;
    if (!options.touching.empty()) {
      bool touches = false;
      for (const std::string& t : c.PageTypes())
        touches = touches || PageTypeMatches(t, options.touching);
      if (!touches) return false;
    }
    return true;
  };
  for (FunctionChange& c : all) {
    if (keep(c)) diff.changes.push_back(std::move(c));
  }
  for (const FunctionVersion* v : unchanged) {
    FunctionChange probe;
    probe.before = *v;
    if (keep(probe)) ++diff.unchanged;
  }

  // Order.
  auto name_of = [](const FunctionChange& c) { return Demangle(c.any().name); };
  std::vector<std::pair<std::string, FunctionChange*>> keyed;
  keyed.reserve(diff.changes.size());
  for (FunctionChange& c : diff.changes) keyed.emplace_back(name_of(c), &c);
  auto by_name = [](const std::pair<std::string, FunctionChange*>& x,
                    const std::pair<std::string, FunctionChange*>& y) {
    if (x.first != y.first) return x.first < y.first;
    const FunctionVersion& a = x.second->any();
    const FunctionVersion& b = y.second->any();
    return std::tie(a.tu_source, a.tu_output, a.name) < std::tie(b.tu_source, b.tu_output, b.name);
  };
  if (options.sort == DiffOptions::Sort::kDelta) {
    std::sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
      const std::int64_t dx = std::llabs(x.second->InstructionDelta());
      const std::int64_t dy = std::llabs(y.second->InstructionDelta());
      if (dx != dy) return dx > dy;
      const std::int64_t bx = std::llabs(x.second->BlockDelta());
      const std::int64_t by = std::llabs(y.second->BlockDelta());
      if (bx != by) return bx > by;
      return by_name(x, y);
    });
  } else {
    std::sort(keyed.begin(), keyed.end(), by_name);
  }
  std::vector<FunctionChange> sorted;
  sorted.reserve(keyed.size());
  for (auto& [name, c] : keyed) sorted.push_back(std::move(*c));
  diff.changes = std::move(sorted);
  diff.groups = GroupChanges(diff.changes, options.by_tu);

  if (options.with_text) {
    for (FunctionChange& c : diff.changes) {
      std::string ta, tb;
      if (c.before) {
        auto t = store.Text(c.before->text_hash);
        if (!t.ok()) return t.status();
        ta = std::move(*t);
      }
      if (c.after) {
        auto t = store.Text(c.after->text_hash);
        if (!t.ok()) return t.status();
        tb = std::move(*t);
      }
      c.unified = UnifiedDiff(ta, tb);
    }
  }
  return diff;
}

}  // namespace mmsb::ir
