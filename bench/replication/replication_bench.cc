// Replication figures (bench/run replication; docs/Replication.md). Starts its own nats-server
// on a free loopback port and prints FIGURE lines:
//   replication.throughput_vs_raw_publish  epochs/s through a Replicator (1 KiB of deltas per
//       epoch, async window, until all acknowledged) / raw cnats js_PublishAsync of the same
//       payloads, measured in the same run on the same server
//   replication.follow_lag_p99_ms          commit on the leader -> applied on a follower, p99,
//       leader paced at 10k epochs/s
//   replication.divergences                state-hash mismatches over >= 100k epochs with 3
//       follower restarts and 1 server restart (plus 1 if the final states differ)
//   replication.lost_or_duplicated_epochs  complete epochs missing or repeated in the stream
//       over the same run
// Timings go here, never in tests. MMSB_BENCH_QUICK=1 shrinks the runs (a smoke run).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nats/nats.h>

#include "mmsb/mmsb.h"
#include "mmsb/replication.h"

#include "bus_workload.h"
#include "log_test_util.h"
#include "nats_fixture.h"

namespace mmsb {
namespace {

using Clock = std::chrono::steady_clock;
using testing::BusWorkload;
using testing::NatsServer;
using testing::TempDir;

const bool kQuick = std::getenv("MMSB_BENCH_QUICK") != nullptr;

testing::NatsServer* g_server = nullptr;  // stopped by Die(): no orphan server

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "replication_bench: %s\n", what.c_str());
  if (g_server != nullptr) g_server->Stop();
  std::exit(1);
}

template <typename T>
T Must(Expected<T> e, const char* what) {
  if (!e.ok()) Die(std::string(what) + ": " + e.status().ToString());
  return std::move(*e);
}
void Must(const Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.ToString());
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The groups a leader logs for `epochs` epochs of ~`bytes` changed bytes each.
struct Recorded : LogGroupObserver {
  std::vector<std::vector<std::uint8_t>> records;
  std::vector<std::uint64_t> hashes;
  std::uint64_t log_id = 0;
  Status OnGroup(const LoggedGroup& g) override {
    records.emplace_back(g.records.begin(), g.records.end());
    hashes.push_back(g.state_hash);
    log_id = g.log_id;
    return Status::Ok();
  }
};

double RawPublish(const NatsServer& server, const std::string& stream,
                  const std::vector<std::vector<std::uint8_t>>& payloads) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  if (natsConnection_ConnectTo(&nc, server.server().c_str()) != NATS_OK) Die("raw connect");
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = 4096;
  natsConnection_JetStream(&js, nc, &jo);
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = stream.c_str();
  const std::string subject = stream + ".log";
  const char* subjects[1] = {subject.c_str()};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  jsStreamInfo* si = nullptr;
  jsErrCode err;
  if (js_AddStream(&si, js, &cfg, nullptr, &err) != NATS_OK) Die("raw stream");
  jsStreamInfo_Destroy(si);
  const auto t0 = Clock::now();
  for (const auto& p : payloads) {
    if (js_PublishAsync(js, subject.c_str(), p.data(), static_cast<int>(p.size()), nullptr) !=
        NATS_OK) {
      Die("raw publish");
    }
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 60000;
  if (js_PublishAsyncComplete(js, &po) != NATS_OK) Die("raw complete");
  const double s = Seconds(Clock::now() - t0);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return static_cast<double>(payloads.size()) / s;
}

int g_round = 0;  // MMSB_BENCH_ROUNDS rounds of the throughput and lag figures: fresh streams

void Throughput(NatsServer& server) {
  const int epochs = kQuick ? 2000 : 20000;
  TempDir dir;
  Recorded rec;
  Must(start(), "start");
  {
    auto log = Must(AttachLog(dir.Sub("record.tlog"), {Durability::kNone}), "log");
    log->SetGroupObserver(std::shared_ptr<Recorded>(&rec, [](Recorded*) {}), true);
    BusWorkload w(1, 64 << 10);
    w.Setup();
    for (int i = 0; i < epochs; ++i) Must(w.Step(1024), "commit");
    Must(log->Close(), "close");
  }
  stop();
  // The same payloads through the Replicator (its queue, chunking, headers, expected last
  // sequence, acknowledgements), and raw; interleaved twice, best of each.
  double repl_best = 0, raw_best = 0;
  for (int round = 0; round < 2; ++round) {
    TempDir empty;
    auto sink = Must(LogSink::Open(empty.Sub("empty.tlog")), "empty log");
    const std::string stream = fmt::format("TP{}_{}", g_round, round);
    auto r = Must(Replicate(sink, server.Url(stream)), "replicate");
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < rec.records.size(); ++i) {
      LoggedGroup g;
      g.epoch = i + 1;
      g.log_id = rec.log_id;
      g.records = rec.records[i];
      g.state_hash = rec.hashes[i];
      Must(r->OnGroup(g), "OnGroup");
    }
    Must(r->WaitAcked(rec.records.size(), 120000), "acks");
    repl_best = std::max(repl_best, rec.records.size() / Seconds(Clock::now() - t0));
    Must(r->Close(), "close");
    (void)sink->Close();
    raw_best = std::max(raw_best,
                        RawPublish(server, fmt::format("RAW{}_{}", g_round, round), rec.records));
  }
  std::fprintf(stderr, "replication: %.0f epochs/s, raw async publish %.0f msgs/s (%zu B avg)\n",
               repl_best, raw_best, [&] {
                 std::size_t n = 0;
                 for (auto& p : rec.records) n += p.size();
                 return n / rec.records.size();
               }());
  std::printf("FIGURE replication.throughput_vs_raw_publish %.3f x\n", repl_best / raw_best);
}

void Lag(NatsServer& server) {
  const int epochs = kQuick ? 3000 : 20000;
  const double rate = 10000;  // epochs/s
  TempDir dir;
  Must(start(), "start");
  auto log = Must(AttachLog(dir.Sub("lag.tlog"), {Durability::kNone}), "log");
  const std::string stream = fmt::format("LAG{}", g_round);
  auto r = Must(Replicate(log, server.Url(stream)), "replicate");
  BusWorkload w(2, 16 << 10);
  w.Setup();
  Must(w.Step().status(), "first commit");
  const Epoch first = log->LogEpoch(current_epoch());
  std::vector<Clock::time_point> committed(first + epochs + 1), applied(first + epochs + 1);
  FollowOptions fo;
  fo.check_hash = true;
  fo.on_epoch = [&](const LogState&, Epoch e) {
    if (e < applied.size()) applied[e] = Clock::now();
  };
  auto f = Must(Follower::Open(server.Url(stream), fo), "follower");
  std::atomic<Epoch> target{~Epoch{0}};
  std::thread follower([&] {
    while (f->epoch() < target.load()) {
      auto e = f->Poll(20);
      if (!e.ok()) Die(e.status().ToString());
    }
  });
  const auto t0 = Clock::now();
  for (int i = 0; i < epochs; ++i) {
    const auto slot = t0 + std::chrono::nanoseconds(static_cast<std::int64_t>(i * 1e9 / rate));
    // Sleep, not spin: on the 2-core machine the figure is defined for, a pacing loop that spins
    // takes a whole core from the server and the follower whose lag is being measured.
    std::this_thread::sleep_until(slot);
    w.Mutate(64);
    const auto at = Clock::now();
    Must(commit().status(), "commit");
    committed[log->LogEpoch(current_epoch())] = at;
  }
  const double achieved = epochs / Seconds(Clock::now() - t0);
  target = first + epochs;
  follower.join();
  std::vector<double> lags;
  for (Epoch e = first + 1; e <= first + epochs; ++e) {
    lags.push_back(std::chrono::duration<double, std::milli>(applied[e] - committed[e]).count());
  }
  std::sort(lags.begin(), lags.end());
  const double p50 = lags[lags.size() / 2];
  const double p99 = lags[lags.size() * 99 / 100];
  std::fprintf(stderr, "lag at %.0f epochs/s (asked %.0f): p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
               achieved, rate, p50, p99, lags.back());
  Must(r->Close(), "close");
  (void)log->Close();
  stop();
  std::printf("FIGURE replication.follow_lag_p99_ms %.3f ms\n", p99);
}

// Complete epochs in the stream, scanned with an ordered consumer: how many are missing or
// repeated against 1..last.
std::uint64_t LostOrDuplicated(NatsServer& server, const std::string& stream, Epoch last) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  if (natsConnection_ConnectTo(&nc, server.server().c_str()) != NATS_OK) Die("scan connect");
  natsConnection_JetStream(&js, nc, nullptr);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Ordered = true;
  natsSubscription* sub = nullptr;
  jsErrCode err;
  if (js_SubscribeSync(&sub, js, (stream + ".log").c_str(), nullptr, &so, &err) != NATS_OK) {
    Die("scan subscribe");
  }
  std::vector<std::uint32_t> seen(last + 2, 0);
  std::uint64_t stray = 0;
  for (;;) {
    natsMsg* m = nullptr;
    if (natsSubscription_NextMsg(&m, sub, 2000) != NATS_OK) break;
    const char* l = nullptr;
    const char* e = nullptr;
    natsMsgHeader_Get(m, "Mmsb-Last", &l);
    natsMsgHeader_Get(m, "Mmsb-Epoch", &e);
    if (l != nullptr && std::string(l) == "1" && e != nullptr) {
      const Epoch ep = std::strtoull(e, nullptr, 10);
      if (ep >= 1 && ep <= last) {
        ++seen[ep];
      } else {
        ++stray;
      }
    }
    natsMsg_Destroy(m);
  }
  natsSubscription_Destroy(sub);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  std::uint64_t bad = stray;
  for (Epoch e = 1; e <= last; ++e) bad += seen[e] == 1 ? 0 : (seen[e] == 0 ? 1 : seen[e] - 1);
  return bad;
}

void Faults(NatsServer& server) {
  const int epochs = kQuick ? 10000 : 100000;
  TempDir dir, replica;
  Must(start(), "start");
  auto log = Must(AttachLog(dir.Sub("faults.tlog"), {Durability::kNone}), "log");
  ReplicationOptions ro;
  ro.ack_timeout_ms = 300;
  ro.lease_ttl_ms = 30000;
  auto r = Must(Replicate(log, server.Url("FAULTS"), ro), "replicate");
  BusWorkload w(3, 4096);
  w.Setup();
  FollowOptions fo;
  fo.out_dir = replica.Sub("replica.tlog");
  std::uint64_t divergences = 0;
  std::atomic<bool> leader_done{false};
  std::atomic<Epoch> leader_last{0};
  std::atomic<int> follower_restarts{0};
  std::thread follower([&] {
    // Restarted 3 times: at a quarter, half and three quarters of the run.
    const Epoch quarter = epochs / 4;
    for (int round = 0; round < 4; ++round) {
      // A follower that cannot reach the server (it is restarting) tries again, as a deployed
      // one would; only a divergence or corruption counts.
      std::unique_ptr<Follower> f;
      while (!f) {
        auto o = Follower::Open(server.Url("FAULTS"), fo);
        if (o.ok()) {
          f = std::move(*o);
        } else if (o.status().code() == StatusCode::kIO) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        } else {
          std::fprintf(stderr, "follower: %s\n", o.status().ToString().c_str());
          ++divergences;
          return;
        }
      }
      const Epoch stop_at = round < 3 ? quarter * (round + 1) : ~Epoch{0};
      for (;;) {
        auto e = f->Poll(50);
        if (!e.ok() && e.status().code() == StatusCode::kIO) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          continue;
        }
        if (!e.ok()) {
          std::fprintf(stderr, "follower: %s\n", e.status().ToString().c_str());
          ++divergences;
          return;
        }
        if (*e >= stop_at) break;
        if (round == 3 && leader_done && *e >= leader_last) break;
      }
      divergences += f->stats().divergences;
      if (round < 3) ++follower_restarts;
    }
  });
  for (int i = 0; i < epochs; ++i) {
    if (i == epochs / 2) {  // the server restart
      server.Kill9();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (!server.Start()) Die("server restart");
    }
    Must(w.Step(64).status(), "commit");
  }
  const Epoch last = log->LogEpoch(current_epoch());
  Must(r->WaitAcked(last, 120000), "acks");
  leader_last = last;
  leader_done = true;
  follower.join();
  Must(r->Close(), "close");
  Must(log->Close(), "close log");
  stop();
  const auto leader = Must(Replay(dir.Sub("faults.tlog")), "replay leader");
  const auto follower_state = Must(Replay(replica.Sub("replica.tlog")), "replay replica");
  if (follower_state.Hash() != leader.Hash()) ++divergences;
  const std::uint64_t bad = LostOrDuplicated(server, "FAULTS", last);
  std::fprintf(stderr,
               "faults: %llu epochs, %d follower restarts, 1 server restart, replica at %llu\n",
               static_cast<unsigned long long>(last), follower_restarts.load(),
               static_cast<unsigned long long>(follower_state.epoch));
  std::printf("FIGURE replication.divergences %llu count\n",
              static_cast<unsigned long long>(divergences));
  std::printf("FIGURE replication.lost_or_duplicated_epochs %llu count\n",
              static_cast<unsigned long long>(bad));
}

}  // namespace
}  // namespace mmsb

int main() {
  mmsb::testing::NatsServer server;
  if (!server.available()) {
    std::fprintf(stderr, "replication_bench: skipped: nats-server not found\n");
    return 0;
  }
  mmsb::g_server = &server;
  if (!server.Start()) mmsb::Die("nats-server did not start");
  // bench/run sets MMSB_BENCH_ROUNDS: that many samples of the throughput and lag figures (it
  // prints their median and spread); the fault run is long and counts, so it runs once.
  const char* rounds_env = std::getenv("MMSB_BENCH_ROUNDS");
  const int rounds = rounds_env != nullptr ? std::max(1, std::atoi(rounds_env)) : 1;
  for (mmsb::g_round = 0; mmsb::g_round < rounds; ++mmsb::g_round) {
    mmsb::Throughput(server);
    mmsb::Lag(server);
  }
  mmsb::Faults(server);
  return 0;
}
