// Provenance: the site and commit-info records round-trip (both layouts) and reach the index;
// through the bus, commits name their call site or transaction, thread and sequence, the run
// names its build, and `touched` counts epochs by site.
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/mmsb.h"
#include "mmsb/query.h"

#include "log/log_records.h"
#include "query_test_util.h"

namespace mmsb {
namespace {

using testing::TempDir;
using testing::VecType;

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
  EXPECT_NE(a.site.file.find("query_provenance_test.cc"), std::string::npos);
  EXPECT_EQ(a.site.line, static_cast<std::uint32_t>(line));
  const auto& b = c2->transactions[0];
  EXPECT_EQ(b.site.kind, query::TransactionSite::Kind::kTransaction);
  EXPECT_NE(b.site.function.find("TransactionBody"), std::string::npos) << b.site.function;
  EXPECT_EQ(a.thread, b.thread);
  EXPECT_EQ(b.sequence, a.sequence + 1);
  const query::BuildInfo build = (*index)->BuildAt(h->changes[0].epoch);
  EXPECT_FALSE(build.build_id.empty());
  EXPECT_NE(build.executable.find("log_query_provenance_test"), std::string::npos);
  // touched counts by site.
  auto t = query::TouchedBy(**index, "blob", 0, kLatestEpoch);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->epochs, 2u);
  EXPECT_EQ(t->sites.size(), 2u);
}

// Commits from two call sites (mmsb::commit() in two functions) on two threads, logged by sinks
// that come and go: each sink keeps its own commit-info template and its own last-site cache, so
// whichever site, thread and sink a commit's neighbours had, each log names the commit's own
// site, thread and sequence, and a site already logged by a closed sink is logged again by the
// next one (a new log's readers know only its own site records).
int g_site_line[2];
void CommitAtSiteA(Page* p, std::uint8_t v) {
  *rt::w(&p->data()[2]) = v;
  g_site_line[0] = __LINE__ + 1;
  ASSERT_TRUE(commit().ok());
}
void CommitAtSiteB(Page* p, std::uint8_t v) {
  *rt::w(&p->data()[2]) = v;
  g_site_line[1] = __LINE__ + 1;
  ASSERT_TRUE(commit().ok());
}

TEST(QueryProvenance, AlternatingSitesThreadsAndSinksEachLogTheirOwnCommits) {
  TempDir dir_a, dir_b, dir_c;
  ASSERT_TRUE(start().ok());
  LogOptions lo;
  lo.durability = Durability::kNone;
  PageOptions po;
  po.name = "blob";
  Page* p = *CreatePage(64, po);
  *rt::w(&p->data()[0]) = 1;
  ASSERT_TRUE(commit().ok());
  // What each log must hold, in commit order: (site, committed on the worker thread).
  std::vector<std::pair<int, bool>> want_a, want_b, want_c;
  std::uint8_t v = 10;
  auto commit_at = [&](int site, bool on_worker, std::initializer_list<decltype(&want_a)> logs) {
    const std::uint8_t value = v++;
    auto body = [&] { (site == 0 ? CommitAtSiteA : CommitAtSiteB)(p, value); };
    if (on_worker) {
      std::thread t(body);
      t.join();
    } else {
      body();
    }
    for (auto* w : logs) w->push_back({site, on_worker});
  };
  {
    auto a = AttachLog(dir_a.path(), lo);
    ASSERT_TRUE(a.ok());
    // Sites and threads alternating, then repeating, with one sink.
    for (int i = 0; i < 12; ++i) commit_at(i % 3 == 0 ? 1 : 0, i % 4 == 1, {&want_a});
    auto b = AttachLog(dir_b.path(), lo);
    ASSERT_TRUE(b.ok());
    // Two sinks on the same commits; b starts with both sites already known to a.
    for (int i = 0; i < 12; ++i) commit_at(i % 2, i % 5 == 2, {&want_a, &want_b});
    ASSERT_TRUE((*a)->Close().ok());
    ASSERT_TRUE((*b)->Close().ok());
  }
  {
    // A sink opened after both closed: the same sites, the same thread, the same site as the
    // last commit the closed sinks saw.
    auto c = AttachLog(dir_c.path(), lo);
    ASSERT_TRUE(c.ok());
    for (int i = 0; i < 6; ++i) commit_at(i < 3 ? 1 : 0, i == 4, {&want_c});
    ASSERT_TRUE((*c)->Close().ok());
  }
  stop();

  for (auto [dir, want] : {std::pair{&dir_a, &want_a}, {&dir_b, &want_b}, {&dir_c, &want_c}}) {
    SCOPED_TRACE(dir->path());
    auto index = query::LogIndex::Open(dir->path());
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    auto h = query::FieldHistory(**index, "blob");
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    std::vector<query::TransactionRef> got;
    for (const auto& change : h->changes) {
      auto c = (*index)->Commit(change.epoch);
      ASSERT_TRUE(c.ok()) << c.status().ToString();
      ASSERT_EQ(c->transactions.size(), 1u) << "epoch " << change.epoch;
      got.push_back(c->transactions[0]);
    }
    ASSERT_EQ(got.size(), want->size());
    std::uint32_t main_thread = 0, worker_thread = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      SCOPED_TRACE(i);
      const auto [site, on_worker] = (*want)[i];
      EXPECT_EQ(got[i].site.kind, query::TransactionSite::Kind::kCommitCall);
      EXPECT_EQ(got[i].site.line, static_cast<std::uint32_t>(g_site_line[site]));
      EXPECT_NE(got[i].site.function.find(site == 0 ? "CommitAtSiteA" : "CommitAtSiteB"),
                std::string::npos)
          << got[i].site.function;
      if (i > 0) EXPECT_GT(got[i].sequence, got[i - 1].sequence);
      // Each worker is a new thread with a new number; every main-thread commit has the same.
      if (on_worker) {
        EXPECT_GT(got[i].thread, worker_thread);
        worker_thread = got[i].thread;
      } else {
        if (main_thread == 0) main_thread = got[i].thread;
        EXPECT_EQ(got[i].thread, main_thread);
      }
    }
  }
}
}  // namespace
}  // namespace mmsb
