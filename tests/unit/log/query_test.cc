// The query library (mmsb/query.h) against a replay oracle: random logs of typed pages, random
// field patterns and predicates; every answer is compared with what replaying epoch by epoch
// says. Also: the index file's life cycle (load, extend, rebuild on change or damage), slices
// that replay bit for bit, and the provenance records.
#include "mmsb/query.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "mmsb/checkpoint.h"
#include "mmsb/mmsb.h"

#include "log/log_records.h"
#include "log_test_util.h"

namespace mmsb {
namespace {

using testing::TempDir;

FieldDescriptor Scalar(const char* name, std::uint32_t off, ScalarKind k, std::uint32_t size,
                       std::vector<std::uint32_t> ext = {}) {
  FieldDescriptor f;
  f.name = name;
  f.offset = off;
  f.kind = k;
  f.elem_size = size;
  f.extents = std::move(ext);
  std::uint32_t n = 1;
  for (auto e : f.extents) n *= e;
  f.size = size * n;
  return f;
}

// struct Vec { float x; float y; };                       8 bytes
// struct Counters { int32 hits[8]; uint64 total; double avg; Vec pos[3]; uint8 flag; } 80 bytes
TypeDescriptor VecType() {
  TypeDescriptor t;
  t.name = "Vec";
  t.size = 8;
  t.align = 4;
  t.fields = {Scalar("x", 0, ScalarKind::kF32, 4), Scalar("y", 4, ScalarKind::kF32, 4)};
  return t;
}
TypeDescriptor CountersType() {
  TypeDescriptor t;
  t.name = "Counters";
  t.size = 80;
  t.align = 8;
  t.fields = {Scalar("hits", 0, ScalarKind::kI32, 4, {8}), Scalar("total", 32, ScalarKind::kU64, 8),
              Scalar("avg", 40, ScalarKind::kF64, 8)};
  FieldDescriptor pos = Scalar("pos", 48, ScalarKind::kRecord, 8, {3});
  pos.record_type = "Vec";
  t.fields.push_back(pos);
  t.fields.push_back(Scalar("flag", 72, ScalarKind::kU8, 1));
  return t;
}

// Writes random epochs: a static Counters page "g_counters", a heap page holding 4 Counters,
// a raw page, pages created and freed on the way. Writes land on whole fields (as stores do) and
// sometimes store the same value (no delta).
class LogGen {
 public:
  LogGen(std::string dir, std::uint64_t seed) : dir_(std::move(dir)), rng_(seed) {}

  void Write(int epochs, std::uint64_t segment_bytes = 4096) {
    LogOptions o;
    o.durability = Durability::kNone;
    o.segment_bytes = segment_bytes;
    auto w = LogWriter::Open(dir_, o);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    LogBatch b = (*w)->NewBatch();
    for (int i = 0; i < epochs; ++i) {
      const Epoch e = (*w)->last_epoch() + 1;
      b.Clear();
      if (!started_) {
        b.AddTypeDescriptor(VecType());
        b.AddTypeDescriptor(CountersType());
        Create(b, e, 1, 80, "g_counters", "Counters");
        Create(b, e, 2, 320, "", "Counters");
        Create(b, e, 3, 64, "raw_blob", "");
        started_ = true;
      }
      if (i == epochs / 3 && !late_created_) {
        Create(b, e, 4, 80, "late", "Counters");
        late_created_ = true;
      }
      if (i == 2 * epochs / 3 && pages_.count(4)) {
        b.AddPageFree(4);
        pages_.erase(4);
      }
      const int writes = static_cast<int>(rng_() % 4);
      for (int k = 0; k < writes; ++k) Mutate(b, e);
      auto c = (*w)->Commit(b);
      ASSERT_TRUE(c.ok()) << c.status().ToString();
    }
    ASSERT_TRUE((*w)->Close().ok());
  }

 private:
  struct P {
    std::vector<std::uint8_t> bytes;
    Epoch epoch = 0;
    Epoch last_in_batch = 0;
  };
  void Create(LogBatch& b, Epoch e, PageId id, std::size_t size, const char* name,
              const char* type) {
    b.AddPageCreate({id, size, Location::kCpu, false, name, type});
    pages_[id] = {std::vector<std::uint8_t>(size, 0), e - 1, 0};
  }
  void Mutate(LogBatch& b, Epoch e) {
    std::vector<PageId> ids;
    for (auto& [id, p] : pages_) ids.push_back(id);
    const PageId id = ids[rng_() % ids.size()];
    P& p = pages_[id];
    std::vector<std::uint8_t> before = p.bytes;
    const int stores = 1 + static_cast<int>(rng_() % 3);
    for (int s = 0; s < stores; ++s) {
      if (id == 3) {
        p.bytes[rng_() % p.bytes.size()] = static_cast<std::uint8_t>(rng_() % 4);
        continue;
      }
      const std::size_t rec = (rng_() % (p.bytes.size() / 80)) * 80;
      std::uint8_t* base = p.bytes.data() + rec;
      switch (rng_() % 5) {
        case 0: {
          const std::int32_t v = static_cast<std::int32_t>(rng_() % 7) - 3;
          std::memcpy(base + 4 * (rng_() % 8), &v, 4);
          break;
        }
        case 1: {
          std::uint64_t t;
          std::memcpy(&t, base + 32, 8);
          t += rng_() % 3;
          std::memcpy(base + 32, &t, 8);
          break;
        }
        case 2: {
          const double d = static_cast<double>(rng_() % 100) / 4;
          std::memcpy(base + 40, &d, 8);
          break;
        }
        case 3: {
          const float f = static_cast<float>(rng_() % 50) / 2;
          std::memcpy(base + 48 + 4 * (rng_() % 6), &f, 4);
          break;
        }
        default:
          base[72] = static_cast<std::uint8_t>(rng_() % 2);
      }
    }
    // A second delta of the same page in one epoch names the epoch as its base.
    const Epoch base_epoch = p.last_in_batch == e ? e : p.epoch;
    Delta d = Diff(id, base_epoch, before, p.bytes);
    if (d.empty()) return;
    ASSERT_TRUE(b.AddDelta(d).ok());
    p.epoch = e;
    p.last_in_batch = e;
  }

  std::string dir_;
  std::mt19937_64 rng_;
  bool started_ = false;
  bool late_created_ = false;
  std::map<PageId, P> pages_;
};

// The oracle: replays epoch by epoch and reads the fields' bytes from the state.
class Oracle {
 public:
  explicit Oracle(const std::string& dir) {
    auto r = Replayer::Open(dir);
    EXPECT_TRUE(r.ok());
    states_.push_back({});  // epoch 0: nothing
    for (;;) {
      auto more = (*r)->Step();
      EXPECT_TRUE(more.ok()) << more.status().ToString();
      if (!more.ok() || !*more) break;
      states_.push_back(Snapshot((*r)->state()));
    }
  }
  Epoch last() const { return states_.size() - 1; }
  // The field's bytes at e, or nullopt when its page does not exist then.
  std::optional<std::vector<std::uint8_t>> Bytes(const query::FieldRef& f, Epoch e) const {
    auto it = states_[e].find(f.page);
    if (it == states_[e].end()) return std::nullopt;
    return std::vector<std::uint8_t>(it->second.begin() + f.offset,
                                     it->second.begin() + f.offset + f.size);
  }
  std::string Value(const query::FieldRef& f, Epoch e) const {
    auto b = Bytes(f, e);
    return b ? FormatScalar(f.kind, b->data(), f.size) : "";
  }
  // Changes in (from, to]: a field changed at e when its bytes differ from e - 1 (a page that
  // did not exist counts as zeros, its epoch-0 image).
  std::vector<query::FieldChangeAt> History(const std::vector<query::FieldRef>& fields, Epoch from,
                                            Epoch to) const {
    std::vector<query::FieldChangeAt> out;
    for (Epoch e = std::max<Epoch>(from, 0) + 1; e <= std::min(to, last()); ++e) {
      for (const auto& f : fields) {
        auto a = Bytes(f, e - 1), b = Bytes(f, e);
        if (!b) continue;
        std::vector<std::uint8_t> zeros(f.size, 0);
        const auto& av = a ? *a : zeros;
        if (av != *b) {
          out.push_back({e, f, FormatScalar(f.kind, av.data(), f.size),
                         FormatScalar(f.kind, b->data(), f.size)});
        }
      }
    }
    return out;
  }

 private:
  static std::map<PageId, std::vector<std::uint8_t>> Snapshot(const LogState& st) {
    std::map<PageId, std::vector<std::uint8_t>> m;
    for (const auto& [id, p] : st.pages) m[id] = p.bytes;
    return m;
  }
  std::vector<std::map<PageId, std::vector<std::uint8_t>>> states_;
};

std::string Patterns(std::mt19937_64& rng) {
  static const char* kPatterns[] = {
      "Counters.hits[3]",  "g_counters.hits[*]",  "Counters.total",    "g_counters.avg",
      "Counters.pos[1].y", "g_counters.pos[*].x", "g_counters.pos",    "g_counters",
      "raw_blob",          "Counters[2].hits[5]", "Counters[*].total", "late.flag",
      "Counters.flag",     "g_counters.hits"};
  return kPatterns[rng() % std::size(kPatterns)];
}

void ExpectSame(const std::vector<query::FieldChangeAt>& got,
                const std::vector<query::FieldChangeAt>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  auto key = [](const query::FieldChangeAt& c) {
    return std::make_tuple(c.epoch, c.field.page, c.field.offset);
  };
  auto g = got, w = want;
  std::sort(g.begin(), g.end(), [&](auto& a, auto& b) { return key(a) < key(b); });
  std::sort(w.begin(), w.end(), [&](auto& a, auto& b) { return key(a) < key(b); });
  for (std::size_t i = 0; i < g.size(); ++i) {
    EXPECT_EQ(key(g[i]), key(w[i])) << what << " #" << i;
    EXPECT_EQ(g[i].old_value, w[i].old_value) << what << " at epoch " << g[i].epoch;
    EXPECT_EQ(g[i].new_value, w[i].new_value) << what << " at epoch " << g[i].epoch;
    EXPECT_EQ(g[i].field.label, w[i].field.label);
  }
}

TEST(QueryIndex, HistoryMatchesReplayForRandomFields) {
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    TempDir dir;
    LogGen gen(dir.path(), seed);
    gen.Write(300);
    Oracle oracle(dir.path());
    auto index = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    EXPECT_EQ((*index)->how(), query::LogIndex::How::kBuilt);
    EXPECT_EQ((*index)->last_epoch(), oracle.last());
    std::mt19937_64 rng(seed * 77);
    for (int q = 0; q < 40; ++q) {
      const std::string pat = Patterns(rng);
      query::HistoryOptions o;
      o.from = rng() % 2 ? 0 : rng() % 300;
      o.to = rng() % 2 ? kLatestEpoch : o.from + rng() % 200;
      auto h = query::FieldHistory(**index, pat, o);
      ASSERT_TRUE(h.ok()) << pat << ": " << h.status().ToString();
      ASSERT_FALSE(h->fields.empty());
      ExpectSame(h->changes, oracle.History(h->fields, o.from, o.to),
                 fmt::format("seed {} {} ({}, {}]", seed, pat, o.from, o.to));
      const Epoch at = rng() % (oracle.last() + 1);
      auto v = query::ValuesAt(**index, h->fields, at);
      ASSERT_TRUE(v.ok());
      for (std::size_t i = 0; i < h->fields.size(); ++i) {
        EXPECT_EQ((*v)[i], oracle.Value(h->fields[i], at)) << pat << " at " << at;
      }
    }
  }
}

TEST(QueryIndex, FieldNamesFollowDiffPaths) {
  TempDir dir;
  LogGen(dir.path(), 5).Write(20);
  auto index = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(index.ok());
  auto f = query::ResolveFields(**index, "g_counters.pos[2].y");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].label, "Counters.pos[2].y");
  EXPECT_EQ((*f)[0].offset, 48u + 2 * 8 + 4);
  EXPECT_EQ((*f)[0].kind, ScalarKind::kF32);
  auto all = query::ResolveFields(**index, "g_counters.hits");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 8u);
  auto multi = query::ResolveFields(**index, "Counters[*].total");  // the 4-record heap page
  ASSERT_TRUE(multi.ok()) << multi.status().ToString();
  EXPECT_EQ(multi->size(), 4u);
  EXPECT_EQ((*multi)[3].label, "Counters[3].total");
  // Errors say what exists.
  auto bad = query::ResolveFields(**index, "g_counters.nope");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("has no field 'nope'"), std::string::npos);
  auto none = query::ResolveFields(**index, "Nothing.x");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("g_counters"), std::string::npos);
  EXPECT_FALSE(query::ResolveFields(**index, "g_counters.hits[8]").ok());
  EXPECT_FALSE(query::ResolveFields(**index, "g_counters.hits[").ok());
}

// The predicate's value with the oracle's bytes, evaluated by the same Predicate::Eval: the
// oracle checks bisect's search, not the arithmetic (ArithmeticFollowsC checks that).
bool OracleHolds(const query::Predicate& p, const Oracle& o, Epoch e) {
  std::vector<std::vector<std::uint8_t>> vals;
  for (const auto& f : p.fields()) {
    auto b = o.Bytes(f, e);
    if (!b) return false;
    vals.push_back(*b);
  }
  return p.Eval(vals);
}

TEST(QueryIndex, BisectMatchesLinearScanOfReplay) {
  static const char* kPreds[] = {"g_counters.total > 20",
                                 "g_counters.hits[2] == 3 && g_counters.flag == 1",
                                 "g_counters.avg * 2 >= 40 || g_counters.pos[1].x < 0.5",
                                 "g_counters.hits[1] - g_counters.hits[2] == 6",
                                 "late.total >= 2",
                                 "g_counters.total % 7 == 3",
                                 "!(g_counters.flag == 0)",
                                 "g_counters.total / 4 == 3",
                                 "-g_counters.hits[0] > 2"};
  for (std::uint64_t seed : {11u, 12u}) {
    TempDir dir;
    LogGen(dir.path(), seed).Write(400);
    Oracle oracle(dir.path());
    auto index = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(index.ok());
    std::mt19937_64 rng(seed);
    for (const char* text : kPreds) {
      auto p = query::Predicate::Parse(**index, text);
      ASSERT_TRUE(p.ok()) << text << ": " << p.status().ToString();
      for (int q = 0; q < 4; ++q) {
        query::BisectOptions o;
        o.from = q == 0 ? 0 : rng() % 300;
        Epoch want = 0;
        bool found = false;
        for (Epoch e = o.from; e <= oracle.last(); ++e) {
          if (OracleHolds(*p, oracle, e)) {
            want = e;
            found = true;
            break;
          }
        }
        auto r = query::Bisect(**index, *p, o);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        EXPECT_EQ(r->found, found) << text << " from " << o.from;
        if (found) EXPECT_EQ(r->epoch, want) << text << " from " << o.from;
        EXPECT_LE(r->epochs_evaluated, oracle.last() + 1);
        if (!found || r->epoch != want) continue;
        // The values at the epoch found and the fields that changed there, as replay has them.
        const auto& fs = p->fields();
        ASSERT_EQ(r->values.size(), fs.size());
        std::size_t changed = 0;
        for (std::size_t i = 0; i < fs.size(); ++i) {
          EXPECT_EQ(r->values[i], oracle.Value(fs[i], want)) << text << " " << fs[i].label;
          const std::string before = want > 0 ? oracle.Value(fs[i], want - 1) : "";
          if (before == r->values[i]) continue;
          ASSERT_LT(changed, r->changes.size()) << text << " misses " << fs[i].label;
          EXPECT_EQ(r->changes[changed].field.label, fs[i].label) << text;
          EXPECT_EQ(r->changes[changed].old_value, before) << text << " " << fs[i].label;
          EXPECT_EQ(r->changes[changed].new_value, r->values[i]) << text;
          ++changed;
        }
        EXPECT_EQ(changed, r->changes.size()) << text << " from " << o.from;
      }
    }
    // Monotone: total only grows, so "total >= k" is monotone and binary search must agree.
    for (int k : {1, 5, 30, 1000}) {
      auto p = query::Predicate::Parse(**index, fmt::format("g_counters.total >= {}", k));
      ASSERT_TRUE(p.ok());
      query::BisectOptions lin, mono;
      mono.monotone = true;
      auto a = query::Bisect(**index, *p, lin);
      auto b = query::Bisect(**index, *p, mono);
      ASSERT_TRUE(a.ok() && b.ok());
      EXPECT_EQ(a->found, b->found) << k;
      EXPECT_EQ(a->epoch, b->epoch) << k;
    }
  }
}

TEST(QueryIndex, ArithmeticFollowsC) {
  TempDir dir;
  LogGen(dir.path(), 9).Write(5);
  auto index = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(index.ok());
  auto eval = [&](const char* text) {
    auto p = query::Predicate::Parse(**index, text);
    EXPECT_TRUE(p.ok()) << text << ": " << p.status().ToString();
    return p.ok() && p->Eval({});
  };
  EXPECT_TRUE(eval("7 / 2 == 3"));
  EXPECT_TRUE(eval("7.0 / 2 == 3.5"));
  EXPECT_TRUE(eval("-7 % 3 == -1"));
  EXPECT_TRUE(eval("1 + 2 * 3 == 7 && (1 + 2) * 3 == 9"));
  EXPECT_TRUE(eval("0x10 == 16 || false"));
  EXPECT_FALSE(eval("1 / 0 == 0"));  // no value
  EXPECT_FALSE(eval("1 / 0 != 0"));
  EXPECT_TRUE(eval("18446744073709551615 > 18446744073709551614"));  // exact 64-bit
  EXPECT_FALSE(query::Predicate::Parse(**index, "g_counters.total >").ok());
  EXPECT_FALSE(query::Predicate::Parse(**index, "g_counters.hits > 1").ok());  // 8 fields
  EXPECT_FALSE(query::Predicate::Parse(**index, "(1 < 2").ok());
}

TEST(QueryIndex, BlameNamesTheLastChangeAndItsCommit) {
  TempDir dir;
  LogGen(dir.path(), 21).Write(200);
  Oracle oracle(dir.path());
  auto index = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(index.ok());
  for (Epoch at : {Epoch{50}, Epoch{120}, Epoch{200}}) {
    auto f = query::ResolveFields(**index, "g_counters.total");
    ASSERT_TRUE(f.ok());
    auto hist = oracle.History(*f, 0, at);
    auto b = query::BlameField(**index, "g_counters.total", at);
    if (hist.empty()) {
      EXPECT_EQ(b.status().code(), StatusCode::kNotFound);
      continue;
    }
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_EQ(b->change.epoch, hist.back().epoch);
    EXPECT_EQ(b->change.new_value, hist.back().new_value);
    EXPECT_EQ(b->commit.epoch, b->change.epoch);
    // Everything else that changed in that epoch, checked against the oracle.
    for (const auto& t : b->together) {
      EXPECT_EQ(t.new_value, oracle.Value(t.field, t.epoch)) << t.field.label;
      EXPECT_NE(t.old_value, t.new_value);
    }
  }
}

TEST(QueryIndex, IndexIsExtendedWhenTheLogGrowsAndRebuiltWhenItChanges) {
  TempDir dir;
  LogGen gen(dir.path(), 31);
  gen.Write(100);
  {
    auto a = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(a.ok());
    EXPECT_EQ((*a)->how(), query::LogIndex::How::kBuilt);
    EXPECT_GT((*a)->index_bytes(), 0u);
  }
  {
    auto b = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(b.ok());
    EXPECT_EQ((*b)->how(), query::LogIndex::How::kLoaded);
    EXPECT_EQ((*b)->last_epoch(), 100u);
  }
  gen.Write(80);  // a new writer session: recovery, then new segments
  {
    auto c = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ((*c)->how(), query::LogIndex::How::kExtended);
    EXPECT_EQ((*c)->last_epoch(), 180u);
    Oracle oracle(dir.path());
    auto h = query::FieldHistory(**c, "g_counters.hits[*]");
    ASSERT_TRUE(h.ok());
    ExpectSame(h->changes, oracle.History(h->fields, 0, kLatestEpoch), "extended");
  }
  // A damaged index file is rebuilt, never trusted.
  {
    const std::string idx = dir.Sub("query.idx");
    std::fstream f(idx, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
    f.close();
    auto d = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(d.ok());
    EXPECT_EQ((*d)->how(), query::LogIndex::How::kBuilt);
  }
  // A segment the index covers replaced by another log's: rebuilt from the new segments.
  {
    TempDir other;
    LogGen(other.path(), 32).Write(60);
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
      if (e.path().extension() == ".seg") std::filesystem::remove(e.path());
    }
    for (const auto& e : std::filesystem::directory_iterator(other.path())) {
      if (e.path().extension() == ".seg") {
        std::filesystem::copy_file(e.path(), dir.path() / e.path().filename());
      }
    }
    auto g = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ((*g)->how(), query::LogIndex::How::kBuilt);
    EXPECT_EQ((*g)->last_epoch(), 60u);
    Oracle oracle(dir.path());
    auto h = query::FieldHistory(**g, "g_counters");
    ASSERT_TRUE(h.ok());
    ExpectSame(h->changes, oracle.History(h->fields, 0, kLatestEpoch), "replaced");
  }
}

// Open reads only the index's header and meta; a query reads and checks the blocks it needs. A
// block damaged on disk is therefore found by the query that reads it: the index rebuilds itself
// from the log, answers from that, says so (note()), and saves the rebuilt file.
TEST(QueryIndex, DamagedBlockIsFoundByTheQueryAndRebuiltFromTheLog) {
  TempDir dir;
  LogGen(dir.path(), 33).Write(150);
  ASSERT_TRUE(query::LogIndex::Open(dir.path()).ok());
  const std::string idx = dir.Sub("query.idx");
  const auto size = std::filesystem::file_size(idx);
  {
    // The last bytes of the file are the last page's change block, past the meta.
    std::fstream f(idx, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(size - 2));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(size - 2));
    f.put(static_cast<char>(c ^ 0x41));
  }
  Oracle oracle(dir.path());
  auto a = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ((*a)->how(), query::LogIndex::How::kLoaded);  // the damage is not read yet
  EXPECT_TRUE((*a)->note().empty());
  for (const query::IndexedPage& p : (*a)->pages()) {
    auto h = query::FieldHistory(**a, p.name.empty() ? fmt::format("{}", p.type_name) : p.name);
    if (!h.ok()) continue;  // e.g. a raw page without a name
    ExpectSame(h->changes, oracle.History(h->fields, 0, kLatestEpoch), "after a damaged block");
  }
  EXPECT_NE((*a)->note().find("rebuilt"), std::string::npos) << (*a)->note();
  EXPECT_TRUE((*a)->damage().ok());
  auto b = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->how(), query::LogIndex::How::kLoaded);
  auto h = query::FieldHistory(**b, "g_counters");
  ASSERT_TRUE(h.ok());
  ExpectSame(h->changes, oracle.History(h->fields, 0, kLatestEpoch), "rebuilt file");
  EXPECT_TRUE((*b)->note().empty()) << (*b)->note();
}

TEST(QueryIndex, DamagedLogIsReportedNotIndexed) {
  TempDir dir;
  LogGen(dir.path(), 41).Write(200, 2048);
  // Flip a byte in the middle of the first (sealed) segment.
  const std::string seg = dir.Sub("00000001.seg");
  std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(300);
  char c = 0;
  f.get(c);
  f.seekp(300);
  f.put(static_cast<char>(c ^ 0x40));
  f.close();
  auto index = query::LogIndex::Open(dir.path());
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.status().code(), StatusCode::kCorruption);
  EXPECT_NE(index.status().message().find("00000001.seg"), std::string::npos);
}

TEST(QueryIndex, PlainDirectoryIsNotALog) {
  TempDir dir;
  std::ofstream(dir.Sub("notes.txt")) << "not a segment\n";
  auto index = query::LogIndex::Open(dir.path());
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.status().code(), StatusCode::kNotFound);
  EXPECT_NE(index.status().message().find("not an MMSB log"), std::string::npos)
      << index.status().ToString();
  EXPECT_NE(index.status().message().find(dir.path()), std::string::npos);
  // Refused before anything is written into it: no index file appears.
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("query.idx")));
}

TEST(QueryIndex, TornTailIsIgnored) {
  TempDir dir;
  LogGen(dir.path(), 42).Write(50, 1 << 20);
  const std::string seg = dir.Sub("00000001.seg");
  const auto size = std::filesystem::file_size(seg);
  std::filesystem::resize_file(seg, size - 10);  // cut into the last commit
  auto index = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ((*index)->last_epoch(), 49u);
}

TEST(QuerySlice, SliceReplaysBitForBit) {
  TempDir dir;
  LogGen(dir.path(), 51).Write(150);
  TempDir out;
  const std::string sliced = out.Sub("slice.tlog");
  auto r = query::Slice(dir.path(), 40, 110, sliced);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->groups, 70u);
  for (Epoch e : {Epoch{40}, Epoch{41}, Epoch{77}, Epoch{110}}) {
    ReplayOptions o;
    o.epoch = e;
    auto a = Replay(dir.path(), o);
    auto b = Replay(sliced, o);
    ASSERT_TRUE(a.ok() && b.ok()) << e << ": " << b.status().ToString();
    EXPECT_EQ(a->epoch, b->epoch);
    EXPECT_EQ(a->Hash(), b->Hash()) << "epoch " << e;
  }
  // The slice is a log like any other: the index and history work on it.
  auto idx = query::LogIndex::Open(sliced);
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  EXPECT_EQ((*idx)->first_epoch(), 40u);
  EXPECT_EQ((*idx)->last_epoch(), 110u);
  auto full = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(full.ok());
  query::HistoryOptions ho;
  ho.from = 40;
  ho.to = 110;
  auto a = query::FieldHistory(**full, "g_counters", ho);
  auto b = query::FieldHistory(**idx, "g_counters", ho);
  ASSERT_TRUE(a.ok() && b.ok()) << b.status().ToString();
  ExpectSame(b->changes, a->changes, "slice history");
  // Refuses to write over something.
  EXPECT_EQ(query::Slice(dir.path(), 40, 110, sliced).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(query::Slice(dir.path(), 40, 999, out.Sub("x")).status().code(), StatusCode::kNotFound);
}

TEST(QueryProvenance, RecordsRoundTripAndReachTheIndex) {
  LogSite site{3, LogSite::Kind::kCommitCall, 42, "step(float)", "sim.cc"};
  std::vector<std::uint8_t> buf;
  log::EncodeSite(site, buf);
  LogSite back;
  ASSERT_TRUE(log::DecodeSite(buf, &back).ok());
  EXPECT_EQ(back.id, 3u);
  EXPECT_EQ(back.kind, LogSite::Kind::kCommitCall);
  EXPECT_EQ(back.function, "step(float)");
  buf.pop_back();
  EXPECT_FALSE(log::DecodeSite(buf, &back).ok());  // truncated
  LogCommitInfo info;
  info.state_hash = 0x1234;
  info.transactions = {{3, 1, 7}, {0, 2, std::uint64_t{1} << 40}};
  for (bool compact : {true, false}) {
    SCOPED_TRACE(compact ? "compact" : "fixed");
    auto encode = compact ? log::EncodeCommitInfo : log::EncodeFixedCommitInfo;
    auto decode = compact ? log::DecodeCommitInfo : log::DecodeFixedCommitInfo;
    buf.clear();
    encode(info, buf);
    LogCommitInfo ib;
    ASSERT_TRUE(decode(buf, &ib).ok());
    EXPECT_EQ(ib.state_hash, 0x1234u);
    ASSERT_EQ(ib.transactions.size(), 2u);
    EXPECT_EQ(ib.transactions[0].site, 3u);
    EXPECT_EQ(ib.transactions[0].sequence, 7u);
    EXPECT_EQ(ib.transactions[1].thread, 2u);
    EXPECT_EQ(ib.transactions[1].sequence, std::uint64_t{1} << 40);
    buf.pop_back();
    EXPECT_FALSE(decode(buf, &ib).ok());  // truncated
    buf[compact ? 9 : 8] = 0x7F;          // count beyond the payload
    EXPECT_FALSE(decode(buf, &ib).ok());
  }
  // The compact layout: flags, then varints; a commit's one transaction fits in a few bytes.
  buf.clear();
  log::EncodeCommitInfo({0, {{1, 1, 1000}}}, buf);
  EXPECT_EQ(buf.size(), 6u);
  LogCommitInfo small;
  ASSERT_TRUE(log::DecodeCommitInfo(buf, &small).ok());
  EXPECT_EQ(small.state_hash, 0u);
  buf[0] = 2;  // a reserved flag
  EXPECT_FALSE(log::DecodeCommitInfo(buf, &small).ok());
  const std::vector<std::uint8_t> overflow = {0,    1,    1,    1,    0xFF, 0xFF, 0xFF,
                                              0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
  EXPECT_FALSE(log::DecodeCommitInfo(overflow, &small).ok());  // sequence beyond 64 bits

  TempDir dir;
  {
    auto w = LogWriter::Open(dir.path());
    ASSERT_TRUE(w.ok());
    LogBatch b = (*w)->NewBatch();
    b.AddRaw(static_cast<std::uint8_t>(LogRecordType::kRunStart), [] {
      std::vector<std::uint8_t> p;
      log::EncodeRunStart({0, 0, 1, 2}, p);
      return p;
    }());
    b.AddBuild({"abcd", "/bin/sim", {}});
    b.AddTypeDescriptor(VecType());
    b.AddPageCreate({1, 8, Location::kCpu, true, "g_v", "Vec"});
    b.AddSite(site);
    std::vector<std::uint8_t> before(8, 0), after(8, 0);
    const float x = 2.5f;
    std::memcpy(after.data(), &x, 4);
    ASSERT_TRUE(b.AddDelta(Diff(1, 0, before, after)).ok());
    b.AddCommitInfo({0, {{3, 1, 1}}});
    ASSERT_TRUE((*w)->Commit(b).ok());
    // Epoch 2 as the first 1.1 writers wrote it: the fixed commit-info layout (type 12).
    b.Clear();
    const float y = 3.5f;
    std::vector<std::uint8_t> after2 = after;
    std::memcpy(after2.data() + 4, &y, 4);
    ASSERT_TRUE(b.AddDelta(Diff(1, 1, after, after2)).ok());
    std::vector<std::uint8_t> fixed;
    log::EncodeFixedCommitInfo({0, {{3, 4, 9}}}, fixed);
    b.AddRaw(static_cast<std::uint8_t>(LogRecordType::kCommitInfo), fixed);
    ASSERT_TRUE((*w)->Commit(b).ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  // Replay knows the records (nothing unknown), and the index names the site.
  ReplayReport rep;
  auto st = Replay(dir.path(), {}, &rep);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(rep.unknown_records, 0u);
  auto index = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(index.ok());
  auto b = query::BlameField(**index, "g_v.x", 1);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_EQ(b->commit.transactions.size(), 1u);
  EXPECT_EQ(b->commit.transactions[0].site.ToString(),
            "mmsb::commit() in step(float) at sim.cc:42");
  EXPECT_EQ((*index)->BuildAt(1).build_id, "abcd");
  auto old = query::BlameField(**index, "g_v.y", 2);
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  ASSERT_EQ(old->commit.transactions.size(), 1u);
  EXPECT_EQ(old->commit.transactions[0].thread, 4u);
  EXPECT_EQ(old->commit.transactions[0].sequence, 9u);
  EXPECT_EQ(old->commit.transactions[0].site.ToString(),
            "mmsb::commit() in step(float) at sim.cc:42");
  // The reader yields both layouts as commit-info entries; the compact one is the smaller.
  auto r = LogReader::Open(dir.path());
  ASSERT_TRUE(r.ok());
  LogEntry e;
  std::vector<std::pair<std::uint8_t, std::uint64_t>> infos;  // raw type, framed size
  for (;;) {
    auto more = (*r)->Next(&e);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    if (e.type == LogRecordType::kCommitInfo) {
      ASSERT_EQ(e.commit_info.transactions.size(), 1u);
      infos.push_back({e.raw_type, e.framed_size});
    }
  }
  ASSERT_EQ(infos.size(), 2u);
  EXPECT_EQ(infos[0].first, log::kCompactCommitInfoType);
  EXPECT_EQ(infos[1].first, static_cast<std::uint8_t>(LogRecordType::kCommitInfo));
  EXPECT_LT(infos[0].second, 32u);
  EXPECT_EQ(infos[1].second, 56u);
}

// Provenance through the bus: an explicit commit() names its call site, a transaction scope the
// function it is in; thread and sequence numbers come along; the run-start names the build.
void TransactionBody(Page* p) {
  rt::TransactionScope tx;
  *rt::w(&p->data()[1]) = 5;
}

TEST(QueryProvenance, CommitsNameTheirSiteThroughTheBus) {
  TempDir dir;
  ASSERT_TRUE(start().ok());
  LogOptions lo;
  lo.durability = Durability::kNone;
  auto sink = AttachLog(dir.path(), lo);
  ASSERT_TRUE(sink.ok());
  PageOptions po;
  po.name = "blob";
  Page* p = *CreatePage(64, po);
  *rt::w(&p->data()[0]) = 1;
  const int line = __LINE__ + 1;
  ASSERT_TRUE(commit().ok());
  TransactionBody(p);
  ASSERT_TRUE((*sink)->Close().ok());
  stop();

  auto index = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  auto h = query::FieldHistory(**index, "blob");
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_EQ(h->changes.size(), 2u);
  auto c1 = (*index)->Commit(h->changes[0].epoch);
  auto c2 = (*index)->Commit(h->changes[1].epoch);
  ASSERT_TRUE(c1.ok() && c2.ok());
  ASSERT_EQ(c1->transactions.size(), 1u);
  ASSERT_EQ(c2->transactions.size(), 1u);
  const auto& a = c1->transactions[0];
  EXPECT_EQ(a.site.kind, query::TransactionSite::Kind::kCommitCall);
  EXPECT_NE(a.site.file.find("query_test.cc"), std::string::npos);
  EXPECT_EQ(a.site.line, static_cast<std::uint32_t>(line));
  const auto& b = c2->transactions[0];
  EXPECT_EQ(b.site.kind, query::TransactionSite::Kind::kTransaction);
  EXPECT_NE(b.site.function.find("TransactionBody"), std::string::npos) << b.site.function;
  EXPECT_EQ(a.thread, b.thread);
  EXPECT_EQ(b.sequence, a.sequence + 1);
  const query::BuildInfo build = (*index)->BuildAt(h->changes[0].epoch);
  EXPECT_FALSE(build.build_id.empty());
  EXPECT_NE(build.executable.find("log_query_test"), std::string::npos);
  // touched counts by site.
  auto t = query::TouchedBy(**index, "blob", 0, kLatestEpoch);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->epochs, 2u);
  EXPECT_EQ(t->sites.size(), 2u);
}

// A log whose first segments were retired starts at a checkpoint: the index starts there too,
// and values agree with replay.
TEST(QueryIndex, RetiredSegmentsStartFromTheCheckpoint) {
  TempDir dir;
  ASSERT_TRUE(start().ok());
  LogOptions lo;
  lo.durability = Durability::kNone;
  lo.segment_bytes = 4096;
  auto sink = AttachLog(dir.path(), lo);
  ASSERT_TRUE(sink.ok());
  PageOptions po;
  po.name = "blob";
  Page* p = *CreatePage(256, po);
  std::mt19937_64 rng(7);
  auto work = [&](int n) {
    for (int i = 0; i < n; ++i) {
      *rt::w(&p->data()[rng() % 256]) = static_cast<std::uint8_t>(rng());
      ASSERT_TRUE(commit().ok());
    }
  };
  work(80);
  ASSERT_TRUE((*sink)->Checkpoint().ok());
  work(80);
  ASSERT_TRUE((*sink)->Checkpoint().ok());
  work(40);
  ASSERT_TRUE((*sink)->Close().ok());
  stop();
  auto index = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_GT((*index)->first_epoch(), 0u);
  auto f = query::ResolveFields(**index, "blob");
  ASSERT_TRUE(f.ok());
  for (Epoch e = (*index)->first_epoch(); e <= (*index)->last_epoch(); e += 7) {
    ReplayOptions ro;
    ro.epoch = e;
    auto st = Replay(dir.path(), ro);
    ASSERT_TRUE(st.ok());
    const ReplayedPage* rp = st->FindPageByName("blob");
    ASSERT_NE(rp, nullptr);
    auto v = query::ValuesAt(**index, *f, e);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ((*v)[0], FormatScalar(ScalarKind::kBytes, rp->bytes.data(), 256)) << e;
  }
}

}  // namespace
}  // namespace mmsb
