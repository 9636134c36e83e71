// Replication through NATS JetStream (replication/, docs/Replication.md) against a private
// nats-server: a follower ends bit-identical to the leader's log, also across chunked epochs,
// leader restarts, a killed publisher's partial epoch, a second publisher, a server killed with
// -9, a follower killed with -9, a delayed network, checkpoints and retention.
#include "mmsb/replication.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nats/nats.h>

#include "mmsb/mmsb.h"

#include "bus_workload.h"
#include "log_test_util.h"
#include "nats_fixture.h"
#include "nats_util.h"

namespace mmsb {
namespace {

using testing::BusWorkload;
using testing::DelayProxy;
using testing::NatsServer;
using testing::TempDir;

class ReplicationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!server_.available()) GTEST_SKIP() << "skipped: nats-server not found (scripts/dev setup)";
    ASSERT_TRUE(server_.Start()) << "nats-server did not start on port " << server_.port();
  }
  void TearDown() override {
    if (repl_) (void)repl_->Close();
    repl_.reset();
    if (log_) (void)log_->Close();
    log_.reset();
    stop();
  }

  // A bus session on the log at `dir`; with `url`, replicated there.
  Status Lead(const std::string& dir, const std::string& url, ReplicationOptions o = {}) {
    Status s = LeadImpl(dir, url, o);
    if (!s.ok()) ADD_FAILURE() << "Lead: " << s.ToString();
    return s;
  }
  Status LeadImpl(const std::string& dir, const std::string& url, ReplicationOptions o) {
    MMSB_RETURN_IF_ERROR(start());
    LogOptions lo;
    lo.durability = Durability::kNone;  // the local log's fsyncs are not what these tests test
    auto log = AttachLog(dir, lo);
    if (!log.ok()) return log.status();
    log_ = *log;
    if (url.empty()) return Status::Ok();
    auto r = Replicate(log_, url, o);
    if (!r.ok()) return r.status();
    repl_ = *r;
    return Status::Ok();
  }
  void EndSession() {
    if (repl_) ASSERT_TRUE(repl_->Close().ok());
    repl_.reset();
    if (log_) ASSERT_TRUE(log_->Close().ok());
    log_.reset();
    stop();
  }
  void Run(BusWorkload& w, int epochs, std::size_t bytes = 64) {
    for (int i = 0; i < epochs; ++i) ASSERT_TRUE(w.Step(bytes).ok());
  }
  static LogState Replayed(const std::string& dir) {
    auto st = Replay(dir);
    EXPECT_TRUE(st.ok()) << st.status().ToString();
    return st.ok() ? *st : LogState{};
  }
  // Follows `url` in memory until `epoch`.
  static std::unique_ptr<Follower> FollowTo(const std::string& url, Epoch epoch,
                                            FollowOptions o = {}) {
    auto f = Follower::Open(url, o);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    if (!f.ok()) return nullptr;
    auto e = (*f)->RunUntil(epoch, 10000);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    EXPECT_EQ(e.ok() ? *e : 0, epoch);
    return std::move(*f);
  }

  NatsServer server_;
  std::shared_ptr<LogSink> log_;
  std::shared_ptr<Replicator> repl_;
};

// The complete epochs in the stream, in stream order (each epoch's last chunk).
std::vector<Epoch> CompleteEpochsInStream(const std::string& server, const std::string& stream) {
  std::vector<Epoch> out;
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  if (natsConnection_ConnectTo(&nc, server.c_str()) != NATS_OK) return out;
  natsConnection_JetStream(&js, nc, nullptr);
  jsStreamInfo* si = nullptr;
  jsErrCode err;
  if (js_GetStreamInfo(&si, js, stream.c_str(), nullptr, &err) == NATS_OK) {
    for (std::uint64_t seq = si->State.FirstSeq; seq <= si->State.LastSeq; ++seq) {
      natsMsg* m = nullptr;
      if (js_GetMsg(&m, js, stream.c_str(), seq, nullptr, &err) != NATS_OK) continue;
      repl::ChunkMeta meta;
      if (repl::ReadChunkMeta(m, &meta).ok() && meta.last) out.push_back(meta.epoch);
      natsMsg_Destroy(m);
    }
    jsStreamInfo_Destroy(si);
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return out;
}

std::vector<Epoch> Iota(Epoch from, Epoch to) {
  std::vector<Epoch> v;
  for (Epoch e = from; e <= to; ++e) v.push_back(e);
  return v;
}

TEST_F(ReplicationTest, FollowerEndsBitIdenticalToTheLeadersLog) {
  TempDir dir, replica;
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S1")).ok());
  BusWorkload w(11);
  w.Setup();
  Run(w, 300);
  const Epoch last = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(last).ok());
  EndSession();
  const LogState leader = Replayed(dir.Sub("run.tlog"));
  FollowOptions fo;
  fo.out_dir = replica.Sub("replica.tlog");
  fo.full_hash_every = 7;  // the incremental hash is also checked against full passes
  auto f = FollowTo(server_.Url("S1"), last, fo);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->state().Hash(), leader.Hash());
  EXPECT_EQ(f->stats().hashes_checked, last);
  EXPECT_EQ(f->stats().full_hashes, last / 7);
  EXPECT_EQ(f->stats().divergences, 0u);
  f.reset();  // closes the replica log
  // The replica log is a full log: every mmsb command reads it.
  EXPECT_EQ(Replayed(replica.Sub("replica.tlog")).Hash(), leader.Hash());
  EXPECT_EQ(CompleteEpochsInStream(server_.server(), "S1"), Iota(1, last));
}

TEST_F(ReplicationTest, EpochLargerThanAChunkIsAppliedOnlyWhole) {
  TempDir dir;
  ReplicationOptions o;
  o.max_chunk_bytes = 1000;
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S2"), o).ok());
  BusWorkload w(12, 64 << 10);
  w.Setup();  // the first epoch logs whole pages: many chunks
  Run(w, 30, 8000);
  const Epoch last = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(last).ok());
  EXPECT_GT(repl_->stats().messages, 3 * last);
  EndSession();
  auto f = FollowTo(server_.Url("S2"), last);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->state().Hash(), Replayed(dir.Sub("run.tlog")).Hash());
}

TEST_F(ReplicationTest, SecondPublisherIsRefused) {
  TempDir dir, other;
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S3")).ok());
  BusWorkload w(13);
  w.Setup();
  Run(w, 5);
  auto second_log = LogSink::Open(other.Sub("other.tlog"));
  ASSERT_TRUE(second_log.ok());
  auto second = Replicate(*second_log, server_.Url("S3"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("already has a leader"), std::string::npos)
      << second.status().message();
  // The leader is unaffected.
  Run(w, 5);
  ASSERT_TRUE(repl_->WaitAcked(log_->LogEpoch(current_epoch())).ok());
  EXPECT_TRUE(repl_->health().ok());
}

TEST_F(ReplicationTest, StreamAheadOfTheLocalLogOrDisagreeingWithItIsRefused) {
  TempDir a, b, c;
  ASSERT_TRUE(Lead(a.Sub("run.tlog"), server_.Url("S4")).ok());
  BusWorkload w(14);
  w.Setup();
  Run(w, 20);
  EndSession();
  // A shorter local log: the stream is ahead.
  ASSERT_TRUE(Lead(b.Sub("run.tlog"), "").ok());
  BusWorkload w2(15);
  w2.Setup();
  Run(w2, 5);
  auto r = Replicate(log_, server_.Url("S4"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("fork"), std::string::npos) << r.status().message();
  EndSession();
  // As long, but another history: the state hashes differ.
  ASSERT_TRUE(Lead(c.Sub("run.tlog"), "").ok());
  BusWorkload w3(16);
  w3.Setup();
  Run(w3, 21);
  r = Replicate(log_, server_.Url("S4"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("disagree"), std::string::npos) << r.status().message();
  EndSession();
  EXPECT_EQ(CompleteEpochsInStream(server_.server(), "S4"), Iota(1, 20));  // untouched
}

TEST_F(ReplicationTest, LeaderRestartRepublishesWhatTheStreamLacks) {
  TempDir dir;
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S5")).ok());
  BusWorkload w(17);
  w.Setup();
  Run(w, 40);
  ASSERT_TRUE(repl_->Close().ok());
  repl_.reset();
  Run(w, 25);  // logged locally while not replicating
  const Epoch last = log_->LogEpoch(current_epoch());
  auto r = Replicate(log_, server_.Url("S5"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  repl_ = *r;
  EXPECT_EQ(repl_->stats().republished, 25u);
  Run(w, 10);
  ASSERT_TRUE(repl_->WaitAcked(last + 10).ok());
  EndSession();
  auto f = FollowTo(server_.Url("S5"), last + 10);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->state().Hash(), Replayed(dir.Sub("run.tlog")).Hash());
  EXPECT_EQ(CompleteEpochsInStream(server_.server(), "S5"), Iota(1, last + 10));
}

// What a publisher killed mid-epoch leaves: the first chunks of an epoch, never its last.
void PublishPartialEpoch(const std::string& server, const std::string& stream, Epoch epoch,
                         std::uint64_t token) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, server.c_str()), NATS_OK);
  natsConnection_JetStream(&js, nc, nullptr);
  natsMsg* m = nullptr;
  std::vector<std::uint8_t> payload(repl::kChunkPrefixBytes + 500, 'x');
  repl::ChunkMeta meta;
  meta.epoch = epoch;
  meta.chunk = 0;
  meta.log_id = 1;
  meta.token = token;
  repl::EncodeChunkMeta(meta, payload.data());
  natsMsg_Create(&m, (stream + ".log").c_str(), nullptr,
                 reinterpret_cast<const char*>(payload.data()), static_cast<int>(payload.size()));
  jsPubAck* pa = nullptr;
  jsErrCode err;
  ASSERT_EQ(js_PublishMsg(&pa, js, m, nullptr, &err), NATS_OK);
  jsPubAck_Destroy(pa);
  natsMsg_Destroy(m);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
}

TEST_F(ReplicationTest, PartialEpochOfAKilledPublisherIsNeverApplied) {
  TempDir dir;
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S6")).ok());
  BusWorkload w(18);
  w.Setup();
  Run(w, 10);
  const Epoch last = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(last).ok());
  const std::uint64_t token = repl_->stats().fencing_token;
  ASSERT_TRUE(repl_->Close().ok());
  repl_.reset();
  PublishPartialEpoch(server_.server(), "S6", last + 1, token);
  auto f = Follower::Open(server_.Url("S6"));
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(*(*f)->RunUntil(last + 1, 500), last);  // the partial epoch is not applied
  const std::uint64_t at_last = (*f)->state().Hash();
  ASSERT_TRUE(log_->writer().Flush().ok());
  EXPECT_EQ(at_last, Replayed(dir.Sub("run.tlog")).Hash());
  // The restarted leader publishes epoch last+1 whole; the follower applies that.
  auto r = Replicate(log_, server_.Url("S6"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  repl_ = *r;
  Run(w, 5);
  ASSERT_TRUE(repl_->WaitAcked(last + 5).ok());
  ASSERT_EQ(*(*f)->RunUntil(last + 5, 10000), last + 5);
  EXPECT_EQ((*f)->stats().partial_dropped, 1u);
  EndSession();
  EXPECT_EQ((*f)->state().Hash(), Replayed(dir.Sub("run.tlog")).Hash());
}

// Publishes one raw data message to `stream` (no expectations): `payload` and, when `epoch_header`
// is set, format 1's Mmsb-Epoch header.
void PublishRaw(const std::string& server, const std::string& stream,
                const std::vector<std::uint8_t>& payload, const char* epoch_header) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, server.c_str()), NATS_OK);
  natsConnection_JetStream(&js, nc, nullptr);
  natsMsg* m = nullptr;
  natsMsg_Create(&m, (stream + ".log").c_str(), nullptr,
                 reinterpret_cast<const char*>(payload.data()), static_cast<int>(payload.size()));
  if (epoch_header != nullptr) natsMsgHeader_Set(m, "Mmsb-Epoch", epoch_header);
  jsPubAck* pa = nullptr;
  jsErrCode err;
  ASSERT_EQ(js_PublishMsg(&pa, js, m, nullptr, &err), NATS_OK);
  jsPubAck_Destroy(pa);
  natsMsg_Destroy(m);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
}

// Wire format 2 is versioned: a follower or publisher meeting a format-1 message (an older
// MMSB's headers) or a newer version refuses it by name instead of misreading it.
TEST_F(ReplicationTest, MessagesOfAnotherWireFormatAreRefusedByName) {
  TempDir dir;
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S31")).ok());
  BusWorkload w(31);
  w.Setup();
  Run(w, 3);
  ASSERT_TRUE(repl_->WaitAcked(log_->LogEpoch(current_epoch())).ok());
  EndSession();
  // A newer version after the stream's format-2 epochs: the follower stops there, naming it.
  std::vector<std::uint8_t> newer(repl::kChunkPrefixBytes + 10, 0);
  repl::ChunkMeta meta;
  meta.epoch = 4;
  meta.last = true;
  repl::EncodeChunkMeta(meta, newer.data());
  newer[7] = 3;
  PublishRaw(server_.server(), "S31", newer, nullptr);
  auto f = Follower::Open(server_.Url("S31"));
  ASSERT_FALSE(f.ok());  // the stream's tail is read at open
  EXPECT_NE(f.status().message().find("wire format 3"), std::string::npos) << f.status().ToString();
  // A format-1 message: a payload of log records and the fields in Mmsb-* headers.
  PublishRaw(server_.server(), "S31", std::vector<std::uint8_t>(20, 1), "5");
  f = Follower::Open(server_.Url("S31"));
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("wire format 1"), std::string::npos) << f.status().ToString();
  ASSERT_TRUE(start().ok());
  auto log = AttachLog(dir.Sub("run.tlog"));
  ASSERT_TRUE(log.ok());
  auto r = Replicate(*log, server_.Url("S31"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("wire format 1"), std::string::npos) << r.status().ToString();
  ASSERT_TRUE((*log)->Close().ok());
  stop();
}

TEST_F(ReplicationTest, ServerKilledAndRestartedLosesAndDuplicatesNothing) {
  TempDir dir;
  ReplicationOptions o;
  o.ack_timeout_ms = 300;
  o.lease_ttl_ms = 30000;
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S7"), o).ok());
  BusWorkload w(19);
  w.Setup();
  Run(w, 100);
  server_.Kill9();
  Run(w, 50);  // queued while the server is down (the window holds them)
  // Down for longer than the acknowledgement timeout: the queued epochs' acknowledgements time
  // out, so the publisher must re-read the stream and resend from it (the recovery checked below).
  // Restarted sooner, everything can be acknowledged without one (the next test), which made the
  // recovery check fail about once in 65 runs.
  std::this_thread::sleep_for(std::chrono::milliseconds(3 * o.ack_timeout_ms));
  ASSERT_TRUE(server_.Start());
  Run(w, 100);
  const Epoch last = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(last, 30000).ok()) << repl_->health().ToString();
  EXPECT_GE(repl_->stats().recoveries, 1u);
  EndSession();
  EXPECT_EQ(CompleteEpochsInStream(server_.server(), "S7"), Iota(1, last));
  auto f = FollowTo(server_.Url("S7"), last);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->state().Hash(), Replayed(dir.Sub("run.tlog")).Hash());
}

// The other restart: everything before the kill acknowledged, and the server back before the
// acknowledgement timeout. cnats's reconnect buffer then resends the epochs queued meanwhile,
// with the expected last sequences they were published with, which still match: the stream takes
// them without the publisher recovering (or, on a slow machine, after it recovers; either way).
TEST_F(ReplicationTest, ServerRestartedWithinTheAckTimeoutLosesAndDuplicatesNothing) {
  TempDir dir;
  ReplicationOptions o;
  o.ack_timeout_ms = 300;
  o.lease_ttl_ms = 30000;
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S16"), o).ok());
  BusWorkload w(28);
  w.Setup();
  Run(w, 100);
  ASSERT_TRUE(repl_->WaitAcked(log_->LogEpoch(current_epoch())).ok());
  server_.Kill9();
  Run(w, 50);
  ASSERT_TRUE(server_.Start());
  Run(w, 100);
  const Epoch last = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(last, 30000).ok()) << repl_->health().ToString();
  EndSession();
  EXPECT_EQ(CompleteEpochsInStream(server_.server(), "S16"), Iota(1, last));
  auto f = FollowTo(server_.Url("S16"), last);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->state().Hash(), Replayed(dir.Sub("run.tlog")).Hash());
}

// Exactly-once rests on the expected last sequence alone (data messages carry no Nats-Msg-Id):
// a retry of a stored message, sent again with the expectation it was first sent with, is
// refused, and the stream still holds each epoch once.
TEST_F(ReplicationTest, RetryOfAStoredEpochIsRefusedByItsExpectedLastSequence) {
  TempDir dir;
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S30"), {}).ok());
  BusWorkload w(23);
  w.Setup();
  Run(w, 20);
  const Epoch last = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(last).ok());
  EndSession();
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, server_.server().c_str()), NATS_OK);
  ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  jsErrCode err = static_cast<jsErrCode>(0);
  for (std::uint64_t seq : {std::uint64_t{2}, std::uint64_t{10}}) {
    natsMsg* stored = nullptr;
    ASSERT_EQ(js_GetMsg(&stored, js, "S30", seq, nullptr, &err), NATS_OK);
    const char* id = nullptr;
    EXPECT_NE(natsMsgHeader_Get(stored, "Nats-Msg-Id", &id), NATS_OK) << "seq " << seq;
    natsMsg* retry = nullptr;
    ASSERT_EQ(natsMsg_Create(&retry, natsMsg_GetSubject(stored), nullptr, natsMsg_GetData(stored),
                             natsMsg_GetDataLength(stored)),
              NATS_OK);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.ExpectLastSeq = seq - 1;  // what the publisher expected when it first sent it
    jsPubAck* pa = nullptr;
    err = static_cast<jsErrCode>(0);
    EXPECT_NE(js_PublishMsg(&pa, js, retry, &po, &err), NATS_OK) << "seq " << seq;
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(retry);
    natsMsg_Destroy(stored);
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  EXPECT_EQ(CompleteEpochsInStream(server_.server(), "S30"), Iota(1, last));
}

TEST_F(ReplicationTest, ServerAckDurabilityReturnsOnlyOnceTheServerHasTheEpoch) {
  TempDir dir;
  ReplicationOptions o;
  o.durability = ReplicaDurability::kServerAck;
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S8"), o).ok());
  BusWorkload w(20);
  w.Setup();
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(w.Step().ok());
    EXPECT_GE(repl_->stats().acked_epoch, log_->LogEpoch(current_epoch()));
  }
}

// The tracing hooks (bench/replication's lag breakdown): every epoch is reported once as
// published, then acknowledged, then received (with the server's store time, within the run) and
// only then applied, in epoch order.
TEST_F(ReplicationTest, TraceHooksReportEachEpochsHopsInOrder) {
  TempDir dir;
  std::mutex mu;
  std::vector<Epoch> published, acked;
  ReplicationOptions o;
  o.on_published = [&](Epoch e) {
    std::lock_guard<std::mutex> l(mu);
    published.push_back(e);
  };
  o.on_acked = [&](Epoch e) {
    std::lock_guard<std::mutex> l(mu);
    acked.push_back(e);
  };
  const auto unix_ns = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const std::int64_t begin = unix_ns();
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S15"), o).ok());
  BusWorkload w(27);
  w.Setup();
  Run(w, 50);
  const Epoch last = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(last).ok());
  EndSession();
  {
    std::lock_guard<std::mutex> l(mu);
    EXPECT_EQ(published, Iota(1, last));
    EXPECT_EQ(acked, Iota(1, last));
  }
  std::vector<Epoch> received, applied;
  std::vector<std::int64_t> stored;
  FollowOptions fo;
  fo.on_received = [&](Epoch e, std::int64_t stored_unix_nanos) {
    EXPECT_EQ(applied.size(), received.size()) << "epoch " << e << " received before the last "
                                               << "one was applied";
    received.push_back(e);
    stored.push_back(stored_unix_nanos);
  };
  fo.on_epoch = [&](const LogState&, Epoch e) { applied.push_back(e); };
  auto f = FollowTo(server_.Url("S15"), last, fo);
  ASSERT_TRUE(f);
  EXPECT_EQ(received, Iota(1, last));
  EXPECT_EQ(applied, Iota(1, last));
  const std::int64_t end = unix_ns();
  for (std::size_t i = 0; i < stored.size(); ++i) {
    EXPECT_GE(stored[i], begin - 1'000'000'000) << "epoch " << i + 1;  // one clock, loopback
    EXPECT_LE(stored[i], end) << "epoch " << i + 1;
    if (i > 0) EXPECT_GE(stored[i], stored[i - 1]) << "epoch " << i + 1;
  }
}

TEST_F(ReplicationTest, FollowerThroughADelayedNetworkConverges) {
  TempDir dir;
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S9")).ok());
  BusWorkload w(21);
  w.Setup();
  DelayProxy proxy(server_.port(), 15);
  auto f = Follower::Open(fmt::format("nats://127.0.0.1:{}/S9", proxy.port()));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  Run(w, 150);
  const Epoch last = log_->LogEpoch(current_epoch());
  ASSERT_EQ(*(*f)->RunUntil(last, 15000), last);
  EndSession();
  EXPECT_EQ((*f)->state().Hash(), Replayed(dir.Sub("run.tlog")).Hash());
}

TEST_F(ReplicationTest, NewFollowerStartsFromTheNewestCheckpointAndRetentionKeepsWhatItNeeds) {
  TempDir dir;
  ReplicationOptions o;
  o.checkpoint_every_bytes = 16 << 10;
  o.retain_bytes = 1;  // purge whatever a published checkpoint covers
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S10"), o).ok());
  BusWorkload w(22);
  w.Setup();
  Run(w, 200, 256);
  const Epoch last = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(last).ok());
  EXPECT_GE(repl_->stats().checkpoints, 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the last checkpoint's purge
  const std::vector<Epoch> kept = CompleteEpochsInStream(server_.server(), "S10");
  ASSERT_FALSE(kept.empty());
  EXPECT_GT(kept.front(), 1u);  // retention dropped covered epochs...
  auto f = FollowTo(server_.Url("S10"), last);
  ASSERT_TRUE(f);
  const Epoch ckpt = f->stats().checkpoint_epoch;
  EXPECT_GT(ckpt, 0u);
  EXPECT_LE(kept.front(), ckpt + 1);  // ...but nothing the newest checkpoint needs
  EXPECT_EQ(kept.back(), last);
  EndSession();
  EXPECT_EQ(f->state().Hash(), Replayed(dir.Sub("run.tlog")).Hash());
}

// Age-based retention purges only what the newest checkpoint covers: with a long age nothing
// goes; with a short one everything before the checkpoint's next epoch goes, however old the
// epochs after it are, and a new follower still reaches the end from the checkpoint.
TEST_F(ReplicationTest, RetentionByAgeNeverDropsWhatTheNewestCheckpointNeeds) {
  TempDir dir;
  ReplicationOptions o;
  o.retain_age_ms = 3600 * 1000;  // an hour: nothing is that old
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S13"), o).ok());
  BusWorkload w(25);
  w.Setup();
  Run(w, 40);
  auto ckpt = log_->Checkpoint();
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  Run(w, 40);
  Epoch last = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(last).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // retention looks again meanwhile
  EXPECT_EQ(CompleteEpochsInStream(server_.server(), "S13"), Iota(1, last));
  EXPECT_EQ(repl_->stats().purges, 0u);
  EXPECT_EQ(repl_->stats().checkpoints, 1u);
  ASSERT_TRUE(repl_->Close().ok());
  repl_.reset();
  // The same stream with a short age: everything older than it that the checkpoint covers goes.
  o.retain_age_ms = 1;
  auto r = Replicate(log_, server_.Url("S13"), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  repl_ = *r;
  Run(w, 10);
  last = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(last).ok());
  std::vector<Epoch> kept;
  for (int i = 0; i < 500; ++i) {  // retention runs on the publisher's thread: wait for it
    kept = CompleteEpochsInStream(server_.server(), "S13");
    if (!kept.empty() && kept.front() > 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(kept, Iota(*ckpt + 1, last));  // the checkpoint's successor is older than 1 ms: kept
  EXPECT_GE(repl_->stats().purges, 1u);
  EndSession();
  auto f = FollowTo(server_.Url("S13"), last);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->stats().checkpoint_epoch, *ckpt);
  EXPECT_EQ(f->state().Hash(), Replayed(dir.Sub("run.tlog")).Hash());
}

// checkpoint_every_ms asks the log for checkpoints by time, so age-based retention makes
// progress without a byte threshold.
TEST_F(ReplicationTest, CheckpointEveryMsPublishesCheckpointsByTime) {
  TempDir dir;
  ReplicationOptions o;
  o.checkpoint_every_ms = 1;
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S14"), o).ok());
  BusWorkload w(26);
  w.Setup();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(w.Step().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  const Epoch last = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(last).ok());
  EndSession();
  auto f = FollowTo(server_.Url("S14"), last);
  ASSERT_TRUE(f);
  EXPECT_GT(f->stats().checkpoint_epoch, 1u);
  EXPECT_EQ(f->state().Hash(), Replayed(dir.Sub("run.tlog")).Hash());
}

#ifdef MMSB_CLI_PATH
// `mmsb follow` killed with -9 and started again resumes from its replica log.
TEST_F(ReplicationTest, FollowerKilledAndRestartedResumesFromItsReplica) {
  TempDir dir, replica;
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S11")).ok());
  BusWorkload w(23);
  w.Setup();
  Run(w, 400);
  const Epoch last = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(last).ok());
  const std::string out = replica.Sub("replica.tlog");
  const std::string url = server_.Url("S11");
  auto spawn = [&](const std::vector<std::string>& extra) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      std::vector<std::string> args = {MMSB_CLI_PATH, "follow", url, "--out", out, "-q"};
      args.insert(args.end(), extra.begin(), extra.end());
      std::vector<char*> argv;
      for (auto& s : args) argv.push_back(s.data());
      argv.push_back(nullptr);
      const int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    return pid;
  };
  // Kill it once its replica has some epochs, while the leader goes on.
  const pid_t first = spawn({});
  for (int i = 0; i < 1000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::error_code ec;
    if (std::filesystem::file_size(out + "/00000001.seg", ec) > 1000 && !ec) break;
  }
  ::kill(first, SIGKILL);
  int st = 0;
  ::waitpid(first, &st, 0);
  Run(w, 100);
  const Epoch end = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(end).ok());
  ASSERT_GT(Replayed(out).epoch, 0u);
  const pid_t second = spawn({"--until", std::to_string(end), "--idle-exit", "10000"});
  ::waitpid(second, &st, 0);
  ASSERT_TRUE(WIFEXITED(st));
  ASSERT_EQ(WEXITSTATUS(st), 0);
  EndSession();
  EXPECT_EQ(Replayed(out).Hash(), Replayed(dir.Sub("run.tlog")).Hash());
}

// `mmsb follow --serve PATH`: a local reader gets the follower's current state as JSON.
TEST_F(ReplicationTest, FollowCliServesTheCurrentStateOnAUnixSocket) {
  TempDir dir, tmp;
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S12")).ok());
  BusWorkload w(24);
  w.Setup();
  Run(w, 20);
  const Epoch last = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(last).ok());
  EndSession();
  const std::string sock = tmp.Sub("state.sock");
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::execl(MMSB_CLI_PATH, MMSB_CLI_PATH, "follow", server_.Url("S12").c_str(), "--serve",
            sock.c_str(), "-q", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const std::string want = fmt::format("\"epoch\": {}", last);
  std::string got;
  for (int i = 0; i < 500 && got.find(want) == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
    got.clear();
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
        got.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
  }
  ::kill(pid, SIGTERM);
  int st = 0;
  ::waitpid(pid, &st, 0);
  EXPECT_NE(got.find(want), std::string::npos) << got.substr(0, 200);
  EXPECT_NE(got.find("\"format\": \"mmsb.state/1\""), std::string::npos);
}
#endif

}  // namespace
}  // namespace mmsb
