// The IR store's writes: a TU's capture (hashing, compression, the manifest and its rows in one
// write transaction) and the generation it joins. See docs/IRStore.md.
#include <xxhash.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "blob.h"
#include "sqlite_db.h"
#include "store_impl.h"
#include "store_schema.h"

namespace mmsb::ir {

Expected<std::int64_t> Store::Impl::ChooseGeneration(std::int64_t tu, const TuCapture& c,
                                                     const GenerationRequest& req) {
  auto close_open = [&]() -> Status {
    return sql::Exec(db_, "UPDATE generations SET is_open=0 WHERE is_open=1");
  };
  auto insert = [&](std::int64_t id, const std::optional<std::string>& label, bool is_explicit,
                    bool is_open) -> Status {
    MMSB_ASSIGN_OR_RETURN(auto q, Prepare("INSERT INTO generations(id, opened_at_ms, label, "
                                          "is_explicit, is_open, compiler, flags_hash) "
                                          "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    q.Bind(1, id).Bind(2, NowMs());
    if (label) {
      q.Bind(3, *label);
    } else {
      q.BindNull(3);
    }
    q.Bind(4, std::int64_t{is_explicit}).Bind(5, std::int64_t{is_open});
    q.Bind(6, c.compiler).Bind(7, c.flags_hash);
    return q.Run();
  };
  auto label_taken = [&](const std::string& label) -> Expected<std::optional<std::int64_t>> {
    MMSB_ASSIGN_OR_RETURN(auto q, Prepare("SELECT id FROM generations WHERE label=?1"));
    q.Bind(1, label);
    MMSB_ASSIGN_OR_RETURN(auto found, q.Step());
    if (!found) return std::optional<std::int64_t>();
    return std::optional<std::int64_t>(q.Int(0));
  };

  const std::string& want = req.explicit_generation;
  if (!want.empty()) {
    if (AllDigits(want)) {
      const std::int64_t id = std::stoll(want);
      if (id <= 0) return InvalidArgument(std::string(kGenerationEnv) + " must be positive");
      MMSB_ASSIGN_OR_RETURN(auto q, Prepare("SELECT 1 FROM generations WHERE id=?1"));
      q.Bind(1, id);
      MMSB_ASSIGN_OR_RETURN(auto found, q.Step());
      if (found) return id;
      MMSB_RETURN_IF_ERROR(close_open());
      MMSB_RETURN_IF_ERROR(insert(id, std::nullopt, true, false));
      return id;
    }
    MMSB_ASSIGN_OR_RETURN(auto existing, label_taken(want));
    if (existing) return *existing;
    MMSB_ASSIGN_OR_RETURN(auto max, MaxGeneration());
    MMSB_RETURN_IF_ERROR(close_open());
    MMSB_RETURN_IF_ERROR(insert(max + 1, want, true, false));
    return max + 1;
  }

  MMSB_ASSIGN_OR_RETURN(
      auto open, Prepare("SELECT id, EXISTS(SELECT 1 FROM captures WHERE gen=generations.id AND "
                         "tu=?1) FROM generations WHERE is_open=1 ORDER BY id DESC LIMIT 1"));
  open.Bind(1, tu);
  MMSB_ASSIGN_OR_RETURN(auto has_open, open.Step());
  if (has_open && open.Int(1) == 0) return open.Int(0);
  MMSB_RETURN_IF_ERROR(close_open());
  std::optional<std::string> label;
  MMSB_ASSIGN_OR_RETURN(auto next_label, Meta("next_label"));
  if (next_label) {
    MMSB_RETURN_IF_ERROR(sql::Exec(db_, "DELETE FROM meta WHERE key='next_label'"));
    MMSB_ASSIGN_OR_RETURN(auto taken, label_taken(*next_label));
    if (!taken) label = *next_label;
  }
  MMSB_ASSIGN_OR_RETURN(auto max, MaxGeneration());
  MMSB_RETURN_IF_ERROR(insert(max + 1, label, false, true));
  return max + 1;
}

Expected<std::int64_t> Store::AddCapture(const TuCapture& c, const GenerationRequest& req) {
  Impl& impl = *impl_;
  impl.ClearCaches();

  // Everything that needs no lock: hashes, the manifest's identity, compression.
  struct Row {
    const FunctionRecord* rec;
    TextHash hash;
    std::string pages;
  };
  std::vector<Row> rows;
  rows.reserve(c.functions.size());
  for (const FunctionRecord& f : c.functions)
    rows.push_back({&f, HashText(f.text), JoinPages(f.page_types)});
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.rec->name != b.rec->name ? a.rec->name < b.rec->name : a.rec->stage < b.rec->stage;
  });
  rows.erase(std::unique(rows.begin(), rows.end(),
                         [](const Row& a, const Row& b) {
                           return a.rec->name == b.rec->name && a.rec->stage == b.rec->stage;
                         }),
             rows.end());
  TextHash manifest_hash;
  {
    XXH3_state_t* st = XXH3_createState();
    XXH3_128bits_reset(st);
    auto add = [&](const void* p, size_t n) { XXH3_128bits_update(st, p, n); };
    auto add_str = [&](const std::string& s) {
      const std::uint64_t n = s.size();
      add(&n, sizeof n);
      add(s.data(), s.size());
    };
    for (const Row& r : rows) {
      const FunctionRecord& f = *r.rec;
      add_str(f.name);
      const std::uint64_t nums[] = {static_cast<std::uint64_t>(f.stage), f.structural_hash,
                                    f.instructions, f.blocks, f.line};
      add(nums, sizeof nums);
      add(r.hash.data(), r.hash.size());
      add_str(f.linkage);
      add_str(f.file);
      add_str(r.pages);
    }
    const XXH128_hash_t h = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    XXH128_canonical_t canon;
    XXH128_canonicalFromHash(&canon, h);
    std::copy(std::begin(canon.digest), std::end(canon.digest), manifest_hash.begin());
  }

  // Blobs this store lacks (read outside the write lock; rechecked inside it).
  std::map<TextHash, const std::string*> unique_texts;
  for (const Row& r : rows) unique_texts.emplace(r.hash, &r.rec->text);
  std::map<TextHash, std::string> compressed;
  std::optional<Impl::NewDictionary> new_dict;
  {
    MMSB_ASSIGN_OR_RETURN(auto q, impl.Prepare("SELECT 1 FROM blobs WHERE hash=?1"));
    std::vector<std::pair<const TextHash*, const std::string*>> missing;
    for (const auto& [hash, text] : unique_texts) {
      q.Reset();
      q.BindBlob(1, hash.data(), hash.size());
      MMSB_ASSIGN_OR_RETURN(auto found, q.Step());
      if (!found) missing.emplace_back(&hash, text);
    }
    std::vector<std::string_view> fresh;
    fresh.reserve(missing.size());
    for (const auto& m : missing) fresh.emplace_back(*m.second);
    MMSB_ASSIGN_OR_RETURN(new_dict, impl.ChooseDictionary(fresh));
    for (const auto& [hash, text] : missing)
      compressed.emplace(*hash, impl.codec().Compress(*text));
  }

  std::int64_t generation = 0;
  Status s = impl.WriteTransaction([&]() -> Status {
    // Blobs: a concurrent gc may have removed one that looked present.
    {
      MMSB_ASSIGN_OR_RETURN(auto has, impl.Prepare("SELECT 1 FROM blobs WHERE hash=?1"));
      for (const auto& [hash, text] : unique_texts) {
        if (compressed.count(hash) != 0) continue;
        has.Reset();
        has.BindBlob(1, hash.data(), hash.size());
        MMSB_ASSIGN_OR_RETURN(auto found, has.Step());
        if (!found) compressed.emplace(hash, impl.codec().Compress(*text));
      }
      if (new_dict) MMSB_RETURN_IF_ERROR(impl.StoreDictionary(*new_dict, unique_texts, compressed));
      MMSB_ASSIGN_OR_RETURN(
          auto ins,
          impl.Prepare("INSERT OR IGNORE INTO blobs(hash, raw_size, data) VALUES(?1,?2,?3)"));
      for (const auto& [hash, data] : compressed) {
        ins.Reset();
        ins.BindBlob(1, hash.data(), hash.size())
            .Bind(2, static_cast<std::int64_t>(unique_texts.at(hash)->size()))
            .BindBlob(3, data.data(), data.size());
        MMSB_RETURN_IF_ERROR(ins.Run());
      }
    }

    std::int64_t tu = 0;
    {
      MMSB_ASSIGN_OR_RETURN(auto q,
                            impl.Prepare("SELECT id FROM tus WHERE source=?1 AND output=?2"));
      q.Bind(1, c.source).Bind(2, c.output);
      MMSB_ASSIGN_OR_RETURN(auto found, q.Step());
      if (found) {
        tu = q.Int(0);
      } else {
        MMSB_ASSIGN_OR_RETURN(auto ins,
                              impl.Prepare("INSERT INTO tus(source, output) VALUES(?1,?2)"));
        ins.Bind(1, c.source).Bind(2, c.output);
        MMSB_RETURN_IF_ERROR(ins.Run());
        tu = sqlite3_last_insert_rowid(impl.db());
      }
    }

    bool fault_done = false;
    auto fault = [&] {
      if (!fault_done && impl.options().fault_in_transaction) impl.options().fault_in_transaction();
      fault_done = true;
    };

    std::int64_t manifest = 0;
    {
      MMSB_ASSIGN_OR_RETURN(auto q,
                            impl.Prepare("SELECT id FROM manifests WHERE tu=?1 AND hash=?2"));
      q.Bind(1, tu).BindBlob(2, manifest_hash.data(), manifest_hash.size());
      MMSB_ASSIGN_OR_RETURN(auto found, q.Step());
      if (found) manifest = q.Int(0);
    }
    if (manifest == 0) {
      MMSB_ASSIGN_OR_RETURN(auto ins,
                            impl.Prepare("INSERT INTO manifests(tu, hash) VALUES(?1,?2)"));
      ins.Bind(1, tu).BindBlob(2, manifest_hash.data(), manifest_hash.size());
      MMSB_RETURN_IF_ERROR(ins.Run());
      manifest = sqlite3_last_insert_rowid(impl.db());

      MMSB_ASSIGN_OR_RETURN(auto fsel,
                            impl.Prepare("SELECT id FROM funcs WHERE tu=?1 AND name=?2"));
      MMSB_ASSIGN_OR_RETURN(auto fins, impl.Prepare("INSERT INTO funcs(tu, name) VALUES(?1,?2)"));
      MMSB_ASSIGN_OR_RETURN(
          auto eins,
          impl.Prepare("INSERT INTO entries(manifest, func, stage, text_hash, struct_hash, "
                       "insts, blocks, linkage, file, line, pages) "
                       "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)"));
      std::map<std::string, std::int64_t> files;
      std::int64_t func = 0;
      const std::string* func_name = nullptr;
      for (size_t i = 0; i < rows.size(); ++i) {
        const Row& r = rows[i];
        const FunctionRecord& f = *r.rec;
        if (func_name == nullptr || *func_name != f.name) {
          func_name = &f.name;
          fsel.Reset();
          fsel.Bind(1, tu).Bind(2, f.name);
          MMSB_ASSIGN_OR_RETURN(auto found, fsel.Step());
          if (found) {
            func = fsel.Int(0);
          } else {
            fins.Reset();
            fins.Bind(1, tu).Bind(2, f.name);
            MMSB_RETURN_IF_ERROR(fins.Run());
            func = sqlite3_last_insert_rowid(impl.db());
          }
        }
        std::int64_t file = 0;
        if (!f.file.empty()) {
          auto it = files.find(f.file);
          if (it == files.end()) {
            MMSB_ASSIGN_OR_RETURN(auto id, impl.Intern("files", "path", f.file));
            it = files.emplace(f.file, id).first;
          }
          file = it->second;
        }
        eins.Reset();
        eins.Bind(1, manifest).Bind(2, func).Bind(3, static_cast<std::int64_t>(f.stage));
        eins.BindBlob(4, r.hash.data(), r.hash.size());
        eins.Bind(5, static_cast<std::int64_t>(f.structural_hash));
        eins.Bind(6, std::int64_t{f.instructions}).Bind(7, std::int64_t{f.blocks});
        eins.Bind(8, f.linkage);
        if (file != 0) {
          eins.Bind(9, file);
        } else {
          eins.BindNull(9);
        }
        eins.Bind(10, std::int64_t{f.line}).Bind(11, r.pages);
        MMSB_RETURN_IF_ERROR(eins.Run());
        if (i == rows.size() / 2) fault();
      }
    }
    fault();

    MMSB_ASSIGN_OR_RETURN(auto gen, impl.ChooseGeneration(tu, c, req));
    generation = gen;
    // A store made before unit hashes gains the column with the first capture that has one
    // (under the write lock, so concurrent writers cannot both add it).
    MMSB_ASSIGN_OR_RETURN(bool unit_column, impl.HasUnitHashes());
    if (!unit_column && c.unit_hash != 0) {
      MMSB_RETURN_IF_ERROR(sql::Exec(impl.db(), schema::kAddUnitHash));
      unit_column = true;
    }
    MMSB_ASSIGN_OR_RETURN(
        auto cap, impl.Prepare(unit_column ? "INSERT OR REPLACE INTO captures(gen, tu, manifest, "
                                             "captured_at_ms, compiler, flags_hash, unit_hash) "
                                             "VALUES(?1,?2,?3,?4,?5,?6,?7)"
                                           : "INSERT OR REPLACE INTO captures(gen, tu, manifest, "
                                             "captured_at_ms, compiler, flags_hash) "
                                             "VALUES(?1,?2,?3,?4,?5,?6)"));
    cap.Bind(1, gen).Bind(2, tu).Bind(3, manifest).Bind(4, NowMs());
    cap.Bind(5, c.compiler).Bind(6, c.flags_hash);
    if (unit_column) {
      if (c.unit_hash != 0) {
        cap.Bind(7, static_cast<std::int64_t>(c.unit_hash));
      } else {
        cap.BindNull(7);
      }
    }
    MMSB_RETURN_IF_ERROR(cap.Run());
    if (!req.explicit_generation.empty()) {
      // Replacing a TU's capture in an explicit generation can orphan its old manifest.
      MMSB_RETURN_IF_ERROR(sql::Exec(
          impl.db(),
          "DELETE FROM entries WHERE manifest IN (SELECT id FROM manifests WHERE id NOT IN "
          "(SELECT manifest FROM captures));"
          "DELETE FROM manifests WHERE id NOT IN (SELECT manifest FROM captures);"));
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return generation;
}

Status Store::BeginGeneration(const std::string& label) {
  Impl& impl = *impl_;
  return impl.WriteTransaction([&]() -> Status {
    MMSB_RETURN_IF_ERROR(sql::Exec(impl.db(), "UPDATE generations SET is_open=0 WHERE is_open=1"));
    if (label.empty()) return sql::Exec(impl.db(), "DELETE FROM meta WHERE key='next_label'");
    return impl.SetMeta("next_label", label);
  });
}

}  // namespace mmsb::ir
