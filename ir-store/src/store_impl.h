// The IR store's connection and what every part of it shares: write transactions (BEGIN
// IMMEDIATE with a bounded wait for the lock), interned rows, meta keys, the manifest cache and
// the compression dictionary. Store's methods live in store.cc (open, schema), store_write.cc
// (captures, generations), store_query.cc, store_gc.cc; the dictionary in store_dictionary.cc.
// See docs/IRStore.md.
//
// Thread-safety: one thread at a time per Store (and so per Impl).
#pragma once

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mmsb/ir/store.h"

#include "blob.h"
#include "sqlite_db.h"
#include "store_schema.h"

namespace mmsb::ir {

// Helpers shared by the store's files (store.cc).
std::int64_t NowMs();
std::string JoinPages(const std::vector<std::string>& pages);
std::vector<std::string> SplitPages(const std::string& s);
bool AllDigits(std::string_view s);
TextHash ToHash(std::string_view blob);
// Sleeps a little, with jitter so that waiting writers do not retry in lockstep.
void Backoff(int attempt);

class Store::Impl {
 public:
  Impl(sqlite3* db, StoreOptions options, std::string path)
      : db_(db),
        options_(std::move(options)),
        path_(std::move(path)),
        codec_([this](std::uint32_t id) { return LoadDictionary(id); }) {}
  ~Impl() { sqlite3_close_v2(db_); }

  sqlite3* db() { return db_; }
  const StoreOptions& options() const { return options_; }
  BlobCodec& codec() { return codec_; }

  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT, waiting for the write lock as long as
  // options_.max_wait_ms allows. Rolls back when `body` fails.
  template <class Body>
  Status WriteTransaction(Body&& body) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.max_wait_ms);
    std::string holder;
    for (int attempt = 0;; ++attempt) {
      const int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
      if (rc == SQLITE_OK) break;
      if (sql::IsBusy(rc) && attempt == 0) {
        holder = WriteLockHolder(path_);
        if (options_.on_wait) options_.on_wait(holder.empty() ? "another process" : holder);
      }
      if (!sql::IsBusy(rc) || std::chrono::steady_clock::now() >= deadline) {
        Status s = sql::ErrorStatus(db_, rc, "starting a write to the IR store");
        if (!sql::IsBusy(rc)) return s;
        return Status(s.code(), s.message() + " (gave up after " +
                                    std::to_string(options_.max_wait_ms / 1000) +
                                    " s waiting for the write lock" +
                                    (holder.empty() ? "" : ", held by " + holder) + "; " +
                                    kWaitEnv + " or --timeout sets the wait)");
      }
      Backoff(attempt);
    }
    Status s = body();
    if (!s.ok()) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return s;
    }
    for (int attempt = 0;; ++attempt) {
      const int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
      if (rc == SQLITE_OK) return Status::Ok();
      if (!sql::IsBusy(rc) || std::chrono::steady_clock::now() >= deadline) {
        Status err = sql::ErrorStatus(db_, rc, "committing to the IR store");
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return err;
      }
      Backoff(attempt);
    }
  }

  Expected<sql::Statement> Prepare(std::string_view q) { return sql::Statement::Prepare(db_, q); }

  // The id of the row of `table` whose `column` equals `value`, inserting it when missing.
  Expected<std::int64_t> Intern(const char* table, const char* column, const std::string& value) {
    std::string sel = std::string("SELECT id FROM ") + table + " WHERE " + column + "=?1";
    MMSB_ASSIGN_OR_RETURN(auto q, Prepare(sel));
    q.Bind(1, value);
    MMSB_ASSIGN_OR_RETURN(auto found, q.Step());
    if (found) return q.Int(0);
    std::string ins = std::string("INSERT INTO ") + table + "(" + column + ") VALUES(?1)";
    MMSB_ASSIGN_OR_RETURN(auto i, Prepare(ins));
    i.Bind(1, value);
    MMSB_RETURN_IF_ERROR(i.Run());
    return static_cast<std::int64_t>(sqlite3_last_insert_rowid(db_));
  }

  Expected<std::optional<std::string>> Meta(const char* key) {
    MMSB_ASSIGN_OR_RETURN(auto q, Prepare("SELECT value FROM meta WHERE key=?1"));
    q.Bind(1, std::string_view(key));
    MMSB_ASSIGN_OR_RETURN(auto found, q.Step());
    if (!found) return std::optional<std::string>();
    return std::optional<std::string>(q.Text(0));
  }

  Status SetMeta(const char* key, const std::string& value) {
    MMSB_ASSIGN_OR_RETURN(auto q,
                          Prepare("INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)"));
    q.Bind(1, std::string_view(key)).Bind(2, value);
    return q.Run();
  }

  Expected<std::int64_t> MaxGeneration() {
    MMSB_ASSIGN_OR_RETURN(auto q, Prepare("SELECT COALESCE(MAX(id), 0) FROM generations"));
    MMSB_ASSIGN_OR_RETURN(auto row, q.Step());
    (void)row;
    return q.Int(0);
  }

  Expected<std::int64_t> ChooseGeneration(std::int64_t tu, const TuCapture& c,
                                          const GenerationRequest& req);

  // (func, stage) -> text hash of every entry of a manifest.
  using ManifestMap = std::map<std::pair<std::int64_t, int>, TextHash>;
  Expected<const ManifestMap*> LoadManifest(std::int64_t manifest) {
    auto it = manifest_cache_.find(manifest);
    if (it != manifest_cache_.end()) return &it->second;
    MMSB_ASSIGN_OR_RETURN(auto q,
                          Prepare("SELECT func, stage, text_hash FROM entries WHERE manifest=?1"));
    q.Bind(1, manifest);
    ManifestMap m;
    while (true) {
      MMSB_ASSIGN_OR_RETURN(auto row, q.Step());
      if (!row) break;
      m[{q.Int(0), static_cast<int>(q.Int(1))}] = ToHash(q.Blob(2));
    }
    return &manifest_cache_.emplace(manifest, std::move(m)).first->second;
  }

  void ClearCaches() { manifest_cache_.clear(); }

  Expected<bool> HasTable(const char* name) {
    MMSB_ASSIGN_OR_RETURN(auto q, Prepare("SELECT count(*) FROM sqlite_schema WHERE "
                                          "type='table' AND name=?1"));
    q.Bind(1, std::string_view(name));
    MMSB_ASSIGN_OR_RETURN(auto row, q.Step());
    (void)row;
    return q.Int(0) > 0;
  }

  // Whether `captures` has the unit_hash column (stores made before it do not).
  Expected<bool> HasUnitHashes() {
    MMSB_ASSIGN_OR_RETURN(auto q, Prepare("SELECT count(*) FROM pragma_table_info('captures') "
                                          "WHERE name='unit_hash'"));
    MMSB_ASSIGN_OR_RETURN(auto row, q.Step());
    (void)row;
    return q.Int(0) > 0;
  }

  // The bytes of dictionary `id` (the codec's loader).
  Expected<std::string> LoadDictionary(std::uint32_t id);

  // A dictionary trained by this writer, not yet stored.
  struct NewDictionary {
    std::uint32_t id = 0;
    std::string bytes;
    std::int64_t samples = 0;
  };

  // Points the codec at the dictionary new blobs are compressed with: the store's newest one;
  // without one, a dictionary trained here once this capture's new texts (`fresh`) and the texts
  // already stored reach options_.dictionary_training_bytes (returned, for the write
  // transaction to store); else none. A stored dictionary that does not load is passed over
  // (blobs are compressed alone), so a damaged one cannot stop captures.
  Expected<std::optional<NewDictionary>> ChooseDictionary(
      const std::vector<std::string_view>& fresh);

  // Inside the write transaction: stores `d`, which the blobs in `compressed` were compressed
  // with. Should another dictionary hold its id (a 31-bit hash of its content), the blobs are
  // compressed again alone.
  Status StoreDictionary(const NewDictionary& d,
                         const std::map<TextHash, const std::string*>& texts,
                         std::map<TextHash, std::string>& compressed);

 private:
  sqlite3* db_;
  StoreOptions options_;
  std::string path_;
  BlobCodec codec_;
  std::unordered_map<std::int64_t, ManifestMap> manifest_cache_;
};

}  // namespace mmsb::ir
