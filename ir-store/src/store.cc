#include "mmsb/ir/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "mmsb/ir/demangle.h"
#include "mmsb/ir/diff.h"

#include "blob.h"
#include "sqlite_db.h"
#include "store_impl.h"
#include "store_schema.h"

namespace mmsb::ir {

namespace fs = std::filesystem;

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string JoinPages(const std::vector<std::string>& pages) {
  std::string out;
  for (const std::string& p : pages) {
    if (!out.empty()) out += ',';
    out += p;
  }
  return out;
}

std::vector<std::string> SplitPages(const std::string& s) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin < s.size()) {
    size_t end = s.find(',', begin);
    if (end == std::string::npos) end = s.size();
    if (end > begin) out.push_back(s.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && s.size() < 18 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

TextHash ToHash(std::string_view blob) {
  TextHash h{};
  if (blob.size() == h.size()) std::copy(blob.begin(), blob.end(), h.begin());
  return h;
}

// Sleeps a little, with jitter so that waiting writers do not retry in lockstep.
void Backoff(int attempt) {
  static thread_local std::minstd_rand rng(static_cast<unsigned>(getpid()) ^
                                           static_cast<unsigned>(NowMs()));
  const int cap = std::min(200, 5 << std::min(attempt, 5));
  std::this_thread::sleep_for(std::chrono::milliseconds(1 + rng() % cap));
}

namespace {

Status InitialiseSchema(Store::Impl& impl, const StoreOptions& options) {
  sqlite3* db = impl.db();
  // WAL is a property of the file: set once, by whoever creates the store.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options.max_wait_ms);
  for (int attempt = 0;; ++attempt) {
    const int rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) break;
    if (!sql::IsBusy(rc) || std::chrono::steady_clock::now() >= deadline)
      return sql::ErrorStatus(db, rc, "switching the IR store to WAL mode");
    Backoff(attempt);
  }
  return impl.WriteTransaction([&]() -> Status {
    // Another process may have created the schema while this one waited for the lock.
    MMSB_ASSIGN_OR_RETURN(auto q, impl.Prepare("SELECT count(*) FROM sqlite_schema"));
    MMSB_ASSIGN_OR_RETURN(auto row, q.Step());
    (void)row;
    if (q.Int(0) > 0) return Status::Ok();
    MMSB_RETURN_IF_ERROR(sql::Exec(db, schema::kCreate));
    MMSB_RETURN_IF_ERROR(impl.SetMeta("format", schema::kFormat));
    MMSB_RETURN_IF_ERROR(impl.SetMeta("schema", std::to_string(schema::kSchemaVersion)));
    return impl.SetMeta("created_at_ms", std::to_string(NowMs()));
  });
}

Status CheckFormat(Store::Impl& impl, const std::string& path) {
  auto foreign = [&] {
    return FailedPrecondition(path +
                              " is an SQLite database but not an MMSB IR store; remove it "
                              "or point " +
                              kStoreEnv + " elsewhere");
  };
  MMSB_ASSIGN_OR_RETURN(auto q,
                        impl.Prepare("SELECT count(*) FROM sqlite_schema WHERE type='table' "
                                     "AND name='meta'"));
  MMSB_ASSIGN_OR_RETURN(auto row, q.Step());
  (void)row;
  if (q.Int(0) == 0) return foreign();
  auto format = impl.Meta("format");
  if (!format.ok() || !format->has_value() || **format != schema::kFormat) return foreign();
  MMSB_ASSIGN_OR_RETURN(auto version, impl.Meta("schema"));
  if (!version.has_value() || !AllDigits(*version)) return foreign();
  if (std::stoi(*version) > schema::kSchemaVersion) {
    return FailedPrecondition(path + " was written by a newer mmsb (IR store schema " + *version +
                              ", this one reads up to " + std::to_string(schema::kSchemaVersion) +
                              ")");
  }
  return Status::Ok();
}

// SQLite reads pages past the end of a truncated file as empty, so a store cut short can answer
// queries from what is left. Its header says how many pages it has (valid when the "version valid
// for" number equals the change counter): a shorter file is corruption. Only checked with no WAL
// content or rollback journal: a checkpoint in progress may write page 1 (the header) before the
// pages it adds.
Status CheckNotTruncated(const std::string& path) {
  std::error_code ec;
  if (fs::file_size(path + "-wal", ec) > 0 && !ec) return Status::Ok();
  if (fs::exists(path + "-journal", ec)) return Status::Ok();
  const auto size = fs::file_size(path, ec);
  if (ec || size < 100) return Status::Ok();
  std::ifstream in(path, std::ios::binary);
  unsigned char h[100];
  if (!in.read(reinterpret_cast<char*>(h), sizeof h)) return Status::Ok();
  if (std::memcmp(h, "SQLite format 3", 16) != 0) return Status::Ok();
  auto be32 = [&](int at) {
    return (std::uint32_t{h[at]} << 24) | (std::uint32_t{h[at + 1]} << 16) |
           (std::uint32_t{h[at + 2]} << 8) | h[at + 3];
  };
  std::uint64_t page_size = (std::uint32_t{h[16]} << 8) | h[17];
  if (page_size == 1) page_size = 65536;
  const std::uint64_t pages = be32(28);
  if (be32(24) != be32(92) || pages == 0) return Status::Ok();
  if (size < pages * page_size) {
    return Corruption(path + " is truncated: its header says " + std::to_string(pages) +
                      " pages of " + std::to_string(page_size) + " bytes, the file holds " +
                      std::to_string(size) + " bytes");
  }
  return Status::Ok();
}

}  // namespace

Store::Store(std::string path, std::unique_ptr<Impl> impl)
    : path_(std::move(path)), impl_(std::move(impl)) {}

Store::~Store() = default;

Expected<std::unique_ptr<Store>> Store::Open(const std::string& path, Mode mode,
                                             StoreOptions options) {
  std::error_code ec;
  if (mode == Mode::kReadWrite) {
    const fs::path dir = fs::path(path).parent_path();
    if (!dir.empty()) fs::create_directories(dir, ec);
    if (ec) return IOError("cannot create " + dir.string() + ": " + ec.message());
  } else if (!fs::exists(path, ec)) {
    return NotFound("no IR store at " + path);
  }
  if (fs::exists(path, ec) && !fs::is_regular_file(path, ec))
    return FailedPrecondition(path + " is not a regular file");
  if (mode == Mode::kExisting) {
    // Readers only: a writer may be creating or checkpointing the file right now. A state seen
    // in the middle of that passes on a second look.
    Status t = CheckNotTruncated(path);
    if (!t.ok()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      t = CheckNotTruncated(path);
    }
    if (!t.ok()) return t;
  }

  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                    (mode == Mode::kReadWrite ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status s = sql::ErrorStatus(db, rc, "opening the IR store " + path);
    sqlite3_close_v2(db);
    return s;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  auto impl = std::make_unique<Impl>(db, options, path);

  // Is it a database at all? (A foreign file gives SQLITE_NOTADB here.) While another process
  // creates the store, its schema is locked for longer than one busy timeout may last on a
  // loaded machine: wait for it as a write waits for the write lock (max_wait_ms).
  std::int64_t tables = 0;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options.max_wait_ms);
  for (int attempt = 0;; ++attempt) {
    sqlite3_stmt* probe = nullptr;
    rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_schema", -1, &probe, nullptr);
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(probe);
      if (rc == SQLITE_ROW) tables = sqlite3_column_int64(probe, 0);
    }
    sqlite3_finalize(probe);
    if (rc == SQLITE_ROW) break;
    if (!sql::IsBusy(rc) || std::chrono::steady_clock::now() >= deadline) {
      return sql::ErrorStatus(db, rc, "reading the schema")
          .WithContext(path + " is not a usable IR store");
    }
    Backoff(attempt);
  }
  if (tables == 0) {
    if (mode != Mode::kReadWrite) return NotFound(path + " is an empty database, not an IR store");
    MMSB_RETURN_IF_ERROR(InitialiseSchema(*impl, options).WithContext("creating " + path));
  }
  MMSB_RETURN_IF_ERROR(CheckFormat(*impl, path));
  // WAL with synchronous=NORMAL: a crash may lose the last commits, never consistency.
  MMSB_RETURN_IF_ERROR(sql::Exec(db, "PRAGMA synchronous=NORMAL"));
  return std::unique_ptr<Store>(new Store(path, std::move(impl)));
}

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

Expected<GcResult> Store::Gc(int keep) {
  if (keep < 1) return InvalidArgument("gc must keep at least one generation");
  Impl& impl = *impl_;
  impl.ClearCaches();
  GcResult result;
  result.bytes_before = SizeBytes();
  Status s = impl.WriteTransaction([&]() -> Status {
    MMSB_ASSIGN_OR_RETURN(auto q, impl.Prepare("SELECT id FROM generations ORDER BY id DESC "
                                               "LIMIT 1 OFFSET ?1"));
    q.Bind(1, static_cast<std::int64_t>(keep - 1));
    MMSB_ASSIGN_OR_RETURN(auto found, q.Step());
    if (!found) return Status::Ok();
    std::int64_t oldest_kept = q.Int(0);
    // The open generation still takes captures of the build that opened it: moving inherited
    // captures into it would make that build's next TU look recaptured and open another
    // generation. Keep the generation before it too, which then takes them over.
    MMSB_ASSIGN_OR_RETURN(auto open,
                          impl.Prepare("SELECT max(id) FROM generations WHERE id < ?1 AND "
                                       "EXISTS (SELECT 1 FROM generations WHERE id = ?1 "
                                       "AND is_open = 1)"));
    open.Bind(1, oldest_kept);
    MMSB_ASSIGN_OR_RETURN(auto open_row, open.Step());
    if (open_row && !open.IsNull(0)) oldest_kept = open.Int(0);
    MMSB_ASSIGN_OR_RETURN(auto n, impl.Prepare("SELECT count(*) FROM generations WHERE id < ?1"));
    n.Bind(1, oldest_kept);
    MMSB_ASSIGN_OR_RETURN(auto row, n.Step());
    (void)row;
    result.generations_removed = static_cast<int>(n.Int(0));
    // The oldest kept generation takes over what it inherits from removed generations.
    MMSB_ASSIGN_OR_RETURN(
        auto move, impl.Prepare("UPDATE captures SET gen = ?1 WHERE gen < ?1 AND (gen, tu) IN "
                                "(SELECT MAX(gen), tu FROM captures WHERE gen < ?1 GROUP BY tu) "
                                "AND tu NOT IN (SELECT tu FROM captures WHERE gen = ?1)"));
    move.Bind(1, oldest_kept);
    MMSB_RETURN_IF_ERROR(move.Run());
    MMSB_ASSIGN_OR_RETURN(auto del, impl.Prepare("DELETE FROM captures WHERE gen < ?1"));
    del.Bind(1, oldest_kept);
    MMSB_RETURN_IF_ERROR(del.Run());
    MMSB_ASSIGN_OR_RETURN(auto delg, impl.Prepare("DELETE FROM generations WHERE id < ?1"));
    delg.Bind(1, oldest_kept);
    MMSB_RETURN_IF_ERROR(delg.Run());
    MMSB_RETURN_IF_ERROR(sql::Exec(
        impl.db(),
        "DELETE FROM manifests WHERE id NOT IN (SELECT manifest FROM captures);"
        "DELETE FROM entries WHERE manifest NOT IN (SELECT id FROM manifests);"
        "DELETE FROM funcs WHERE id NOT IN (SELECT func FROM entries);"
        "DELETE FROM files WHERE id NOT IN (SELECT file FROM entries WHERE file IS NOT NULL);"
        "DELETE FROM tus WHERE id NOT IN (SELECT tu FROM captures);"));
    MMSB_ASSIGN_OR_RETURN(auto blobs, impl.Prepare("DELETE FROM blobs WHERE hash NOT IN "
                                                   "(SELECT text_hash FROM entries)"));
    MMSB_RETURN_IF_ERROR(blobs.Run());
    result.blobs_removed = sqlite3_changes64(impl.db());
    return Status::Ok();
  });
  if (!s.ok()) return s;
  // Give the space back; skipped (not an error) while compiles hold the database open.
  if (result.generations_removed > 0) {
    sqlite3_exec(impl.db(), "VACUUM", nullptr, nullptr, nullptr);
    sqlite3_exec(impl.db(), "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  }
  result.bytes_after = SizeBytes();
  return result;
}

std::int64_t Store::SizeBytes() const {
  std::int64_t total = 0;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    const auto n = fs::file_size(path_ + suffix, ec);
    if (!ec) total += static_cast<std::int64_t>(n);
  }
  return total;
}

Expected<StoreOptions> StoreOptionsFromEnv() {
  StoreOptions o;
  const char* v = std::getenv(kWaitEnv);
  if (v == nullptr || v[0] == '\0') return o;
  const std::string s(v);
  if (!AllDigits(s) || s.size() > 7) {
    return InvalidArgument(std::string(kWaitEnv) + "='" + s + "' is not a whole number of seconds");
  }
  o.max_wait_ms = std::stoi(s) * 1000;
  return o;
}

std::string WriteLockHolder(const std::string& path) {
  // SQLite's WAL write lock is byte 120 of the -shm file (WALINDEX_LOCK_OFFSET + WAL_WRITE_LOCK),
  // taken with fcntl; F_GETLK reports a conflicting holder of another process.
  const int fd = ::open((path + "-shm").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  struct flock fl{};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 120;
  fl.l_len = 1;
  const int rc = ::fcntl(fd, F_GETLK, &fl);
  ::close(fd);
  if (rc != 0 || fl.l_type == F_UNLCK || fl.l_pid <= 0) return "";
  std::string comm;
  std::ifstream in("/proc/" + std::to_string(fl.l_pid) + "/comm");
  std::getline(in, comm);
  return "pid " + std::to_string(fl.l_pid) + (comm.empty() ? "" : " (" + comm + ")");
}

}  // namespace mmsb::ir
