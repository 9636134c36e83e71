// Store::MatchBuild: from a build's unit hashes (its objects' unit notes, listed in a log's build
// record) to the generation it was made from. See docs/IRStore.md, "Which build ran".
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "sqlite_db.h"
#include "store_impl.h"

namespace mmsb::ir {
namespace {

// `tu` (absolute) is the file `source` names: equal, or ending with "/" + source.
bool SourceNames(const std::string& tu, std::string source) {
  while (source.starts_with("./")) source.erase(0, 2);
  if (source.empty()) return false;
  if (tu == source) return true;
  return tu.size() > source.size() && tu.ends_with(source) &&
         tu[tu.size() - source.size() - 1] == '/';
}

struct Capture {
  std::int64_t gen = 0;
  std::uint64_t hash = 0;  // 0: none recorded
};

struct Tu {
  std::string source, output;
  std::vector<Capture> captures;  // by generation

  // The capture generation `g` sees (the latest at or before it), or nullptr.
  const Capture* SeenAt(std::int64_t g) const {
    auto it = std::upper_bound(captures.begin(), captures.end(), g,
                               [](std::int64_t x, const Capture& c) { return x < c.gen; });
    return it == captures.begin() ? nullptr : &*(it - 1);
  }
};

}  // namespace

Expected<BuildMatch> Store::MatchBuild(const std::vector<UnitRef>& units) {
  Impl& impl = *impl_;
  BuildMatch out;
  for (const UnitRef& u : units) out.units.push_back({u, 0, {}, {}});
  MMSB_ASSIGN_OR_RETURN(bool has_hashes, impl.HasUnitHashes());
  if (!has_hashes) return out;

  // The TUs whose captures hold each unit's hash.
  std::map<std::int64_t, Tu> tus;
  std::vector<std::vector<std::int64_t>> candidates(units.size());
  {
    MMSB_ASSIGN_OR_RETURN(auto q, impl.Prepare("SELECT DISTINCT c.tu, t.source, t.output FROM "
                                               "captures c JOIN tus t ON t.id = c.tu WHERE "
                                               "c.unit_hash = ?1 ORDER BY c.tu"));
    for (std::size_t i = 0; i < units.size(); ++i) {
      if (units[i].content_hash == 0) continue;
      q.Reset();
      q.Bind(1, static_cast<std::int64_t>(units[i].content_hash));
      std::vector<std::int64_t> all, named;
      while (true) {
        MMSB_ASSIGN_OR_RETURN(auto row, q.Step());
        if (!row) break;
        const std::int64_t tu = q.Int(0);
        Tu& t = tus[tu];
        t.source = q.Text(1);
        t.output = q.Text(2);
        all.push_back(tu);
        if (SourceNames(t.source, units[i].source)) named.push_back(tu);
      }
      candidates[i] = named.empty() ? all : named;
      if (!candidates[i].empty()) ++out.known;
    }
  }
  if (out.known == 0) return out;
  {
    MMSB_ASSIGN_OR_RETURN(auto q, impl.Prepare("SELECT gen, unit_hash FROM captures WHERE tu = ?1 "
                                               "ORDER BY gen"));
    for (auto& [id, t] : tus) {
      q.Reset();
      q.Bind(1, id);
      while (true) {
        MMSB_ASSIGN_OR_RETURN(auto row, q.Step());
        if (!row) break;
        t.captures.push_back({q.Int(0), static_cast<std::uint64_t>(q.Int(1))});
      }
    }
  }
  std::vector<std::int64_t> gens;
  {
    MMSB_ASSIGN_OR_RETURN(auto q, impl.Prepare("SELECT id FROM generations ORDER BY id"));
    while (true) {
      MMSB_ASSIGN_OR_RETURN(auto row, q.Step());
      if (!row) break;
      gens.push_back(q.Int(0));
    }
  }

  // The capture of unit i that generation g sees with the unit's hash, or nullptr.
  auto seen = [&](std::size_t i, std::int64_t g, std::int64_t* tu_out) -> const Capture* {
    for (std::int64_t tu : candidates[i]) {
      const Capture* c = tus[tu].SeenAt(g);
      if (c != nullptr && c->hash == units[i].content_hash) {
        if (tu_out != nullptr) *tu_out = tu;
        return c;
      }
    }
    return nullptr;
  };
  auto consistent = [&](std::int64_t g) {
    for (std::size_t i = 0; i < units.size(); ++i) {
      if (!candidates[i].empty() && seen(i, g, nullptr) == nullptr) return false;
    }
    return true;
  };
  std::size_t last = gens.size();
  for (std::size_t k = gens.size(); k-- > 0;) {
    if (consistent(gens[k])) {
      last = k;
      break;
    }
  }
  if (last != gens.size()) {
    std::size_t first = last;
    while (first > 0 && consistent(gens[first - 1])) --first;
    out.generation = gens[first];
    out.last_generation = gens[last];
  }
  for (std::size_t i = 0; i < units.size(); ++i) {
    if (candidates[i].empty()) continue;
    UnitMatch& m = out.units[i];
    std::int64_t tu = 0;
    if (out.generation != 0) {
      m.captured_in = seen(i, out.generation, &tu)->gen;
    } else {
      // No generation sees the whole build: the latest capture with the unit's hash.
      for (std::int64_t t : candidates[i]) {
        for (const Capture& c : tus[t].captures) {
          if (c.hash == units[i].content_hash && c.gen >= m.captured_in) {
            m.captured_in = c.gen;
            tu = t;
          }
        }
      }
    }
    m.tu_source = tus[tu].source;
    m.tu_output = tus[tu].output;
  }
  return out;
}

}  // namespace mmsb::ir
