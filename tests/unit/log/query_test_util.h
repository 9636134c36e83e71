// Helpers shared by the query tests (query_*_test.cc): random logs of typed pages (LogGen), the
// replay oracle that every answer is compared with, random field patterns, and the comparison of
// two change lists.
#pragma once

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/query.h"

#include "log_test_util.h"

namespace mmsb::testing {

inline FieldDescriptor Scalar(const char* name, std::uint32_t off, ScalarKind k, std::uint32_t size,
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
inline TypeDescriptor VecType() {
  TypeDescriptor t;
  t.name = "Vec";
  t.size = 8;
  t.align = 4;
  t.fields = {Scalar("x", 0, ScalarKind::kF32, 4), Scalar("y", 4, ScalarKind::kF32, 4)};
  return t;
}
inline TypeDescriptor CountersType() {
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

inline std::string Patterns(std::mt19937_64& rng) {
  static const char* kPatterns[] = {
      "Counters.hits[3]",  "g_counters.hits[*]",  "Counters.total",    "g_counters.avg",
      "Counters.pos[1].y", "g_counters.pos[*].x", "g_counters.pos",    "g_counters",
      "raw_blob",          "Counters[2].hits[5]", "Counters[*].total", "late.flag",
      "Counters.flag",     "g_counters.hits"};
  return kPatterns[rng() % std::size(kPatterns)];
}

inline void ExpectSame(const std::vector<query::FieldChangeAt>& got,
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

// The predicate's value with the oracle's bytes, evaluated by the same Predicate::Eval: the
// oracle checks bisect's search, not the arithmetic (ArithmeticFollowsC checks that).
inline bool OracleHolds(const query::Predicate& p, const Oracle& o, Epoch e) {
  std::vector<std::vector<std::uint8_t>> vals;
  for (const auto& f : p.fields()) {
    auto b = o.Bytes(f, e);
    if (!b) return false;
    vals.push_back(*b);
  }
  return p.Eval(vals);
}

}  // namespace mmsb::testing
