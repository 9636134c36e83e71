// Transaction log benchmarks, each with its baseline measured in the same run:
//   - durable commits/s with group commit from 4 threads, against LevelDB Write(sync=true) and
//     SQLite in WAL mode with synchronous=FULL, on the same payloads (1% deltas of 4 KiB pages);
//   - buffered append throughput (bulk and sparse deltas);
//   - replay throughput against the least any replay must do with the same files (warm cache):
//     read them, checksum them with XXH3 and copy the bytes into a state of the replayed size,
//     for bulk and sparse deltas; sparse replay also as ns per record;
//   - replay of dense (masked) deltas against memcpy of the same bytes out of the mapped files;
//   - checkpoint write throughput for 1 GiB of pages (no fsync).
// Durable commits go to $MMSB_BENCH_DIR (default: $TMPDIR or /tmp), which should be on the disk
// being measured. The buffered append and the checkpoint (no fsync) measure the software path:
// their files go to $MMSB_BENCH_MEMDIR (default /dev/shm when it exists), so the kernel's dirty
// page throttling, which holds a writer to the disk's speed once gigabytes are dirty, does not
// decide the figure. BM_PlainWrite* write the same bytes with write(2) to the same place as the
// ceiling.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include "mmsb/checkpoint.h"
#include "mmsb/log.h"
#include "mmsb/replay.h"

#include "bench_main.h"

namespace {

namespace fs = std::filesystem;

constexpr int kThreads = 4;
constexpr std::size_t kPage = 4096;
constexpr int kChangedPerCommit = 41;  // 1% of 4 KiB
constexpr int kDeltasPerThread = 256;  // pre-computed, cycled

std::string BenchDir(const std::string& name, bool memory = false) {
  const char* base = std::getenv(memory ? "MMSB_BENCH_MEMDIR" : "MMSB_BENCH_DIR");
  if (base == nullptr && memory && fs::is_directory("/dev/shm")) base = "/dev/shm";
  if (base == nullptr) base = std::getenv("TMPDIR");
  const fs::path dir =
      fs::path(base ? base : "/tmp") / ("mmsb-log-bench-" + std::to_string(getpid())) / name;
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir.parent_path());
  return dir.string();
}

void RemoveDir(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
}

// Per thread: a chain of exact deltas of one 4 KiB page, each changing 41 random bytes.
struct Payloads {
  std::vector<std::vector<mmsb::Delta>> deltas;                 // [thread][i]
  std::vector<std::vector<std::vector<std::uint8_t>>> encoded;  // the same, encoded
  std::uint64_t encoded_bytes = 0;                              // total over all
};

const Payloads& GetPayloads() {
  static const Payloads p = [] {
    Payloads out;
    std::mt19937_64 rng(42);
    out.deltas.resize(kThreads);
    out.encoded.resize(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      std::vector<std::uint8_t> page(kPage, 0), next;
      for (int i = 0; i < kDeltasPerThread; ++i) {
        next = page;
        for (int k = 0; k < kChangedPerCommit; ++k)
          next[rng() % kPage] = static_cast<std::uint8_t>(rng() | 1);
        mmsb::Delta d =
            mmsb::Diff(static_cast<mmsb::PageId>(t + 1), static_cast<mmsb::Epoch>(i), page, next);
        out.encoded[t].push_back(mmsb::EncodeDelta(d));
        out.encoded_bytes += out.encoded[t].back().size();
        out.deltas[t].push_back(std::move(d));
        page = next;
      }
    }
    return out;
  }();
  return p;
}

// ---- Durable commits: MMSB group commit -------------------------------------------------------

std::unique_ptr<mmsb::LogWriter> g_writer;
std::string g_writer_dir;

void SetupGroupLog(const benchmark::State&) {
  g_writer_dir = BenchDir("group");
  mmsb::LogOptions o;
  o.durability = mmsb::Durability::kGroup;
  auto w = mmsb::LogWriter::Open(g_writer_dir, o);
  if (!w.ok()) std::abort();
  g_writer = std::move(*w);
}

void TeardownGroupLog(const benchmark::State&) {
  if (!g_writer->Close().ok()) std::abort();
  g_writer.reset();
  RemoveDir(g_writer_dir);
}

void BM_LogGroupCommit4Threads(benchmark::State& state) {
  const Payloads& p = GetPayloads();
  const int t = state.thread_index();
  mmsb::LogBatch batch = g_writer->NewBatch();
  int i = 0;
  std::uint64_t bytes = 0;
  for (auto _ : state) {
    batch.Clear();
    if (!batch.AddDelta(p.deltas[t][i]).ok()) std::abort();
    bytes += p.encoded[t][i].size();
    i = (i + 1) % kDeltasPerThread;
    if (!g_writer->Commit(batch).ok()) std::abort();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  if (t == 0) {
    const auto c = g_writer->counters();
    state.counters["commits_per_fsync"] =
        c.syncs ? static_cast<double>(c.commits) / static_cast<double>(c.syncs) : 0;
  }
}
BENCHMARK(BM_LogGroupCommit4Threads)
    ->Threads(kThreads)
    ->UseRealTime()
    ->Setup(SetupGroupLog)
    ->Teardown(TeardownGroupLog);

// ---- Durable commits: LevelDB Write(sync=true) -------------------------------------------------

leveldb::DB* g_leveldb = nullptr;
std::string g_leveldb_dir;

void SetupLevelDB(const benchmark::State&) {
  g_leveldb_dir = BenchDir("leveldb");
  leveldb::Options o;
  o.create_if_missing = true;
  leveldb::Status s = leveldb::DB::Open(o, g_leveldb_dir, &g_leveldb);
  if (!s.ok()) std::abort();
}

void TeardownLevelDB(const benchmark::State&) {
  delete g_leveldb;
  g_leveldb = nullptr;
  RemoveDir(g_leveldb_dir);
}

void BM_LevelDBSyncWrite4Threads(benchmark::State& state) {
  const Payloads& p = GetPayloads();
  const int t = state.thread_index();
  leveldb::WriteOptions wo;
  wo.sync = true;
  int i = 0;
  std::uint64_t seq = 0, bytes = 0;
  char key[16];
  for (auto _ : state) {
    const auto& value = p.encoded[t][i];
    std::memcpy(key, &t, 4);
    std::memcpy(key + 4, &seq, 8);
    leveldb::WriteBatch b;
    b.Put(leveldb::Slice(key, 12),
          leveldb::Slice(reinterpret_cast<const char*>(value.data()), value.size()));
    if (!g_leveldb->Write(wo, &b).ok()) std::abort();
    bytes += value.size();
    ++seq;
    i = (i + 1) % kDeltasPerThread;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_LevelDBSyncWrite4Threads)
    ->Threads(kThreads)
    ->UseRealTime()
    ->Setup(SetupLevelDB)
    ->Teardown(TeardownLevelDB);

// ---- Durable commits: SQLite WAL, synchronous=FULL, one transaction per commit -----------------

// SQLite allows one writer at a time; a shared connection under a mutex is the fastest way to
// feed it from several threads (separate connections would add busy-wait sleeps).
sqlite3* g_sqlite = nullptr;
sqlite3_stmt* g_insert = nullptr;
std::mutex g_sqlite_mu;
std::string g_sqlite_dir;

void Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(g_sqlite, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "sqlite: %s: %s\n", sql, err);
    std::abort();
  }
}

void SetupSQLite(const benchmark::State&) {
  g_sqlite_dir = BenchDir("sqlite");
  fs::create_directories(g_sqlite_dir);
  if (sqlite3_open((g_sqlite_dir + "/deltas.db").c_str(), &g_sqlite) != SQLITE_OK) std::abort();
  Exec("PRAGMA journal_mode=WAL");
  Exec("PRAGMA synchronous=FULL");
  Exec("CREATE TABLE deltas(thread INTEGER, seq INTEGER, bytes BLOB)");
  if (sqlite3_prepare_v2(g_sqlite, "INSERT INTO deltas VALUES(?, ?, ?)", -1, &g_insert, nullptr) !=
      SQLITE_OK) {
    std::abort();
  }
}

void TeardownSQLite(const benchmark::State&) {
  sqlite3_finalize(g_insert);
  sqlite3_close(g_sqlite);
  g_sqlite = nullptr;
  RemoveDir(g_sqlite_dir);
}

void BM_SQLiteWalFull4Threads(benchmark::State& state) {
  const Payloads& p = GetPayloads();
  const int t = state.thread_index();
  int i = 0;
  std::int64_t seq = 0;
  std::uint64_t bytes = 0;
  for (auto _ : state) {
    const auto& value = p.encoded[t][i];
    {
      std::lock_guard<std::mutex> l(g_sqlite_mu);
      Exec("BEGIN");
      sqlite3_bind_int(g_insert, 1, t);
      sqlite3_bind_int64(g_insert, 2, seq);
      sqlite3_bind_blob(g_insert, 3, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
      if (sqlite3_step(g_insert) != SQLITE_DONE) std::abort();
      sqlite3_reset(g_insert);
      Exec("COMMIT");
    }
    bytes += value.size();
    ++seq;
    i = (i + 1) % kDeltasPerThread;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_SQLiteWalFull4Threads)
    ->Threads(kThreads)
    ->UseRealTime()
    ->Setup(SetupSQLite)
    ->Teardown(TeardownSQLite);

// ---- Durable commits, interleaved -------------------------------------------------------------
//
// The three systems above run one after the other, so a change in the disk's latency between
// them (the machine is shared) moves their ratio. Here they take turns in short bursts, several
// rounds each, and the ratios come from the totals: this is what the figures use.

template <class Fn>
std::uint64_t Burst(Fn fn, std::chrono::milliseconds duration, double* seconds) {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> done{0};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::uint64_t i = 0;
      while (!stop.load(std::memory_order_relaxed)) fn(t, i++);
      done += i;
    });
  }
  std::this_thread::sleep_for(duration);
  stop = true;
  for (auto& th : threads) th.join();
  *seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return done.load();
}

void BM_DurableCommitsInterleaved(benchmark::State& state) {
  const Payloads& p = GetPayloads();
  SetupGroupLog(state);
  SetupLevelDB(state);
  SetupSQLite(state);
  std::vector<mmsb::LogBatch> batches;
  for (int t = 0; t < kThreads; ++t) batches.push_back(g_writer->NewBatch());
  std::vector<std::uint64_t> seqs(kThreads, 0);
  double t_log = 0, t_leveldb = 0, t_sqlite = 0;
  std::uint64_t n_log = 0, n_leveldb = 0, n_sqlite = 0;
  constexpr auto kBurst = std::chrono::milliseconds(100);
  auto log_burst = [&] {
    n_log += Burst(
        [&](int t, std::uint64_t i) {
          mmsb::LogBatch& b = batches[t];
          b.Clear();
          if (!b.AddDelta(p.deltas[t][i % kDeltasPerThread]).ok() || !g_writer->Commit(b).ok())
            std::abort();
        },
        kBurst, &t_log);
  };
  auto leveldb_burst = [&] {
    n_leveldb += Burst(
        [&](int t, std::uint64_t i) {
          const auto& value = p.encoded[t][i % kDeltasPerThread];
          char key[12];
          const std::uint64_t seq = seqs[t]++;
          std::memcpy(key, &t, 4);
          std::memcpy(key + 4, &seq, 8);
          leveldb::WriteBatch wb;
          wb.Put(leveldb::Slice(key, 12),
                 leveldb::Slice(reinterpret_cast<const char*>(value.data()), value.size()));
          leveldb::WriteOptions wo;
          wo.sync = true;
          if (!g_leveldb->Write(wo, &wb).ok()) std::abort();
        },
        kBurst, &t_leveldb);
  };
  auto sqlite_burst = [&] {
    n_sqlite += Burst(
        [&](int t, std::uint64_t i) {
          const auto& value = p.encoded[t][i % kDeltasPerThread];
          std::lock_guard<std::mutex> l(g_sqlite_mu);
          Exec("BEGIN");
          sqlite3_bind_int(g_insert, 1, t);
          sqlite3_bind_int64(g_insert, 2, static_cast<std::int64_t>(i));
          sqlite3_bind_blob(g_insert, 3, value.data(), static_cast<int>(value.size()),
                            SQLITE_STATIC);
          if (sqlite3_step(g_insert) != SQLITE_DONE) std::abort();
          sqlite3_reset(g_insert);
          Exec("COMMIT");
        },
        kBurst, &t_sqlite);
  };
  for (auto _ : state) {
    // 20 rounds; the order rotates so no system always follows the same one.
    for (int round = 0; round < 20; ++round) {
      switch (round % 3) {
        case 0:
          log_burst();
          leveldb_burst();
          sqlite_burst();
          break;
        case 1:
          leveldb_burst();
          sqlite_burst();
          log_burst();
          break;
        default:
          sqlite_burst();
          log_burst();
          leveldb_burst();
          break;
      }
    }
  }
  const auto c = g_writer->counters();
  state.counters["log_commits_per_s"] = static_cast<double>(n_log) / t_log;
  state.counters["leveldb_commits_per_s"] = static_cast<double>(n_leveldb) / t_leveldb;
  state.counters["sqlite_commits_per_s"] = static_cast<double>(n_sqlite) / t_sqlite;
  state.counters["log_commits_per_fsync"] =
      c.syncs ? static_cast<double>(c.commits) / static_cast<double>(c.syncs) : 0;
  TeardownSQLite(state);
  TeardownLevelDB(state);
  TeardownGroupLog(state);
}
BENCHMARK(BM_DurableCommitsInterleaved)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// ---- Workloads for append and replay ---------------------------------------------------------
//
// "bulk": the shape of MMSB's own examples (a particle step rewrites whole arrays): 64 KiB pages,
// each epoch rewrites a contiguous 16 KiB range of 8 of them, so a delta is one 16 KiB run.
// "sparse": the durable-commit payload, 1% of a 4 KiB page changed in scattered bytes (41 runs),
// the worst case for bytes per record. Both are reported.

// "dense": each delta changes a random half of the bytes of a 64 KiB page, which the encoder
// stores as a mask plus the new bytes (the dense form).
enum class Shape { kBulk, kSparse, kDense };
struct Workload {
  std::size_t page_size;
  int pages;
  int deltas_per_epoch;
  Shape shape;
};
constexpr Workload kBulk{std::size_t{64} << 10, 64, 8, Shape::kBulk};
constexpr Workload kSparse{kPage, 256, 16, Shape::kSparse};
constexpr Workload kDense{std::size_t{64} << 10, 64, 8, Shape::kDense};

// Generates epochs of real, chained deltas for a workload.
class Generator {
 public:
  explicit Generator(const Workload& w, std::uint64_t seed)
      : w_(w),
        rng_(seed),
        pages_(w.pages, std::vector<std::uint8_t>(w.page_size, 0)),
        epochs_(w.pages, 0) {}
  void Creates(mmsb::LogBatch& b) const {
    for (int id = 1; id <= w_.pages; ++id) {
      b.AddPageCreate(
          {static_cast<mmsb::PageId>(id), w_.page_size, mmsb::Location::kCpu, false, "", ""});
    }
  }
  void Epoch(mmsb::Epoch e, mmsb::LogBatch& b) {
    for (int k = 0; k < w_.deltas_per_epoch; ++k) {
      const int pg = static_cast<int>(rng_() % w_.pages);
      next_ = pages_[pg];
      if (w_.shape == Shape::kBulk) {
        const std::size_t len = w_.page_size / 4;
        const std::size_t at = rng_() % (w_.page_size - len);
        const auto v = static_cast<std::uint8_t>(e);
        for (std::size_t i = 0; i < len; ++i)
          next_[at + i] = static_cast<std::uint8_t>(next_[at + i] + 1 + ((v + i) & 1));
      } else if (w_.shape == Shape::kDense) {
        for (std::size_t i = 0; i < w_.page_size; i += 64) {
          std::uint64_t bits = rng_();
          for (std::size_t k = 0; k < 64 && i + k < w_.page_size; ++k, bits >>= 1)
            if (bits & 1) next_[i + k] = static_cast<std::uint8_t>(next_[i + k] + 1);
        }
      } else {
        for (int c = 0; c < kChangedPerCommit; ++c)
          next_[rng_() % w_.page_size] = static_cast<std::uint8_t>(rng_() | 1);
      }
      const mmsb::Delta d =
          mmsb::Diff(static_cast<mmsb::PageId>(pg + 1), epochs_[pg], pages_[pg], next_);
      if (!b.AddDelta(d).ok()) std::abort();
      pages_[pg].swap(next_);
      epochs_[pg] = e;  // a page changed twice in one epoch: its second delta follows the first
    }
  }

 private:
  Workload w_;
  std::mt19937_64 rng_;
  std::vector<std::vector<std::uint8_t>> pages_;
  std::vector<mmsb::Epoch> epochs_;
  std::vector<std::uint8_t> next_;
};

// ---- Buffered append ---------------------------------------------------------------------------

// Deletes every segment but the newest.
void TrimSealedSegments(const std::string& dir) {
  std::vector<fs::path> segs;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") segs.push_back(e.path());
  }
  std::sort(segs.begin(), segs.end());
  for (std::size_t k = 0; k + 1 < segs.size(); ++k) fs::remove(segs[k]);
}

// Pre-built epochs (the deltas' encoding is the delta module's cost, measured in delta_bench);
// the timed loop is the log's: framing, checksums, buffering, writes to the OS.
void AppendBuffered(benchmark::State& state, const Workload& w) {
  const std::string dir = BenchDir("buffered", true);
  mmsb::LogOptions o;
  o.durability = mmsb::Durability::kNone;
  o.segment_bytes = std::uint64_t{64} << 20;
  auto writer = mmsb::LogWriter::Open(dir, o);
  if (!writer.ok()) std::abort();
  mmsb::LogWriter& log = **writer;
  std::uint64_t next_trim = std::uint64_t{128} << 20;
  Generator gen(w, 9);
  std::vector<mmsb::LogBatch> epochs;
  for (int i = 0; i < 64; ++i) {
    epochs.push_back(log.NewBatch());
    gen.Epoch(static_cast<mmsb::Epoch>(i + 1), epochs.back());
  }
  const std::uint64_t start = log.counters().bytes;
  std::size_t i = 0;
  for (auto _ : state) {
    if (!log.Commit(epochs[i]).ok()) std::abort();
    i = (i + 1) % epochs.size();
    if (log.counters().bytes >= next_trim) {
      TrimSealedSegments(dir);  // keeps the memory file system from filling up
      next_trim += std::uint64_t{128} << 20;
    }
  }
  if (!log.Flush().ok()) std::abort();
  state.SetBytesProcessed(static_cast<std::int64_t>(log.counters().bytes - start));
  state.SetItemsProcessed(state.iterations());
  if (!log.Close().ok()) std::abort();
  writer->reset();
  RemoveDir(dir);
}

void BM_LogAppendBuffered(benchmark::State& state) { AppendBuffered(state, kBulk); }
BENCHMARK(BM_LogAppendBuffered)->UseRealTime()->MinTime(1.0);
void BM_LogAppendBufferedSparse(benchmark::State& state) { AppendBuffered(state, kSparse); }
BENCHMARK(BM_LogAppendBufferedSparse)->UseRealTime()->MinTime(1.0);

// The ceiling for both: write(2) of 1 MiB buffers to a file in the same place, 256 MiB per file.
void BM_PlainWrite(benchmark::State& state) {
  const std::string dir = BenchDir("plain", true);
  fs::create_directories(dir);
  std::vector<std::uint8_t> buf(1 << 20, 0x5a);
  int fd = -1;
  std::uint64_t in_file = 0, bytes = 0;
  for (auto _ : state) {
    if (fd < 0 || in_file >= (std::uint64_t{256} << 20)) {
      if (fd >= 0) close(fd);
      fd = open((dir + "/f").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0) std::abort();
      in_file = 0;
    }
    if (write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size())) std::abort();
    in_file += buf.size();
    bytes += buf.size();
  }
  close(fd);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  RemoveDir(dir);
}
BENCHMARK(BM_PlainWrite)->UseRealTime()->MinTime(1.0);

// The same including the delta encoding (EncodeDeltaTo), from Delta objects as the sink gets them.
void BM_LogEncodeAndAppendSparse(benchmark::State& state) {
  const Payloads& p = GetPayloads();
  const std::string dir = BenchDir("encode", true);
  mmsb::LogOptions o;
  o.durability = mmsb::Durability::kNone;
  o.segment_bytes = std::uint64_t{64} << 20;
  auto w = mmsb::LogWriter::Open(dir, o);
  if (!w.ok()) std::abort();
  mmsb::LogBatch batch = (*w)->NewBatch();
  const std::uint64_t start = (*w)->counters().bytes;
  std::uint64_t next_trim = std::uint64_t{128} << 20;
  int i = 0;
  for (auto _ : state) {
    if ((*w)->counters().bytes >= next_trim) {
      TrimSealedSegments(dir);
      next_trim += std::uint64_t{128} << 20;
    }
    batch.Clear();
    for (int k = 0; k < 16; ++k) {
      if (!batch.AddDelta(p.deltas[k % kThreads][i]).ok()) std::abort();
      i = (i + 1) % kDeltasPerThread;
    }
    if (!(*w)->Commit(batch).ok()) std::abort();
  }
  if (!(*w)->Flush().ok()) std::abort();
  state.SetBytesProcessed(static_cast<std::int64_t>((*w)->counters().bytes - start));
  if (!(*w)->Close().ok()) std::abort();
  w->reset();
  RemoveDir(dir);
}
BENCHMARK(BM_LogEncodeAndAppendSparse)->UseRealTime()->MinTime(1.0);

// ---- Replay vs sequential read -----------------------------------------------------------------

// A log of about `bytes` in 64 MiB segments, written once per workload.
struct ReplayLog {
  std::string dir;
  std::vector<std::string> files;
  std::uint64_t bytes = 0;
  std::uint64_t state_bytes = 0;  // the replayed state's page bytes
};

ReplayLog MakeReplayLog(const Workload& w, const char* name, std::uint64_t bytes) {
  ReplayLog out;
  out.dir = BenchDir(name);
  mmsb::LogOptions o;
  o.durability = mmsb::Durability::kNone;
  auto writer = mmsb::LogWriter::Open(out.dir, o);
  if (!writer.ok()) std::abort();
  Generator gen(w, 7);
  mmsb::LogBatch b = (*writer)->NewBatch();
  gen.Creates(b);
  for (mmsb::Epoch e = 1; (*writer)->counters().bytes < bytes; ++e) {
    gen.Epoch(e, b);
    if (!(*writer)->Commit(b, e).ok()) std::abort();
    b.Clear();
  }
  if (!(*writer)->Close().ok()) std::abort();
  for (const auto& entry : fs::directory_iterator(out.dir)) {
    if (entry.path().extension() == ".seg") {
      out.files.push_back(entry.path().string());
      out.bytes += entry.file_size();
    }
  }
  std::sort(out.files.begin(), out.files.end());
  out.state_bytes = w.page_size * static_cast<std::uint64_t>(w.pages);
  return out;
}

const ReplayLog& BulkLog() {
  static const ReplayLog log = MakeReplayLog(kBulk, "replay-bulk", std::uint64_t{256} << 20);
  return log;
}
const ReplayLog& SparseLog() {
  static const ReplayLog log = MakeReplayLog(kSparse, "replay-sparse", std::uint64_t{64} << 20);
  return log;
}
const ReplayLog& DenseLog() {
  static const ReplayLog log = MakeReplayLog(kDense, "replay-dense", std::uint64_t{128} << 20);
  return log;
}

void Replay(benchmark::State& state, const ReplayLog& log) {
  std::uint64_t records = 0;
  for (auto _ : state) {
    mmsb::ReplayOptions o;
    o.use_checkpoints = false;
    mmsb::ReplayReport report;
    auto st = mmsb::Replay(log.dir, o, &report);
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.status().ToString().c_str());
      std::abort();
    }
    benchmark::DoNotOptimize(st->epoch);
    records += report.records;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(log.bytes * state.iterations()));
  // kIsRate divides by the seconds, kInvert turns records/s into s/record; 1e-9 makes it ns.
  state.counters["ns_per_record"] =
      benchmark::Counter(static_cast<double>(records) * 1e-9,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// The baseline: what any replay of these files must do at least. Read them front to back in
// 1 MiB chunks, checksum each chunk with XXH3-64 (the log checks every byte), and copy it into a
// state as large as the replayed pages (replay writes the new bytes into the pages).
void ReadHashCopy(benchmark::State& state, const ReplayLog& log) {
  std::vector<std::uint8_t> buf(1 << 20);
  std::vector<std::uint8_t> pages(std::max<std::uint64_t>(log.state_bytes, buf.size()));
  for (auto _ : state) {
    std::uint64_t sum = 0, at = 0;
    for (const std::string& f : log.files) {
      const int fd = open(f.c_str(), O_RDONLY);
      if (fd < 0) std::abort();
      ssize_t n;
      while ((n = read(fd, buf.data(), buf.size())) > 0) {
        const auto len = static_cast<std::size_t>(n);
        sum += XXH3_64bits(buf.data(), len);
        if (at + len > pages.size()) at = 0;
        std::memcpy(pages.data() + at, buf.data(), len);
        at += len;
      }
      close(fd);
    }
    benchmark::DoNotOptimize(sum);
    benchmark::DoNotOptimize(pages.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(log.bytes * state.iterations()));
}

// memcpy of the dense log's bytes, from where replay reads them: the segment files mapped (and
// their page tables populated) once, outside the timed loop, copied 64 KiB at a time into a state
// of the replayed size. (From an anonymous buffer instead, memcpy would stream from memory that
// the kernel may back with 2 MiB pages, while the log's page-cache pages are 4 KiB apart:
// hardware prefetchers stop at 4 KiB page boundaries. That would compare the memory, not the
// replay.)
void BM_MemcpyDense(benchmark::State& state) {
  const ReplayLog& log = DenseLog();
  std::vector<std::pair<const std::uint8_t*, std::size_t>> maps;
  for (const std::string& f : log.files) {
    const int fd = open(f.c_str(), O_RDONLY);
    if (fd < 0) std::abort();
    const auto size = static_cast<std::size_t>(fs::file_size(f));
    void* m = mmap(nullptr, size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) std::abort();
    maps.emplace_back(static_cast<const std::uint8_t*>(m), size);
  }
  std::vector<std::uint8_t> pages(log.state_bytes);
  constexpr std::size_t kChunk = std::size_t{64} << 10;
  for (auto _ : state) {
    std::size_t at = 0;
    for (const auto& [src, size] : maps) {
      for (std::size_t off = 0; off < size; off += kChunk) {
        const std::size_t len = std::min(kChunk, size - off);
        if (at + len > pages.size()) at = 0;
        std::memcpy(pages.data() + at, src + off, len);
        at += len;
      }
    }
    benchmark::DoNotOptimize(pages.data());
    benchmark::ClobberMemory();
  }
  for (const auto& [src, size] : maps) munmap(const_cast<std::uint8_t*>(src), size);
  state.SetBytesProcessed(static_cast<std::int64_t>(log.bytes * state.iterations()));
}

void BM_LogReplay(benchmark::State& state) { Replay(state, BulkLog()); }
BENCHMARK(BM_LogReplay)->UseRealTime()->MinTime(2.0);
void BM_ReadHashCopy(benchmark::State& state) { ReadHashCopy(state, BulkLog()); }
BENCHMARK(BM_ReadHashCopy)->UseRealTime()->MinTime(2.0);
void BM_LogReplaySparse(benchmark::State& state) { Replay(state, SparseLog()); }
BENCHMARK(BM_LogReplaySparse)->UseRealTime()->MinTime(2.0);
void BM_ReadHashCopySparse(benchmark::State& state) { ReadHashCopy(state, SparseLog()); }
BENCHMARK(BM_ReadHashCopySparse)->UseRealTime()->MinTime(2.0);
void BM_LogReplayDense(benchmark::State& state) { Replay(state, DenseLog()); }
BENCHMARK(BM_LogReplayDense)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_MemcpyDense)->UseRealTime()->MinTime(2.0);

// ---- Checkpoint --------------------------------------------------------------------------------

// 1 GiB of 4 KiB pages with random contents, written as one checkpoint file without fsync.
void BM_Checkpoint1GiB(benchmark::State& state) {
  constexpr std::size_t kPages = (std::size_t{1} << 30) / kPage;
  std::vector<std::uint8_t> memory(kPages * kPage);
  std::mt19937_64 rng(3);
  for (std::size_t i = 0; i < memory.size(); i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(&memory[i], &v, 8);
  }
  mmsb::CheckpointContents c;
  c.epoch = 1;
  for (std::size_t i = 0; i < kPages; ++i) {
    c.pages.push_back({static_cast<mmsb::PageId>(i + 1),
                       1,
                       mmsb::Location::kCpu,
                       false,
                       "",
                       "",
                       {memory.data() + i * kPage, kPage}});
  }
  const std::string dir = BenchDir("checkpoint", true);
  fs::create_directories(dir);
  mmsb::CheckpointOptions o;
  o.sync = false;
  std::uint64_t bytes = 0;
  for (auto _ : state) {
    auto size = mmsb::WriteCheckpointFile(dir + "/ckpt", c, o);
    if (!size.ok()) std::abort();
    bytes += memory.size();
    state.PauseTiming();
    fs::remove(dir + "/ckpt");
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  RemoveDir(dir);
}
BENCHMARK(BM_Checkpoint1GiB)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace

int main(int argc, char** argv) {
  const int rc = mmsb::bench::Main(argc, argv);
  RemoveDir(fs::path(BenchDir("x")).parent_path().string());
  RemoveDir(fs::path(BenchDir("x", true)).parent_path().string());
  return rc;
}
