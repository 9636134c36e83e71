// Query benchmarks (mmsb/query.h): a generated log of MMSB_QUERY_BENCH_EPOCHS epochs (default
// 1,000,000) over 1,000 typed 4 KiB pages with about 1 KiB changed per epoch; the queried field
// `Hot.value` changes in 1% of the epochs and `Rare.value` in 0.01%. Every figure is a same-run
// ratio or a time measured against the same log:
//   BM_QueryFigures: log write time, index build time and size, warm history of one field,
//     the replay that extracts the same history, warm bisect on a predicate first true near the
//     end (counters: *_ms, ratios).
//   BM_CommitsProvenance: buffered bus commits into a log, provenance on and off, in interleaved
//     pairs of long samples, each timed by the process's CPU time (the machine's other load does
//     not count) up to the moment all its bytes are handed to the OS; the figure is the median of
//     the pairs' ratios.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>

#include <benchmark/benchmark.h>

#include "mmsb/mmsb.h"
#include "mmsb/query.h"

#include "bench_main.h"

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// CPU time of the whole process (the commit thread and any thread the log writer uses), in ms.
double CpuMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

std::string BenchDir(const char* what) {
  const std::string name =
      std::string("mmsb-query-bench-") + std::to_string(::getpid()) + "-" + what;
  return (fs::temp_directory_path() / name).string();
}

std::uint64_t Epochs() {
  const char* e = std::getenv("MMSB_QUERY_BENCH_EPOCHS");
  return e ? std::max<std::uint64_t>(1000, std::strtoull(e, nullptr, 10)) : 1000000;
}

// struct Block { u64 count; f64 value; u8 data[4080]; }  (4 KiB)
mmsb::TypeDescriptor BlockType(const char* name) {
  mmsb::TypeDescriptor t;
  t.name = name;
  t.size = 4096;
  t.align = 8;
  auto f = [](const char* n, std::uint32_t off, mmsb::ScalarKind k, std::uint32_t size,
              std::vector<std::uint32_t> ext) {
    mmsb::FieldDescriptor d;
    d.name = n;
    d.offset = off;
    d.kind = k;
    d.elem_size = size;
    d.extents = std::move(ext);
    d.size = size;
    for (auto e : d.extents) d.size *= e;
    return d;
  };
  t.fields = {f("count", 0, mmsb::ScalarKind::kU64, 8, {}),
              f("value", 8, mmsb::ScalarKind::kF64, 8, {}),
              f("data", 16, mmsb::ScalarKind::kU8, 1, {4080})};
  return t;
}

struct Generated {
  std::string dir;
  double write_ms = 0;
  double write_cpu_ms = 0;
  std::uint64_t epochs = 0;
  std::uint64_t hot_target = 0;  // Hot.count reaches this near the end
};

// Pages 1 and 2 are Hot and Rare; 3..1000 are Block. Each epoch writes 8 runs of 128 bytes into
// random Block pages; Hot changes (count + 1, value) in 1% of epochs, Rare in 0.01%.
Generated Generate() {
  Generated g;
  g.dir = BenchDir("log");
  g.epochs = Epochs();
  fs::remove_all(g.dir);
  constexpr std::size_t kPages = 1000, kSize = 4096;
  std::vector<std::vector<std::uint8_t>> pages(kPages + 1, std::vector<std::uint8_t>(kSize, 0));
  std::vector<mmsb::Epoch> last(kPages + 1, 0);
  std::mt19937_64 rng(42);
  mmsb::LogOptions o;
  o.durability = mmsb::Durability::kNone;
  auto w = mmsb::LogWriter::Open(g.dir, o);
  if (!w.ok()) std::abort();
  mmsb::LogBatch b = (*w)->NewBatch();
  std::vector<std::uint8_t> before(kSize);
  const auto start = Clock::now();
  const double start_cpu = CpuMs();
  std::uint64_t hot_count = 0;
  for (std::uint64_t e = 1; e <= g.epochs; ++e) {
    b.Clear();
    if (e == 1) {
      b.AddTypeDescriptor(BlockType("Hot"));
      b.AddTypeDescriptor(BlockType("Rare"));
      b.AddTypeDescriptor(BlockType("Block"));
      for (std::size_t p = 1; p <= kPages; ++p) {
        b.AddPageCreate({p, kSize, mmsb::Location::kCpu, p <= 2,
                         p == 1   ? "g_hot"
                         : p == 2 ? "g_rare"
                                  : "",
                         p == 1   ? "Hot"
                         : p == 2 ? "Rare"
                                  : "Block"});
      }
    }
    auto touch = [&](std::size_t p, std::size_t off, std::size_t len) {
      before.assign(pages[p].begin(), pages[p].end());
      for (std::size_t i = 0; i < len; ++i) pages[p][off + i] = static_cast<std::uint8_t>(rng());
      if (p <= 2) {
        std::uint64_t c;
        std::memcpy(&c, pages[p].data(), 8);
        ++c;
        if (p == 1) hot_count = c;
        std::memcpy(pages[p].data(), &c, 8);
      }
      mmsb::Delta d = mmsb::Diff(p, last[p], before, pages[p]);
      if (!d.empty() && !b.AddDelta(d).ok()) std::abort();
      last[p] = e;
    };
    for (int k = 0; k < 8; ++k) touch(3 + rng() % (kPages - 2), 16 + (rng() % 31) * 128, 128);
    if (rng() % 100 == 0) touch(1, 8, 8);
    if (rng() % 10000 == 0) touch(2, 8, 8);
    if (!(*w)->Commit(b).ok()) std::abort();
  }
  if (!(*w)->Close().ok()) std::abort();
  g.write_ms = Ms(Clock::now() - start);
  g.write_cpu_ms = CpuMs() - start_cpu;
  g.hot_target = hot_count > 3 ? hot_count - 2 : hot_count;
  return g;
}

template <typename F>
double MedianMs(int runs, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const auto s = Clock::now();
    f();
    t.push_back(Ms(Clock::now() - s));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void BM_QueryFigures(benchmark::State& state) {
  const Generated g = Generate();
  double build_ms = 0, build_cpu_ms = 0, history_ms = 0, history_rare_ms = 0, replay_ms = 0,
         bisect_ms = 0;
  double index_ratio = 0;
  for (auto _ : state) {
    fs::remove(g.dir + "/query.idx");
    const auto s = Clock::now();
    const double s_cpu = CpuMs();
    auto built = mmsb::query::LogIndex::Open(g.dir);
    build_ms = Ms(Clock::now() - s);
    build_cpu_ms = CpuMs() - s_cpu;
    if (!built.ok()) std::abort();
    index_ratio = static_cast<double>((*built)->index_bytes()) / (*built)->log_bytes();
    built->reset();
    // Warm: the index file exists and the segments are in the page cache. Each run opens the
    // index as a new `mmsb history` process would.
    std::size_t changes = 0;
    history_ms = MedianMs(5, [&] {
      auto idx = mmsb::query::LogIndex::Open(g.dir);
      auto h = mmsb::query::FieldHistory(**idx, "g_hot.value");
      if (!h.ok()) std::abort();
      changes = h->changes.size();
    });
    history_rare_ms = MedianMs(5, [&] {
      auto idx = mmsb::query::LogIndex::Open(g.dir);
      auto h = mmsb::query::FieldHistory(**idx, "g_rare.value");
      if (!h.ok()) std::abort();
    });
    // The baseline: replay every epoch and compare the field after each one.
    std::size_t replay_changes = 0;
    replay_ms = MedianMs(1, [&] {
      auto r = mmsb::Replayer::Open(g.dir);
      if (!r.ok()) std::abort();
      double prev = 0;
      for (;;) {
        auto more = (*r)->Step();
        if (!more.ok()) std::abort();
        if (!*more) break;
        const mmsb::ReplayedPage* p = (*r)->state().FindPage(1);
        double v;
        std::memcpy(&v, p->bytes.data() + 8, 8);
        if (std::memcmp(&v, &prev, 8) != 0) ++replay_changes;
        prev = v;
      }
    });
    if (replay_changes != changes) {
      state.SkipWithError("replay and index disagree on the history");
      return;
    }
    const std::string where = "g_hot.count >= " + std::to_string(g.hot_target);
    bisect_ms = MedianMs(5, [&] {
      auto idx = mmsb::query::LogIndex::Open(g.dir);
      auto p = mmsb::query::Predicate::Parse(**idx, where);
      if (!p.ok()) std::abort();
      auto r = mmsb::query::Bisect(**idx, *p);
      if (!r.ok() || !r->found) std::abort();
    });
  }
  state.counters["epochs"] = static_cast<double>(g.epochs);
  state.counters["write_ms"] = g.write_ms;
  state.counters["index_build_ms"] = build_ms;
  state.counters["write_cpu_ms"] = g.write_cpu_ms;
  state.counters["index_build_cpu_ms"] = build_cpu_ms;
  // CPU time on both sides: on a shared machine the wall time of a 1,000,000-epoch write or
  // build mostly measures the other load (both are single-threaded and CPU-bound).
  state.counters["index_build_vs_log_write"] = build_cpu_ms / g.write_cpu_ms;
  state.counters["index_build_vs_log_write_wall"] = build_ms / g.write_ms;
  state.counters["index_size_ratio"] = index_ratio;
  state.counters["history_ms"] = history_ms;
  state.counters["history_rare_ms"] = history_rare_ms;
  state.counters["replay_scan_ms"] = replay_ms;
  state.counters["history_vs_replay_scan"] = history_ms / replay_ms;
  state.counters["bisect_ms"] = bisect_ms;
  fs::remove_all(g.dir);
}
BENCHMARK(BM_QueryFigures)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

// Buffered commits through the bus into a log, with and without provenance records. A sample is
// `commits` commits into a fresh log (tens of ms of CPU time: the log's buffer cycles through
// its flushes several times). Samples come in many pairs whose order alternates (ABBA), so a
// drift of the machine's speed falls on both variants alike and a sample disturbed by the
// machine's other load moves one ratio, not the figure: the figure is the median of the pairs'
// ratios. The first pair (page cache and allocator warm-up) is discarded.
void CommitRounds(benchmark::State& state, bool provenance) {
  static double rate[2] = {0, 0};
  static double ratio = 0;
  static double bytes_per_commit[2] = {0, 0};
  const std::string dir = BenchDir(provenance ? "prov" : "noprov");
  const int commits = static_cast<int>(
      std::getenv("MMSB_PROVENANCE_BENCH_COMMITS")
          ? std::max(1000ull,
                     std::strtoull(std::getenv("MMSB_PROVENANCE_BENCH_COMMITS"), nullptr, 10))
          : 25000ull);
  constexpr int kPairs = 31;
  auto sample = [&](bool with) {
    fs::remove_all(dir);
    if (!mmsb::start().ok()) std::abort();
    mmsb::LogOptions o;
    o.durability = mmsb::Durability::kNone;
    o.log_events = false;
    o.log_provenance = with;
    auto sink = mmsb::AttachLog(dir, o);
    if (!sink.ok()) std::abort();
    mmsb::Page* p = *mmsb::CreatePage(4096);
    const double s = CpuMs();
    for (int i = 0; i < commits; ++i) {
      for (int k = 0; k < 16; ++k) *mmsb::rt::w(&p->data()[(i * 61 + k * 67) % 4096]) = i + k;
      if (!mmsb::commit().ok()) std::abort();
    }
    // Every commit's bytes handed to the OS, the last partial buffer's too: untimed, that write
    // left a variant's last 0 … buffer_bytes out of its cost, an amount that depends on where the
    // commit count falls against the buffer's size and differs between the variants
    // (docs/Performance.md, "`log.provenance_overhead`": every byte's write is timed).
    if (!(*sink)->Flush().ok()) std::abort();
    const double r = commits / ((CpuMs() - s) / 1e3);
    (void)(*sink)->Close();
    mmsb::stop();
    std::uintmax_t bytes = 0;
    for (const auto& f : fs::directory_iterator(dir)) {
      if (f.is_regular_file() && f.path().extension() == ".seg") bytes += f.file_size();
    }
    bytes_per_commit[with ? 1 : 0] = static_cast<double>(bytes) / commits;
    return r;
  };
  for (auto _ : state) {
    std::vector<double> ratios;
    double best[2] = {0, 0};
    for (int pair = 0; pair <= kPairs; ++pair) {
      const bool with_first = pair % 2 == 1;
      double r[2];
      r[with_first ? 1 : 0] = sample(with_first);
      r[with_first ? 0 : 1] = sample(!with_first);
      if (pair == 0) continue;  // warm-up
      ratios.push_back(r[1] / r[0]);
      best[0] = std::max(best[0], r[0]);
      best[1] = std::max(best[1], r[1]);
    }
    std::sort(ratios.begin(), ratios.end());
    ratio = ratios[ratios.size() / 2];
    rate[0] = best[0];
    rate[1] = best[1];
    state.counters["ratio_min"] = ratios.front();
    state.counters["ratio_max"] = ratios.back();
  }
  fs::remove_all(dir);
  state.counters["commits_per_s"] = rate[provenance ? 1 : 0];
  state.counters["commits_per_s_without"] = rate[0];
  state.counters["bytes_per_commit"] = bytes_per_commit[1];
  state.counters["bytes_per_commit_without"] = bytes_per_commit[0];
  state.counters["provenance_overhead"] = ratio;
}
void BM_CommitsProvenance(benchmark::State& state) { CommitRounds(state, true); }
BENCHMARK(BM_CommitsProvenance)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

MMSB_BENCH_MAIN();
