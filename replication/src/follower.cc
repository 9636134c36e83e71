// Follower: checkpoint or replica log, then epoch groups from the stream through
// Replayer::ApplyGroup, a state-hash check per epoch, and optionally a replica log.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <span>
#include <thread>

#include <fmt/format.h>

#include "mmsb/checkpoint.h"
#include "mmsb/replication.h"

#include "nats_util.h"

namespace mmsb {

using repl::NatsPtr;
using Clock = std::chrono::steady_clock;

class Follower::Impl {
 public:
  // The connection is closed before the subscriptions are dropped (repl::Connection explains).
  ~Impl() {
    conn.Close();
    sub.reset();
    retired.clear();
  }

  ReplicaUrl url;
  FollowOptions opts;
  repl::Connection conn;
  NatsPtr<natsSubscription> sub;
  // Replaced subscriptions whose unsubscribe could not be settled (the server was away): kept
  // until the connection is closed.
  std::vector<NatsPtr<natsSubscription>> retired;
  std::unique_ptr<Replayer> replayer;
  std::unique_ptr<LogWriter> writer;  // the replica log, when out_dir is set
  mutable std::mutex mu;              // guards the replayer's state for Snapshot()
  FollowStats st;
  std::uint64_t max_token = 0;
  // The epoch group being assembled from its chunks.
  bool assembling = false;
  std::uint8_t asm_version = 0;  // the wire format of the epoch being assembled
  Epoch asm_epoch = 0;
  std::uint32_t next_chunk = 0;
  std::vector<std::uint8_t> buf;
  Clock::time_point last_check = Clock::now();

  Epoch applied() const { return replayer->state().epoch; }

  Status LoadCheckpoint(Epoch* epoch_out) {
    natsMsg* hm = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = js_GetLastMsg(&hm, conn.js.get(), repl::CkptStream(url.stream).c_str(),
                                 repl::CkptHead(url.stream).c_str(), nullptr, &err);
    if (s == NATS_NOT_FOUND) {
      *epoch_out = 0;
      return Status::Ok();
    }
    if (s != NATS_OK) return repl::NatsError(s, "reading the checkpoint head");
    NatsPtr<natsMsg> head(hm);
    auto get = [&](const char* key) {
      const char* v = nullptr;
      natsMsgHeader_Get(hm, key, &v);
      return repl::ParseU64(v);
    };
    auto epoch = get(repl::kHdrCkptEpoch), first = get(repl::kHdrCkptFirst),
         chunks = get(repl::kHdrCkptChunks);
    if (!epoch || !first || !chunks) return Corruption("checkpoint head without its headers");
    std::vector<std::uint8_t> bytes;
    for (std::uint64_t i = 0; i < *chunks; ++i) {
      natsMsg* m = nullptr;
      s = js_GetMsg(&m, conn.js.get(), repl::CkptStream(url.stream).c_str(), *first + i, nullptr,
                    &err);
      if (s != NATS_OK) return repl::NatsError(s, "reading a checkpoint chunk");
      NatsPtr<natsMsg> msg(m);
      if (repl::CkptSubject(url.stream, *epoch) != natsMsg_GetSubject(m)) {
        return Corruption(fmt::format("checkpoint chunk {} is on subject '{}'", *first + i,
                                      natsMsg_GetSubject(m)));
      }
      const auto* d = reinterpret_cast<const std::uint8_t*>(natsMsg_GetData(m));
      bytes.insert(bytes.end(), d, d + natsMsg_GetDataLength(m));
    }
    // LoadCheckpoint reads files: stage it in a private temporary one.
    const auto path = std::filesystem::temp_directory_path() /
                      fmt::format("mmsb-follow-{}-{}.ckpt", ::getpid(), *epoch);
    {
      std::ofstream out(path, std::ios::binary);
      out.write(reinterpret_cast<const char*>(bytes.data()),
                static_cast<std::streamsize>(bytes.size()));
      if (!out.good()) return Status(StatusCode::kIO, fmt::format("writing '{}'", path.string()));
    }
    auto state = mmsb::LoadCheckpoint(path.string());
    std::error_code ec;
    std::filesystem::remove(path, ec);
    if (!state.ok()) return state.status();
    replayer = Replayer::FromState(std::move(*state));
    *epoch_out = *epoch;
    return Status::Ok();
  }

  Status Position() {
    bool resumed = false;
    if (!opts.out_dir.empty()) {
      LogOptions lo;
      lo.durability = Durability::kNone;  // the stream is the durable copy; a crash resumes
      auto w = LogWriter::Open(opts.out_dir, lo);
      if (!w.ok()) return w.status();
      writer = std::move(*w);
      if (writer->last_epoch() > 0) {
        auto r = Replayer::Open(opts.out_dir);
        if (!r.ok()) return r.status();
        auto e = (*r)->AdvanceTo(kLatestEpoch);
        if (!e.ok()) return e.status();
        replayer = std::move(*r);
        resumed = true;
      }
    }
    auto tail = repl::ReadTail(conn.js.get(), url.stream);
    if (!tail.ok()) return tail.status();
    if (!resumed) {
      // A replica log needs the whole history; an in-memory follower starts from the newest
      // checkpoint.
      Epoch ckpt = 0;
      if (opts.out_dir.empty()) MMSB_RETURN_IF_ERROR(LoadCheckpoint(&ckpt));
      st.checkpoint_epoch = ckpt;
      if (!replayer) replayer = Replayer::FromState(LogState{});
    }
    return Subscribe(*tail);
  }

  // Drops the current subscription without cnats 3.4's use-after-free (repl::Connection).
  void DropSubscription() {
    if (!sub) return;
    if (repl::UnsubscribeAndSettle(conn.nc.get(), sub.get())) {
      sub.reset();
    } else {
      retired.push_back(std::move(sub));
    }
  }

  Status Subscribe(const repl::StreamTail& tail) {
    DropSubscription();
    assembling = false;
    auto start = repl::FirstSeqAfter(conn.js.get(), url.stream, applied(), tail);
    if (!start.ok()) return start.status();
    if (tail.last && *start <= tail.last_seq) {
      // The first stored epoch after ours must be the next one.
      natsMsg* m = nullptr;
      jsErrCode err = static_cast<jsErrCode>(0);
      if (js_GetMsg(&m, conn.js.get(), url.stream.c_str(), *start, nullptr, &err) == NATS_OK) {
        NatsPtr<natsMsg> msg(m);
        repl::ChunkMeta meta;
        MMSB_RETURN_IF_ERROR(repl::ReadChunkMeta(m, &meta));
        if (meta.epoch > applied() + 1) {  // a packed message may start at or before it
          return FailedPrecondition(fmt::format(
              "stream '{}' no longer holds epoch {} (its oldest is {}: retention dropped what "
              "the checkpoint covers). {}",
              url.stream, applied() + 1, meta.epoch,
              opts.out_dir.empty() ? "Restart the follower to load the newest checkpoint"
                                   : "Start a new replica directory"));
        }
      }
    }
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = url.stream.c_str();
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = std::max<std::uint64_t>(*start, 1);
    natsSubscription* raw = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = js_SubscribeSync(&raw, conn.js.get(), repl::DataSubject(url.stream).c_str(),
                                    nullptr, &so, &err);
    if (s != NATS_OK) return repl::NatsError(s, fmt::format("subscribing to '{}'", url.stream));
    sub.reset(raw);
    natsSubscription_SetPendingLimits(raw, -1, -1);
    return Status::Ok();
  }

  Status WriteReplica(Epoch epoch, std::span<const std::uint8_t> group) {
    auto rd = LogReader::OpenBuffer(group, replica_log_id, epoch - 1);
    if (!rd.ok()) return rd.status();
    LogBatch batch = writer->NewBatch();
    LogEntry e;
    for (;;) {
      auto r = (*rd)->Next(&e);
      if (!r.ok()) return r.status();
      if (!*r) break;
      if (e.raw_type == static_cast<std::uint8_t>(LogRecordType::kCommit)) {
        auto c = writer->Commit(batch, e.commit.epoch, e.commit.unix_nanos);
        return c.ok() ? Status::Ok() : c.status();
      }
      batch.AddRaw(e.raw_type, e.payload);
    }
    return Corruption(fmt::format("epoch {}: no commit record", epoch));
  }
  std::uint64_t replica_log_id = 0;

  // Applies the whole group of `epoch` (log records, the commit record last), checks the
  // leader's state hash after it when `hash` is set, and records it in the replica log.
  Status ApplyGroup(Epoch epoch, std::uint64_t log_id, std::optional<std::uint64_t> hash,
                    std::span<const std::uint8_t> group) {
    if (epoch <= applied()) {
      ++st.duplicates;
      return Status::Ok();
    }
    if (epoch != applied() + 1) {
      return Corruption(fmt::format("stream '{}': epoch {} arrived after epoch {} (a gap)",
                                    url.stream, epoch, applied()));
    }
    {
      std::lock_guard<std::mutex> l(mu);
      auto e = replayer->ApplyGroup(group, log_id);
      if (!e.ok()) return e.status();
      if (*e != epoch) {
        std::string why = replayer->report().problems.empty()
                              ? std::string("no commit record")
                              : replayer->report().problems.back().ToString();
        return Corruption(
            fmt::format("stream '{}': epoch {} was not applied: {}", url.stream, epoch, why));
      }
      if (opts.check_hash && hash) {
        ++st.hashes_checked;
        const std::uint64_t h = replayer->ReplicaHash();  // incremental: O(changed bytes)
        if (opts.full_hash_every != 0 && st.hashes_checked % opts.full_hash_every == 0) {
          // The incremental value rests on the tracked changes; a full pass now and then checks
          // the tracking itself.
          ++st.full_hashes;
          if (const std::uint64_t full = replayer->state().ReplicaHash(); full != h) {
            ++st.divergences;
            return Corruption(fmt::format(
                "stream '{}': after epoch {} the follower's incremental state hash {} differs "
                "from a full pass ({}): a replay bug; stopped before recording the epoch",
                url.stream, epoch, repl::Hex16(h), repl::Hex16(full)));
          }
        }
        if (h != *hash) {
          ++st.divergences;
          return Corruption(fmt::format(
              "stream '{}': state hash after epoch {} is {}, the leader's was {}: the replica "
              "diverged; stopped before recording it",
              url.stream, epoch, repl::Hex16(h), repl::Hex16(*hash)));
        }
      }
      st.epoch = epoch;
      ++st.epochs_applied;
    }
    if (writer) {
      replica_log_id = log_id;
      MMSB_RETURN_IF_ERROR(WriteReplica(epoch, group));
    }
    if (opts.on_epoch) opts.on_epoch(replayer->state(), epoch);
    return Status::Ok();
  }

  // The store time the server put in a delivered message (0 when unreadable): tracing only.
  static std::int64_t StoredAt(natsMsg* m) {
    jsMsgMetaData* md = nullptr;  // the store time is in the reply subject
    std::int64_t stored = 0;
    if (natsMsg_GetMetaData(&md, m) == NATS_OK) {
      stored = md->Timestamp;
      jsMsgMetaData_Destroy(md);
    }
    return stored;
  }

  // A packed message (wire format 3): whole epochs meta.epoch.., each applied in order with its
  // own hash; those already applied are duplicates. A partial epoch being assembled is dropped
  // (its publisher stopped mid-epoch and a successor packed from there).
  Status HandlePacked(natsMsg* m, const repl::ChunkMeta& meta) {
    if (assembling) ++st.partial_dropped;
    assembling = false;
    const std::uint8_t* d = repl::ChunkData(m, meta);
    const std::int64_t stored = opts.on_received ? StoredAt(m) : 0;
    for (std::uint32_t i = 0; i < meta.count; ++i) {
      const repl::PackEntry pe = repl::ReadPackEntry(m, i);
      const Epoch epoch = meta.epoch + i;
      if (epoch > applied()) {
        if (opts.on_received) opts.on_received(epoch, stored);
        MMSB_RETURN_IF_ERROR(ApplyGroup(epoch, meta.log_id, pe.hash, {d, pe.length}));
      } else {
        ++st.duplicates;
      }
      d += pe.length;
    }
    return Status::Ok();
  }

  Status Handle(natsMsg* m) {
    repl::ChunkMeta meta;
    if (Status s = repl::ReadChunkMeta(m, &meta, assembling && asm_version == 1); !s.ok()) {
      return Corruption(fmt::format("stream '{}': {}", url.stream, s.message()));
    }
    ++st.messages;
    const std::size_t len = repl::ChunkLength(m, meta);
    st.bytes += len;
    if (meta.token < max_token) return Status::Ok();  // a fenced leader's message
    max_token = meta.token;
    if (meta.packed()) return HandlePacked(m, meta);
    if (meta.epoch <= applied()) {
      if (meta.last) ++st.duplicates;
      assembling = false;
      return Status::Ok();
    }
    const std::uint8_t* d = repl::ChunkData(m, meta);
    if (meta.chunk == 0) {
      if (assembling) ++st.partial_dropped;  // its publisher stopped mid-epoch
      buf.assign(d, d + len);
      assembling = true;
      asm_version = meta.version;
      asm_epoch = meta.epoch;
      next_chunk = 1;
    } else if (assembling && meta.epoch == asm_epoch && meta.chunk == next_chunk) {
      buf.insert(buf.end(), d, d + len);
      ++next_chunk;
    } else {
      // A continuation without its start (we joined mid-epoch): wait for the epoch from chunk 0.
      if (assembling) ++st.partial_dropped;
      assembling = false;
      return Status::Ok();
    }
    if (!meta.last) return Status::Ok();
    assembling = false;
    if (opts.on_received) opts.on_received(meta.epoch, StoredAt(m));
    return ApplyGroup(meta.epoch, meta.log_id, meta.hash, buf);
  }

  Expected<Epoch> Poll(std::int64_t timeout_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      natsMsg* m = nullptr;
      natsStatus s = sub ? natsSubscription_NextMsg(&m, sub.get(), std::max<std::int64_t>(left, 1))
                         : NATS_TIMEOUT;
      if (s == NATS_OK) {
        NatsPtr<natsMsg> msg(m);
        MMSB_RETURN_IF_ERROR(Handle(m));
        int pending = 0;
        if (natsSubscription_GetPending(sub.get(), &pending, nullptr) == NATS_OK && pending > 0) {
          continue;
        }
        if (Clock::now() < deadline && !assembling) break;  // caught up
        continue;
      }
      if (s != NATS_TIMEOUT) {
        // The consumer went away (server restart): subscribe again after what we applied.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (Status r = Resubscribe(); !r.ok() && r.code() != StatusCode::kIO) return r;
      } else if (Clock::now() - last_check > std::chrono::seconds(1)) {
        // Nothing arrived for a while: if the stream has more than we applied, the consumer is
        // stale (it does not survive every server restart). Subscribe again.
        last_check = Clock::now();
        auto tail = repl::ReadTail(conn.js.get(), url.stream);
        if (tail.ok() && tail->complete_epoch() > applied()) {
          if (Status r = Subscribe(*tail); !r.ok() && r.code() != StatusCode::kIO) return r;
        }
      }
      if (Clock::now() >= deadline) break;
    }
    if (writer) MMSB_RETURN_IF_ERROR(writer->Flush());
    return applied();
  }

  Status Resubscribe() {
    auto tail = repl::ReadTail(conn.js.get(), url.stream);
    if (!tail.ok()) return tail.status();
    return Subscribe(*tail);
  }
};

Follower::Follower(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Follower::~Follower() {
  if (impl_ && impl_->writer) (void)impl_->writer->Close();
}

Expected<std::unique_ptr<Follower>> Follower::Open(const std::string& url,
                                                   const FollowOptions& options) {
  auto u = ParseReplicaUrl(url);
  if (!u.ok()) return u.status();
  auto impl = std::make_unique<Impl>();
  impl->url = *u;
  impl->opts = options;
  auto c = repl::Connect(impl->url.server);
  if (!c.ok()) return c.status();
  impl->conn = std::move(*c);
  MMSB_RETURN_IF_ERROR(impl->Position());
  impl->st.epoch = impl->applied();
  return std::unique_ptr<Follower>(new Follower(std::move(impl)));
}

Expected<Epoch> Follower::Poll(std::int64_t timeout_ms) { return impl_->Poll(timeout_ms); }

Expected<Epoch> Follower::RunUntil(Epoch epoch, std::int64_t timeout_ms) {
  auto last_progress = Clock::now();
  Epoch last = impl_->applied();
  while (impl_->applied() < epoch) {
    auto e = impl_->Poll(100);
    if (!e.ok()) return e.status();
    if (*e != last) {
      last = *e;
      last_progress = Clock::now();
    } else if (Clock::now() - last_progress > std::chrono::milliseconds(timeout_ms)) {
      break;
    }
  }
  return impl_->applied();
}

const LogState& Follower::state() const { return impl_->replayer->state(); }

LogState Follower::Snapshot() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->replayer->state();
}

Epoch Follower::epoch() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->st.epoch;
}

FollowStats Follower::stats() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->st;
}

}  // namespace mmsb
