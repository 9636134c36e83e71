// Replication through NATS JetStream (replication/, docs/Replication.md) against a private
// nats-server: a follower ends bit-identical to the leader's log, also across chunked epochs,
// leader restarts, a killed publisher's partial epoch, a second publisher, a server killed with
// -9, a follower killed with -9, a delayed network, checkpoints and retention, packed messages
// (wire format 3) and streams of the older wire formats.
#include "mmsb/replication.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
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

// Calls `each` with every message of the data stream, in stream order. A message that is not
// found was purged; any other failure (a timeout on a loaded machine) is tried again, so that a
// slow answer is not read as a purged message.
template <class Each>
void ForEachMessage(const std::string& server, const std::string& stream, Each each) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  if (natsConnection_ConnectTo(&nc, server.c_str()) != NATS_OK) return;
  natsConnection_JetStream(&js, nc, nullptr);
  jsStreamInfo* si = nullptr;
  jsErrCode err;
  if (js_GetStreamInfo(&si, js, stream.c_str(), nullptr, &err) == NATS_OK) {
    for (std::uint64_t seq = si->State.FirstSeq; seq <= si->State.LastSeq; ++seq) {
      natsMsg* m = nullptr;
      natsStatus got = NATS_ERR;
      for (int attempt = 0; attempt < 20; ++attempt) {
        got = js_GetMsg(&m, js, stream.c_str(), seq, nullptr, &err);
        if (got == NATS_OK || got == NATS_NOT_FOUND) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (got != NATS_OK) continue;
      each(m);
      natsMsg_Destroy(m);
    }
    jsStreamInfo_Destroy(si);
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
}

// Calls `each` with the chunk header of every message of the data stream that has one.
template <class Each>
void ForEachMessageMeta(const std::string& server, const std::string& stream, Each each) {
  ForEachMessage(server, stream, [&](natsMsg* m) {
    repl::ChunkMeta meta;
    if (repl::ReadChunkMeta(m, &meta).ok()) each(meta);
  });
}

// The complete epochs in the stream, in stream order (each epoch's last chunk).
std::vector<Epoch> CompleteEpochsInStream(const std::string& server, const std::string& stream) {
  std::vector<Epoch> out;
  ForEachMessageMeta(server, stream, [&](const repl::ChunkMeta& meta) {
    if (meta.last) {
      for (Epoch e = meta.epoch; e <= meta.last_epoch(); ++e) out.push_back(e);
    }
  });
  return out;
}

// The first epoch of the message that holds `epoch` (a publisher that falls behind packs several
// epochs into one message, and retention keeps or purges messages whole); 0 when none does.
Epoch FirstEpochOfMessageHolding(const std::string& server, const std::string& stream,
                                 Epoch epoch) {
  Epoch first = 0;
  ForEachMessageMeta(server, stream, [&](const repl::ChunkMeta& meta) {
    if (first == 0 && meta.epoch <= epoch && epoch <= meta.last_epoch()) first = meta.epoch;
  });
  return first;
}

std::vector<Epoch> Iota(Epoch from, Epoch to) {
  std::vector<Epoch> v;
  for (Epoch e = from; e <= to; ++e) v.push_back(e);
  return v;
}

// The bench's server runs one real-time priority above a real-time caller (docs/Replication.md,
// "The server's priority"), and at the caller's own class otherwise.
TEST(NatsServerFixture, StartsOneRealTimePriorityAboveARealTimeCaller) {
  NatsServer plain;
  if (!plain.available()) GTEST_SKIP() << "skipped: nats-server not found (scripts/dev setup)";
  plain.set_above_caller(true);
  ASSERT_TRUE(plain.Start());
  EXPECT_EQ(::sched_getscheduler(plain.pid()), SCHED_OTHER) << "a SCHED_OTHER caller's server";
  plain.Stop();

  // Start one from a thread at SCHED_FIFO 1 (needs CAP_SYS_NICE or an RLIMIT_RTPRIO).
  int policy = -1, priority = -1;
  bool real_time = false;
  std::thread starter([&] {
    sched_param sp{};
    sp.sched_priority = 1;
    if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) != 0) return;
    real_time = true;
    NatsServer server;
    server.set_above_caller(true);
    if (!server.Start()) return;
    policy = ::sched_getscheduler(server.pid());
    sched_param got{};
    if (::sched_getparam(server.pid(), &got) == 0) priority = got.sched_priority;
    sp.sched_priority = 0;
    (void)pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);  // before it stops the server
  });
  starter.join();
  if (!real_time) GTEST_SKIP() << "skipped: this process may not use SCHED_FIFO";
  EXPECT_EQ(policy, SCHED_FIFO);
  EXPECT_EQ(priority, 2);
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
  EXPECT_GE(repl_->stats().packed_messages, 1u);  // the republished epochs go out packed
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
  std::vector<std::uint8_t> payload(repl::kPrefixBytesV3 + 500, 'x');
  repl::ChunkMeta meta;
  meta.epoch = epoch;
  meta.chunk = 0;
  meta.log_id = 1;
  meta.token = token;
  meta.count = 1;
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

// A publisher killed mid-epoch, then a successor that republishes that epoch and the next ones
// packed: the follower drops the partial epoch and applies the packed ones.
TEST_F(ReplicationTest, PartialEpochOfAKilledPublisherIsDroppedBeforeAPackedSuccessor) {
  TempDir dir;
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S43")).ok());
  BusWorkload w(43);
  w.Setup();
  Run(w, 10);
  const Epoch last = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(last).ok());
  const std::uint64_t token = repl_->stats().fencing_token;
  ASSERT_TRUE(repl_->Close().ok());
  repl_.reset();
  PublishPartialEpoch(server_.server(), "S43", last + 1, token);
  auto f = Follower::Open(server_.Url("S43"));
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(*(*f)->RunUntil(last + 1, 500), last);  // the partial epoch is not applied
  Run(w, 12);                                       // logged while no publisher runs
  auto r = Replicate(log_, server_.Url("S43"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  repl_ = *r;
  ASSERT_TRUE(repl_->WaitAcked(last + 12).ok());
  EXPECT_GE(repl_->stats().packed_messages, 1u);
  ASSERT_EQ(*(*f)->RunUntil(last + 12, 10000), last + 12);
  EXPECT_EQ((*f)->stats().partial_dropped, 1u);
  EXPECT_EQ((*f)->stats().hashes_checked, last + 12);  // one per epoch, packed ones included
  EndSession();
  EXPECT_EQ((*f)->state().Hash(), Replayed(dir.Sub("run.tlog")).Hash());
  EXPECT_EQ(CompleteEpochsInStream(server_.server(), "S43"), Iota(1, last + 12));
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

// Every data message of `stream`, in stream order.
std::vector<std::vector<std::uint8_t>> StreamPayloads(const std::string& server,
                                                      const std::string& stream,
                                                      std::vector<repl::ChunkMeta>* metas) {
  std::vector<std::vector<std::uint8_t>> out;
  ForEachMessage(server, stream, [&](natsMsg* m) {
    repl::ChunkMeta meta;
    EXPECT_TRUE(repl::ReadChunkMeta(m, &meta).ok());
    metas->push_back(meta);
    const auto* d = reinterpret_cast<const std::uint8_t*>(natsMsg_GetData(m));
    out.emplace_back(d, d + natsMsg_GetDataLength(m));
  });
  return out;
}

// Re-publishes the one-epoch messages `metas`/`payloads` (wire format 3) to a new stream in wire
// format 1 (the fields in Mmsb-* headers, the records as the payload) or 2 (a 48-byte prefix):
// what an older MMSB wrote.
void PublishInOldFormat(const std::string& server, const std::string& stream, int format,
                        const std::vector<repl::ChunkMeta>& metas,
                        const std::vector<std::vector<std::uint8_t>>& payloads) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, server.c_str()), NATS_OK);
  natsConnection_JetStream(&js, nc, nullptr);
  ASSERT_TRUE(repl::EnsureStreams(js, stream, 1).ok());
  for (std::size_t i = 0; i < metas.size(); ++i) {
    const repl::ChunkMeta& meta = metas[i];
    ASSERT_EQ(meta.count, 1u);
    const std::vector<std::uint8_t>& p = payloads[i];
    std::vector<std::uint8_t> body;
    if (format == 2) {
      body.assign(p.begin(), p.begin() + repl::kPrefixBytesV2);
      body[7] = 2;
    }
    body.insert(body.end(), p.begin() + static_cast<std::ptrdiff_t>(meta.data_offset), p.end());
    natsMsg* m = nullptr;
    natsMsg_Create(&m, (stream + ".log").c_str(), nullptr,
                   reinterpret_cast<const char*>(body.data()), static_cast<int>(body.size()));
    if (format == 1) {
      const std::string epoch = std::to_string(meta.epoch), chunk = std::to_string(meta.chunk),
                        log_id = repl::Hex16(meta.log_id), token = std::to_string(meta.token);
      natsMsgHeader_Set(m, repl::kHdrEpoch, epoch.c_str());
      natsMsgHeader_Set(m, repl::kHdrChunk, chunk.c_str());
      natsMsgHeader_Set(m, repl::kHdrLogId, log_id.c_str());
      natsMsgHeader_Set(m, repl::kHdrToken, token.c_str());
      if (meta.last) natsMsgHeader_Set(m, repl::kHdrLast, "1");
      if (meta.hash) natsMsgHeader_Set(m, repl::kHdrHash, repl::Hex16(*meta.hash).c_str());
    }
    jsPubAck* pa = nullptr;
    jsErrCode err;
    ASSERT_EQ(js_PublishMsg(&pa, js, m, nullptr, &err), NATS_OK);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
}

// The follower reads wire formats 1 and 2 (an older MMSB's streams) as well as 3; a format-3
// publisher continues a format-2 stream but refuses a format-1 one; a newer version is refused
// by name instead of being misread.
TEST_F(ReplicationTest, OlderWireFormatsAreFollowedAndNewerOnesRefusedByName) {
  TempDir dir;
  ReplicationOptions o;
  o.pack_in_flight = 0;  // one epoch per message, as formats 1 and 2 had
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S31"), o).ok());
  BusWorkload w(31);
  w.Setup();
  Run(w, 30);
  const Epoch last = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(last).ok());
  ASSERT_TRUE(repl_->Close().ok());
  repl_.reset();
  ASSERT_TRUE(log_->writer().Flush().ok());
  std::vector<repl::ChunkMeta> metas;
  const auto payloads = StreamPayloads(server_.server(), "S31", &metas);
  ASSERT_EQ(metas.size(), last);
  PublishInOldFormat(server_.server(), "S32", 1, metas, payloads);
  PublishInOldFormat(server_.server(), "S33", 2, metas, payloads);
  const std::uint64_t want = Replayed(dir.Sub("run.tlog")).Hash();
  for (const char* stream : {"S32", "S33"}) {
    auto f = FollowTo(server_.Url(stream), last);
    ASSERT_TRUE(f) << stream;
    EXPECT_EQ(f->state().Hash(), want) << stream;
    EXPECT_EQ(f->stats().hashes_checked, last) << stream;
  }
  // A format-3 publisher refuses to append to the format-1 stream...
  auto r = Replicate(log_, server_.Url("S32"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("wire format 1"), std::string::npos) << r.status().ToString();
  // ...and continues the format-2 one (its hash for the last epoch matches the local log).
  r = Replicate(log_, server_.Url("S33"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  repl_ = *r;
  Run(w, 10);
  ASSERT_TRUE(repl_->WaitAcked(last + 10).ok());
  EndSession();
  EXPECT_EQ(CompleteEpochsInStream(server_.server(), "S33"), Iota(1, last + 10));
  auto f = FollowTo(server_.Url("S33"), last + 10);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->state().Hash(), Replayed(dir.Sub("run.tlog")).Hash());
  // A newer version after the stream's epochs: the follower stops there, naming it.
  std::vector<std::uint8_t> newer(repl::kPrefixBytesV3 + 10, 0);
  repl::ChunkMeta meta;
  meta.epoch = last + 11;
  meta.last = true;
  repl::EncodeChunkMeta(meta, newer.data());
  newer[7] = 4;
  PublishRaw(server_.server(), "S33", newer, nullptr);
  auto g = Follower::Open(server_.Url("S33"));
  ASSERT_FALSE(g.ok());  // the stream's tail is read at open
  EXPECT_NE(g.status().message().find("wire format 4"), std::string::npos) << g.status().ToString();
  // Not ours at all.
  PublishRaw(server_.server(), "S32", std::vector<std::uint8_t>(20, 1), nullptr);
  g = Follower::Open(server_.Url("S32"));
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("not an MMSB replication"), std::string::npos)
      << g.status().ToString();
}

// A packed message that breaks a rule of wire format 3 is refused, saying which, before any of
// its epochs is looked at.
TEST(ReplicationWireFormat, MalformedPackedMessagesAreRefused) {
  ASSERT_EQ(nats_Open(-1), NATS_OK);  // natsMsg_Create needs the library (no server here)
  auto read = [](const std::vector<std::uint8_t>& body) {
    natsMsg* m = nullptr;
    EXPECT_EQ(natsMsg_Create(&m, "S.log", nullptr, reinterpret_cast<const char*>(body.data()),
                             static_cast<int>(body.size())),
              NATS_OK);
    repl::ChunkMeta meta;
    Status s = repl::ReadChunkMeta(m, &meta);
    natsMsg_Destroy(m);
    return s.ok() ? std::string("ok") : s.message();
  };
  // Two epochs of 3 and 5 bytes: well formed.
  auto packed = [](std::uint32_t count, bool last, std::uint32_t len0, std::uint64_t hash1) {
    std::vector<std::uint8_t> b(repl::PrefixBytes(count) + 8, 7);
    repl::ChunkMeta meta;
    meta.epoch = 10;
    meta.count = count;
    meta.last = last;
    meta.hash = 99;
    repl::EncodeChunkMeta(meta, b.data());
    if (count > 1) {
      repl::EncodePackEntry(b.data(), 0, len0, 98);
      repl::EncodePackEntry(b.data(), 1, 8 - len0, hash1);
    }
    return b;
  };
  EXPECT_EQ(read(packed(2, true, 3, 99)), "ok");
  EXPECT_NE(read(packed(2, false, 3, 99)).find("not one whole chunk"), std::string::npos);
  EXPECT_NE(read(packed(2, true, 3, 12)).find("hash differs"), std::string::npos);
  auto bad_sum = packed(2, true, 3, 99);
  bad_sum.push_back(0);  // one byte more than the table says
  EXPECT_NE(read(bad_sum).find("differ from the"), std::string::npos);
  auto zero = packed(1, true, 0, 0);
  zero[48] = 0;  // an epoch count of 0
  EXPECT_NE(read(zero).find("epoch count of 0"), std::string::npos);
  auto short_table = packed(2, true, 3, 99);
  short_table[48] = 200;  // 200 epochs' table cannot fit
  EXPECT_NE(read(short_table).find("shorter than its table"), std::string::npos);
}

// While the server has a backlog (here: every acknowledgement 15 ms away behind a delaying
// proxy), new epochs wait for the next acknowledgement and then go out packed; the stream still
// holds every epoch once, in order, and the follower applies and checks each one.
TEST_F(ReplicationTest, BacklogGoesOutPackedAndTheFollowerChecksEveryEpoch) {
  TempDir dir;
  DelayProxy proxy(server_.port(), 15);
  ReplicationOptions o;
  o.pack_in_flight = 1;
  ASSERT_TRUE(
      Lead(dir.Sub("run.tlog"), fmt::format("nats://127.0.0.1:{}/S40", proxy.port()), o).ok());
  BusWorkload w(40);
  w.Setup();
  Run(w, 150);
  const Epoch last = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(last).ok());
  const ReplicationStats rs = repl_->stats();
  EXPECT_GE(rs.packed_messages, 1u);
  EXPECT_LT(rs.messages, last);
  EXPECT_GT(rs.packed_epochs, rs.packed_messages);
  EndSession();
  EXPECT_EQ(CompleteEpochsInStream(server_.server(), "S40"), Iota(1, last));
  auto f = FollowTo(server_.Url("S40"), last);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->stats().epochs_applied, last);
  EXPECT_EQ(f->stats().hashes_checked, last);  // the hash of every packed epoch, not only the last
  EXPECT_EQ(f->stats().messages, rs.messages);
  EXPECT_EQ(f->state().Hash(), Replayed(dir.Sub("run.tlog")).Hash());
}

// Data messages are published without cnats's per-message timeout (docs/Replication.md,
// "Timeouts and lost acknowledgements"). Acknowledgements lost in a network cut, of epochs the
// server stored, are covered by a later acknowledgement: the publisher stops awaiting them
// (DropLostAcks) without a recovery, and the stream holds every epoch once.
TEST_F(ReplicationTest, AcknowledgementsLostInACutAreCoveredByLaterOnesWithoutARecovery) {
  TempDir dir;
  DelayProxy proxy(server_.port(), 200);  // answers spend 200 ms in the proxy: a cut drops them
  ReplicationOptions o;
  o.pack_in_flight = 0;      // one message per epoch: the stream's last sequence counts epochs
  o.ack_timeout_ms = 20000;  // no recovery by timeout within the test
  o.lease_ttl_ms = 60000;    // no lease renewal through the cut
  ASSERT_TRUE(
      Lead(dir.Sub("run.tlog"), fmt::format("nats://127.0.0.1:{}/S42", proxy.port()), o).ok());
  BusWorkload w(42);
  w.Setup();
  Run(w, 20);
  const Epoch before_cut = log_->LogEpoch(current_epoch());
  // Once the server holds them all (read directly, not through the proxy), the answers of the
  // last ones are still in the proxy: cut.
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, server_.server().c_str()), NATS_OK);
  ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  std::uint64_t stored = 0;
  for (int i = 0; i < 1000 && stored < before_cut; ++i) {
    jsStreamInfo* si = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(&si, js, "S42", nullptr, &err) == NATS_OK) {
      stored = si->State.LastSeq;
      jsStreamInfo_Destroy(si);
    }
    if (stored < before_cut) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  ASSERT_EQ(stored, before_cut);
  proxy.Cut();
  EXPECT_LT(repl_->stats().acked_epoch, before_cut);  // their answers were lost
  // Publish again once cnats has seen the cut and reconnected: a message written into the cut
  // connection would get no answer at all, which is the other case (a recovery after
  // ack_timeout_ms, ServerKilledAndRestartedLosesAndDuplicatesNothing).
  std::this_thread::sleep_for(std::chrono::seconds(2));
  Run(w, 20);
  const Epoch last = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(last, 30000).ok()) << repl_->health().ToString();
  const ReplicationStats rs = repl_->stats();
  EXPECT_GE(rs.lost_acks_dropped, 1u);
  EXPECT_EQ(rs.recoveries, 0u);
  EndSession();
  EXPECT_EQ(CompleteEpochsInStream(server_.server(), "S42"), Iota(1, last));
  auto f = FollowTo(server_.Url("S42"), last);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->state().Hash(), Replayed(dir.Sub("run.tlog")).Hash());
}

// A leader republishing what the stream lacks sends it packed (at most max_epochs_per_message
// epochs and a chunk's bytes per message; an epoch larger than a chunk alone, chunked). A replica
// whose last epoch lies inside a packed message resumes there: the epochs it has are duplicates.
TEST_F(ReplicationTest, RepublishedEpochsArePackedAndAReplicaResumesInsideAPackedMessage) {
  TempDir dir, replica;
  ReplicationOptions o;
  o.max_epochs_per_message = 16;
  o.max_chunk_bytes = 4000;
  ASSERT_TRUE(Lead(dir.Sub("run.tlog"), server_.Url("S41"), o).ok());
  BusWorkload w(41, 64 << 10);
  w.Setup();  // whole pages: several chunks
  Run(w, 20);
  const Epoch k = log_->LogEpoch(current_epoch());
  ASSERT_TRUE(repl_->WaitAcked(k).ok());
  FollowOptions fo;
  fo.out_dir = replica.Sub("replica.tlog");
  {
    auto f = FollowTo(server_.Url("S41"), k, fo);
    ASSERT_TRUE(f);
  }
  ASSERT_TRUE(repl_->Close().ok());
  repl_.reset();
  // Logged while not replicating: small epochs with large ones among them.
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(w.Step(i % 20 == 7 ? 9000 : 64).ok());
  const Epoch last = log_->LogEpoch(current_epoch());
  // The whole history again, to a new stream: packed from epoch 1 on, so epoch k + 1 is inside
  // a packed message unless k is a multiple of 16.
  auto r = Replicate(log_, server_.Url("S42"), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  repl_ = *r;
  ASSERT_TRUE(repl_->WaitAcked(last).ok());
  const ReplicationStats rs = repl_->stats();
  EXPECT_EQ(rs.republished, last);
  EXPECT_GE(rs.packed_messages, 4u);
  EndSession();
  EXPECT_EQ(CompleteEpochsInStream(server_.server(), "S42"), Iota(1, last));
  std::vector<repl::ChunkMeta> metas;
  (void)StreamPayloads(server_.server(), "S42", &metas);
  bool chunked = false, inside = false;
  for (const repl::ChunkMeta& m : metas) {
    EXPECT_LE(m.count, 16u);
    chunked = chunked || !m.last;
    inside = inside || (m.epoch <= k && m.last_epoch() > k);
  }
  EXPECT_TRUE(chunked);  // the large epochs went alone, in chunks
  ASSERT_TRUE(inside) << "epoch " << k << " ends a message: the resume case is not exercised";
  auto f = FollowTo(server_.Url("S42"), last, fo);
  ASSERT_TRUE(f);
  EXPECT_GE(f->stats().duplicates, 1u);
  EXPECT_EQ(f->stats().epochs_applied, last - k);
  f.reset();
  EXPECT_EQ(Replayed(replica.Sub("replica.tlog")).Hash(), Replayed(dir.Sub("run.tlog")).Hash());
}

TEST_F(ReplicationTest, ServerKilledAndRestartedLosesAndDuplicatesNothing) {
  TempDir dir;
  ReplicationOptions o;
  o.ack_timeout_ms = 300;
  o.lease_ttl_ms = 30000;
  o.pack_in_flight = 1;  // packed messages in flight when the server dies, and in the recovery
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
  EXPECT_GE(repl_->stats().packed_messages, 1u);
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
  // The stream's second and last messages (packing may have put several epochs in one).
  jsStreamInfo* si = nullptr;
  ASSERT_EQ(js_GetStreamInfo(&si, js, "S30", nullptr, &err), NATS_OK);
  const std::uint64_t last_seq = si->State.LastSeq;
  jsStreamInfo_Destroy(si);
  ASSERT_GE(last_seq, 3u);
  for (std::uint64_t seq : {std::uint64_t{2}, last_seq}) {
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
  // Everything before the message that holds the checkpoint's successor goes; that message stays
  // whole, with the epochs packed into it before the successor (when the publisher fell behind,
  // as on a loaded machine, a message holds several epochs).
  const Epoch first_kept = FirstEpochOfMessageHolding(server_.server(), "S13", *ckpt + 1);
  ASSERT_NE(first_kept, 0u);
  ASSERT_LE(first_kept, *ckpt + 1);
  // Retention runs on the publisher's thread: wait until the stream starts there (a purge that
  // went past it never gets there, and the comparison below fails).
  std::vector<Epoch> kept;
  for (int i = 0; i < 500; ++i) {
    kept = CompleteEpochsInStream(server_.server(), "S13");
    if (!kept.empty() && kept.front() >= first_kept) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(kept, Iota(first_kept, last));  // the checkpoint's successor is older than 1 ms: kept
  if (first_kept > 1) EXPECT_GE(repl_->stats().purges, 1u);
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
