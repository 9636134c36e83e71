// The IR store's queries: generations, function versions, texts, history, name lookup.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mmsb/ir/demangle.h"
#include "mmsb/ir/diff.h"

#include "blob.h"
#include "sqlite_db.h"
#include "store_impl.h"
#include "store_schema.h"

namespace mmsb::ir {

Expected<std::vector<GenerationInfo>> Store::Generations(bool with_changes) {
  Impl& impl = *impl_;
  impl.ClearCaches();
  std::vector<GenerationInfo> gens;
  {
    MMSB_ASSIGN_OR_RETURN(auto q,
                          impl.Prepare("SELECT id, opened_at_ms, label, is_explicit, is_open, "
                                       "compiler, flags_hash FROM generations ORDER BY id"));
    while (true) {
      MMSB_ASSIGN_OR_RETURN(auto row, q.Step());
      if (!row) break;
      GenerationInfo g;
      g.id = q.Int(0);
      g.opened_at_ms = q.Int(1);
      g.label = q.Text(2);
      g.is_explicit = q.Int(3) != 0;
      g.is_open = q.Int(4) != 0;
      g.compiler = q.Text(5);
      g.flags_hash = q.Text(6);
      gens.push_back(std::move(g));
    }
  }
  // Captures in generation order, and the function count of every manifest.
  struct Cap {
    std::int64_t gen, tu, manifest;
    std::string flags;
  };
  std::map<std::int64_t, std::vector<Cap>> caps;
  {
    MMSB_ASSIGN_OR_RETURN(auto q, impl.Prepare("SELECT gen, tu, manifest, flags_hash || compiler "
                                               "FROM captures ORDER BY gen, tu"));
    while (true) {
      MMSB_ASSIGN_OR_RETURN(auto row, q.Step());
      if (!row) break;
      caps[q.Int(0)].push_back({q.Int(0), q.Int(1), q.Int(2), q.Text(3)});
    }
  }
  std::unordered_map<std::int64_t, int> manifest_funcs;
  {
    MMSB_ASSIGN_OR_RETURN(auto q, impl.Prepare("SELECT manifest, count(DISTINCT func) FROM entries "
                                               "GROUP BY manifest"));
    while (true) {
      MMSB_ASSIGN_OR_RETURN(auto row, q.Step());
      if (!row) break;
      manifest_funcs[q.Int(0)] = static_cast<int>(q.Int(1));
    }
  }

  std::map<std::int64_t, std::int64_t> visible;  // tu -> manifest
  int functions = 0;
  for (size_t gi = 0; gi < gens.size(); ++gi) {
    GenerationInfo& g = gens[gi];
    const std::vector<Cap>& own = caps[g.id];
    std::set<std::string> flags;
    int changed[2] = {0, 0};
    for (const Cap& c : own) {
      flags.insert(c.flags);
      auto it = visible.find(c.tu);
      const std::int64_t before = it == visible.end() ? 0 : it->second;
      if (before != 0) functions -= manifest_funcs[before];
      functions += manifest_funcs[c.manifest];
      if (with_changes && gi > 0 && before != c.manifest) {
        static const Impl::ManifestMap kEmpty;
        const Impl::ManifestMap* a = &kEmpty;
        if (before != 0) {
          MMSB_ASSIGN_OR_RETURN(auto m, impl.LoadManifest(before));
          a = m;
        }
        MMSB_ASSIGN_OR_RETURN(auto b, impl.LoadManifest(c.manifest));
        for (const auto& [key, hash] : *a) {
          auto other = b->find(key);
          if (other == b->end() || other->second != hash) ++changed[key.second];
        }
        for (const auto& [key, hash] : *b) {
          if (a->find(key) == a->end()) ++changed[key.second];
        }
      }
      visible[c.tu] = c.manifest;
    }
    g.own_tus = static_cast<int>(own.size());
    g.visible_tus = static_cast<int>(visible.size());
    g.functions = functions;
    g.mixed_flags = flags.size() > 1;
    if (with_changes && gi > 0) {
      g.changed_pre = changed[0];
      g.changed_post = changed[1];
    }
  }
  return gens;
}

Expected<std::int64_t> Store::ResolveGeneration(std::string_view spec) {
  Impl& impl = *impl_;
  std::string s(spec);
  if (s == "latest" || s.rfind("latest~", 0) == 0) {
    std::int64_t back = 0;
    if (s != "latest") {
      if (!AllDigits(s.substr(7))) {
        return InvalidArgument("bad generation '" + s +
                               "' (N, latest, latest~K with a number K, or a label)");
      }
      back = std::stoll(s.substr(7));
    }
    MMSB_ASSIGN_OR_RETURN(auto q, impl.Prepare("SELECT id FROM generations ORDER BY id DESC "
                                               "LIMIT 1 OFFSET ?1"));
    q.Bind(1, back);
    MMSB_ASSIGN_OR_RETURN(auto found, q.Step());
    if (!found) return NotFound("no generation '" + s + "' in " + path_);
    return q.Int(0);
  }
  if (AllDigits(s)) {
    MMSB_ASSIGN_OR_RETURN(auto q, impl.Prepare("SELECT id FROM generations WHERE id=?1"));
    q.Bind(1, std::stoll(s));
    MMSB_ASSIGN_OR_RETURN(auto found, q.Step());
    if (found) return q.Int(0);
  }
  MMSB_ASSIGN_OR_RETURN(auto q, impl.Prepare("SELECT id FROM generations WHERE label=?1"));
  q.Bind(1, s);
  MMSB_ASSIGN_OR_RETURN(auto found, q.Step());
  if (found) return q.Int(0);
  return NotFound("no generation '" + s + "' in " + path_ + " (see `mmsb ir builds`)");
}

namespace {

constexpr char kVersionColumns[] =
    "f.id, t.source, t.output, f.name, e.stage, e.text_hash, e.struct_hash, e.insts, e.blocks, "
    "e.linkage, fl.path, e.line, e.pages";

FunctionVersion ReadVersion(const sql::Statement& q, int first) {
  FunctionVersion v;
  v.func_id = q.Int(first + 0);
  v.tu_source = q.Text(first + 1);
  v.tu_output = q.Text(first + 2);
  v.name = q.Text(first + 3);
  v.stage = q.Int(first + 4) == 0 ? Stage::kPre : Stage::kPost;
  v.text_hash = ToHash(q.Blob(first + 5));
  v.structural_hash = static_cast<std::uint64_t>(q.Int(first + 6));
  v.instructions = static_cast<std::uint32_t>(q.Int(first + 7));
  v.blocks = static_cast<std::uint32_t>(q.Int(first + 8));
  v.linkage = q.Text(first + 9);
  v.file = q.Text(first + 10);
  v.line = static_cast<std::uint32_t>(q.Int(first + 11));
  v.page_types = SplitPages(q.Text(first + 12));
  return v;
}

}  // namespace

Expected<std::vector<FunctionVersion>> Store::Functions(std::int64_t generation,
                                                        std::optional<Stage> stage) {
  Impl& impl = *impl_;
  const std::string q_text =
      std::string(
          "WITH vis AS (SELECT c.tu, c.manifest, c.gen FROM captures c WHERE c.gen = "
          "(SELECT MAX(c2.gen) FROM captures c2 WHERE c2.tu = c.tu AND c2.gen <= ?1)) "
          "SELECT ") +
      kVersionColumns +
      ", vis.gen FROM vis JOIN entries e ON e.manifest = vis.manifest "
      "JOIN funcs f ON f.id = e.func JOIN tus t ON t.id = vis.tu "
      "LEFT JOIN files fl ON fl.id = e.file WHERE (?2 < 0 OR e.stage = ?2) "
      "ORDER BY t.source, t.output, f.name, e.stage";
  MMSB_ASSIGN_OR_RETURN(auto q, impl.Prepare(q_text));
  q.Bind(1, generation).Bind(2, stage ? static_cast<std::int64_t>(*stage) : std::int64_t{-1});
  std::vector<FunctionVersion> out;
  while (true) {
    MMSB_ASSIGN_OR_RETURN(auto row, q.Step());
    if (!row) break;
    FunctionVersion v = ReadVersion(q, 0);
    v.captured_in = q.Int(13);
    out.push_back(std::move(v));
  }
  return out;
}

Expected<std::string> Store::Text(const TextHash& hash) {
  Impl& impl = *impl_;
  MMSB_ASSIGN_OR_RETURN(auto q, impl.Prepare("SELECT raw_size, data FROM blobs WHERE hash=?1"));
  q.BindBlob(1, hash.data(), hash.size());
  MMSB_ASSIGN_OR_RETURN(auto found, q.Step());
  if (!found) return Corruption("IR blob " + HexOf(hash) + " is missing from " + path_);
  return impl.codec().Decompress(q.Blob(1), q.Int(0), hash);
}

Expected<std::vector<CaptureVersion>> Store::History(std::int64_t func_id, Stage stage) {
  Impl& impl = *impl_;
  const std::string q_text =
      std::string("SELECT c.gen, c.captured_at_ms, e.func, ") + kVersionColumns +
      " FROM funcs f JOIN captures c ON c.tu = f.tu JOIN tus t ON t.id = f.tu "
      "LEFT JOIN entries e ON e.manifest = c.manifest AND e.func = f.id AND e.stage = ?2 "
      "LEFT JOIN files fl ON fl.id = e.file WHERE f.id = ?1 ORDER BY c.gen";
  MMSB_ASSIGN_OR_RETURN(auto q, impl.Prepare(q_text));
  q.Bind(1, func_id).Bind(2, static_cast<std::int64_t>(stage));
  std::vector<CaptureVersion> out;
  while (true) {
    MMSB_ASSIGN_OR_RETURN(auto row, q.Step());
    if (!row) break;
    CaptureVersion cv;
    cv.generation = q.Int(0);
    cv.captured_at_ms = q.Int(1);
    if (!q.IsNull(2)) {
      cv.version = ReadVersion(q, 3);
      cv.version->captured_in = cv.generation;
    }
    out.push_back(std::move(cv));
  }
  return out;
}

Expected<std::vector<Store::FunctionId>> Store::FindFunctions(std::string_view query) {
  Impl& impl = *impl_;
  // Only the best-matching tier is returned (NameMatchRank in mmsb/ir/diff.h).
  std::vector<FunctionId> best;
  int best_rank = 0;
  MMSB_ASSIGN_OR_RETURN(auto q,
                        impl.Prepare("SELECT f.id, t.source, f.name FROM funcs f JOIN tus t "
                                     "ON t.id = f.tu ORDER BY t.source, t.output, f.name"));
  while (true) {
    MMSB_ASSIGN_OR_RETURN(auto row, q.Step());
    if (!row) break;
    FunctionId id{q.Int(0), q.Text(1), q.Text(2)};
    const int rank = NameMatchRank(query, id.name);
    if (rank == 0 || rank < best_rank) continue;
    if (rank > best_rank) {
      best.clear();
      best_rank = rank;
    }
    best.push_back(std::move(id));
  }
  return best;
}

}  // namespace mmsb::ir
