#include "mmsb/ir/store.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
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
  // An absent value is unequal too.
  if (!format.ok() || *format != schema::kFormat) return foreign();
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
// The header and the size are read through the connection's own descriptor of the file (`db`
// has opened it and read nothing yet), never by opening the file again: closing any descriptor
// of a file drops every POSIX lock this process holds on it, SQLite's locks of another
// connection to the same store included (the same hazard as the -shm SIGBUS, WriteLockHolder).
Status CheckNotTruncated(sqlite3* db, const std::string& path) {
  std::error_code ec;
  if (fs::file_size(path + "-wal", ec) > 0 && !ec) return Status::Ok();
  if (fs::exists(path + "-journal", ec)) return Status::Ok();
  sqlite3_file* file = nullptr;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, static_cast<void*>(&file)) !=
          SQLITE_OK ||
      file == nullptr || file->pMethods == nullptr)
    return Status::Ok();
  sqlite3_int64 size = 0;
  if (file->pMethods->xFileSize(file, &size) != SQLITE_OK || size < 100) return Status::Ok();
  unsigned char h[100];
  if (file->pMethods->xRead(file, h, sizeof h, 0) != SQLITE_OK) return Status::Ok();
  if (std::memcmp(h, "SQLite format 3", 16) != 0) return Status::Ok();
  auto be32 = [&](int at) {
    return (std::uint32_t{h[at]} << 24) | (std::uint32_t{h[at + 1]} << 16) |
           (std::uint32_t{h[at + 2]} << 8) | h[at + 3];
  };
  std::uint64_t page_size = (std::uint32_t{h[16]} << 8) | h[17];
  if (page_size == 1) page_size = 65536;
  const std::uint64_t pages = be32(28);
  if (be32(24) != be32(92) || pages == 0) return Status::Ok();
  if (static_cast<std::uint64_t>(size) < pages * page_size) {
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
                                             const StoreOptions& options) {
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
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                    (mode == Mode::kReadWrite ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status s = sql::ErrorStatus(db, rc, "opening the IR store " + path);
    sqlite3_close_v2(db);
    return s;
  }
  if (mode == Mode::kExisting) {
    // Readers only, before SQLite reads a page: a writer may be creating or checkpointing the
    // file right now. A state seen in the middle of that passes on a second look.
    Status t = CheckNotTruncated(db, path);
    if (!t.ok()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      t = CheckNotTruncated(db, path);
    }
    if (!t.ok()) {
      sqlite3_close_v2(db);
      return t;
    }
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
  // taken with fcntl. Its holder is read from /proc/locks, never by opening the -shm file and
  // asking F_GETLK: closing any descriptor of a file drops every POSIX lock this process holds
  // on it, SQLite's own included. Losing the shared DMS lock let another process opening the
  // store take it as the first user and truncate the -shm file under this process's mapping
  // (SIGBUS; IrStore.SixteenConcurrentWritersLoseNothing, and
  // WaitingForTheWriteLockKeepsThisProcessesSqliteLocks).
  struct stat st{};
  if (::stat((path + "-shm").c_str(), &st) != 0) return "";
  std::ifstream locks("/proc/locks");
  const long self = static_cast<long>(::getpid());
  std::string line;
  while (std::getline(locks, line)) {
    if (line.find("->") != std::string::npos) continue;  // a waiter, not a holder
    std::istringstream in(line);
    std::string id, cls, advisory, type, file, start, end;
    long pid = 0;
    if (!(in >> id >> cls >> advisory >> type >> pid >> file >> start >> end)) continue;
    if ((cls != "POSIX" && cls != "OFDLCK") || type != "WRITE" || pid <= 0 || pid == self) continue;
    unsigned maj = 0, min = 0;
    unsigned long long ino = 0;
    if (std::sscanf(file.c_str(), "%x:%x:%llu", &maj, &min, &ino) != 3) continue;
    if (maj != major(st.st_dev) || min != minor(st.st_dev) || ino != st.st_ino) continue;
    if (!AllDigits(start) || (end != "EOF" && !AllDigits(end))) continue;
    if (std::stoull(start) > 120 || (end != "EOF" && std::stoull(end) < 120)) continue;
    std::string comm;
    std::ifstream c("/proc/" + std::to_string(pid) + "/comm");
    std::getline(c, comm);
    return "pid " + std::to_string(pid) + (comm.empty() ? "" : " (" + comm + ")");
  }
  return "";
}

}  // namespace mmsb::ir
