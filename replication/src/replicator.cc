// Replicator: the publisher side (reconciliation with the local log, async publishing
// with expected-last-sequence, recovery, checkpoints, retention). The leader lease is lease.cc.
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "mmsb/replication.h"

#include "lease.h"
#include "nats_util.h"

namespace mmsb {

using repl::NatsPtr;
using Clock = std::chrono::steady_clock;

class Replicator::Impl {
 public:
  struct Item {
    Epoch epoch = 0;
    std::uint64_t log_id = 0;
    std::uint64_t hash = 0;
    bool has_hash = false;
    std::uint32_t start_chunk = 0;  // recovery resumes a partly stored epoch here
    std::shared_ptr<const std::vector<std::uint8_t>> bytes;  // shared: copies of an Item are cheap
  };
  struct CheckpointJob {
    Epoch epoch = 0;
    std::vector<std::uint8_t> bytes;
  };

  ReplicaUrl url;
  ReplicationOptions opts;
  std::shared_ptr<LogSink> log;
  repl::Connection conn;
  std::unique_ptr<repl::LeaderLease> lease;
  std::string owner;
  std::uint64_t token = 0;  // the lease's fencing token
  std::size_t chunk_bytes = 0;
  std::int64_t max_pending = 0;  // cnats's limit of unanswered asynchronous publishes
  std::string data_subject;      // "<S>.log"
  // One message's bytes while it is built, and the epochs being sent: used by whoever holds
  // `publishing`.
  std::vector<std::uint8_t> scratch;
  std::vector<Item> batch;
  // Data messages handed to cnats and not yet answered (acknowledged or refused). Only a hint
  // for packing (Backlogged): nothing correct depends on it, so it is an atomic counted without
  // mu, reset by Recover, and never taken below 0.
  std::atomic<std::int64_t> in_flight{0};

  mutable std::mutex mu;
  std::condition_variable cv;       // the worker waits here
  std::condition_variable done_cv;  // Enqueue (room in the window) and WaitAcked (acks) wait here
  bool worker_waiting = false;
  int done_waiters = 0;
  std::deque<Item> pending;  // not known to be stored, oldest first
  std::size_t sent = 0;      // pending[0, sent) were published in the current round
  std::deque<CheckpointJob> checkpoints;
  std::uint64_t last_seq = 0;  // the stream's last sequence as this publisher's messages make it
  Epoch acked = 0;
  Epoch queued = 0;
  bool need_recovery = false;
  bool stopping = false;
  // Someone (the committing thread in Enqueue, or the worker) is publishing data messages or
  // recovering: only one at a time, so messages reach cnats in the order of the sequences they
  // expect. Set and cleared under mu; the publishing itself runs without mu.
  bool publishing = false;
  Clock::time_point last_progress = Clock::now();
  Status error;
  ReplicationStats st;
  std::uint64_t bytes_since_checkpoint = 0;
  std::atomic<bool> want_checkpoint{false};
  Clock::time_point last_checkpoint_request = Clock::now();
  Clock::time_point next_retention = Clock::now();

  std::thread worker;

  static void OnAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<Impl*>(closure);
    repl::ChunkMeta meta;
    const bool ok = repl::ReadChunkMeta(msg, &meta).ok();
    natsMsg_Destroy(msg);
    for (std::int64_t n = self->in_flight.load(); n > 0;) {
      if (self->in_flight.compare_exchange_weak(n, n - 1)) break;
    }
    if (!ok) return;
    std::unique_lock<std::mutex> l(self->mu);
    if (pa != nullptr && !pa->Duplicate) {
      self->last_progress = Clock::now();
      if (meta.last) {
        self->MarkAcked(meta.last_epoch());
        if (self->opts.on_acked) {
          for (Epoch e = meta.epoch; e <= meta.last_epoch(); ++e) self->opts.on_acked(e);
        }
      }
    } else if (pae != nullptr || (pa != nullptr && pa->Duplicate)) {
      // Refused (wrong last sequence after a lost message, a timeout, a fenced leader) or
      // deduplicated: the stream, not this process, says what is stored. Re-read it.
      if (meta.last_epoch() > self->acked) self->need_recovery = true;
    }
    if (!self->publishing && self->sent == 0 && self->in_flight.load() > 0) self->DropLostAcks();
    if (self->done_waiters > 0) self->done_cv.notify_all();
    // Epochs held back while the server had a backlog go out now, packed (Enqueue), from this
    // thread when they can (ReleaseInline): no wake-up of the worker on the way.
    while (self->ReleaseInline()) self->PublishUnsent(l);
    const bool release =
        !self->publishing && self->sent < self->pending.size() && !self->Backlogged();
    if (self->worker_waiting && (self->need_recovery || release || !self->checkpoints.empty() ||
                                 (self->stopping && self->pending.empty()))) {
      self->cv.notify_one();
    }
  }

  // Requires mu. True while new epochs should wait and go out packed: enough messages are
  // unanswered (pack_in_flight) and some epoch is sent and unacknowledged, so an
  // acknowledgement (OnAck wakes the worker) or the stall timeout (the worker recovers) is
  // bound to come and release them.
  bool Backlogged() const {
    return opts.pack_in_flight != 0 && sent > 0 &&
           in_flight.load(std::memory_order_relaxed) >=
               static_cast<std::int64_t>(opts.pack_in_flight);
  }

  // Requires mu. True when epochs wait to be sent, nothing holds them back (nobody publishes or
  // must recover, no backlog) and cnats's acknowledgement thread (OnAck) may send them itself:
  // each goes in one message (none is chunked, none resumes a partly stored epoch), and the
  // messages cnats awaits stay far below its limit (max_pending), so the send can never stall
  // waiting for an acknowledgement that only this very thread could deliver.
  bool ReleaseInline() const {
    if (publishing || need_recovery || !error.ok() || sent >= pending.size() || Backlogged()) {
      return false;
    }
    const std::size_t unsent = pending.size() - sent;
    if (in_flight.load(std::memory_order_relaxed) + static_cast<std::int64_t>(unsent) + 1 >
        max_pending / 2) {
      return false;
    }
    for (std::size_t k = sent; k < pending.size(); ++k) {
      if (pending[k].start_chunk != 0 || pending[k].bytes->size() > chunk_bytes) return false;
    }
    return true;
  }

  // Requires mu, `publishing` clear and every sent epoch acknowledged (sent == 0). Messages
  // still counted in flight then are ones whose answer was lost (a reconnect dropped it after the
  // server stored them: a later acknowledgement covered their epochs). Without a MaxWait (Send)
  // cnats would keep them awaited forever and the in-flight count would hold packing back: drop
  // them. Nothing of ours is unanswered, and nobody can publish while mu is held, so nothing
  // awaited is dropped. (OnAck runs without cnats's lock, so taking it here under mu is safe.)
  void DropLostAcks() {
    natsMsgList lost{};
    if (js_PublishAsyncGetPendingList(&lost, conn.js.get()) == NATS_OK) natsMsgList_Destroy(&lost);
    in_flight.store(0);
    ++st.lost_acks_dropped;
  }

  // Requires mu.
  void WakeAll() {
    cv.notify_all();
    done_cv.notify_all();
  }

  // Requires mu.
  void MarkAcked(Epoch e) {
    if (e <= acked) return;
    acked = e;
    st.acked_epoch = e;
    while (!pending.empty() && pending.front().epoch <= acked) {
      pending.pop_front();
      if (sent > 0) --sent;
    }
  }

  Status Fail(Status s) {
    std::lock_guard<std::mutex> l(mu);
    if (error.ok()) error = s;
    WakeAll();
    return s;
  }

  // ---- reconciliation with the local log at start ---------------------------------------------

  // The hash the stream carries for complete epoch `epoch` (nullopt if none).
  Expected<std::optional<std::uint64_t>> StreamHashOf(Epoch epoch, const repl::StreamTail& tail) {
    auto after = repl::FirstSeqAfter(conn.js.get(), url.stream, epoch, tail);
    if (!after.ok()) return after.status();
    if (*after <= tail.first_seq) return std::optional<std::uint64_t>();
    natsMsg* m = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = js_GetMsg(&m, conn.js.get(), url.stream.c_str(), *after - 1, nullptr, &err);
    if (s != NATS_OK) return repl::NatsError(s, "reading the stream's last epoch");
    NatsPtr<natsMsg> msg(m);
    repl::ChunkMeta meta;
    MMSB_RETURN_IF_ERROR(repl::ReadChunkMeta(m, &meta));
    if (meta.last_epoch() != epoch || !meta.last) return std::optional<std::uint64_t>();
    return meta.hash;
  }

  Status Reconcile() {
    auto tail = repl::ReadTail(conn.js.get(), url.stream);
    if (!tail.ok()) return tail.status();
    const Epoch s_epoch = tail->complete_epoch();
    const Epoch l_epoch = log->writer().last_epoch();
    last_seq = tail->last_seq;
    acked = s_epoch;
    queued = s_epoch;
    st.acked_epoch = st.queued_epoch = s_epoch;
    const auto& last = tail->last;
    if (last && last->version == 1) {
      // A format-1 continuation chunk's bytes are arbitrary (no prefix): a stream of format 1
      // stays format 1, so a reader never has to tell one from a format-3 prefix by its bytes.
      return FailedPrecondition(fmt::format(
          "stream '{}' is in replication wire format 1 (an older MMSB's); this MMSB appends "
          "format 3 only to streams of format 2 or 3: replicate to a new stream (followers still "
          "read this one)",
          url.stream));
    }
    if (last && last->token > token) {
      return FailedPrecondition(
          fmt::format("stream '{}' was published by a newer leader (token {} > ours {})",
                      url.stream, last->token, token));
    }
    if (s_epoch > l_epoch) {
      return FailedPrecondition(fmt::format(
          "stream '{}' holds epochs up to {}, the local log '{}' only up to {}: publishing would "
          "fork history. Restore the local log from the stream (`mmsb follow nats://…/{} --out "
          "DIR`, then run from DIR) or publish to a new stream",
          url.stream, s_epoch, log->writer().dir(), l_epoch, url.stream));
    }
    if (s_epoch == 0 && l_epoch == 0) return Status::Ok();
    // Replay the local log to the stream's epoch: same history?
    MMSB_RETURN_IF_ERROR(log->writer().Flush());
    ReplayOptions ro;
    ro.epoch = s_epoch;
    auto rp = Replayer::Open(log->writer().dir(), ro);
    if (!rp.ok()) return rp.status();
    if (s_epoch > 0) {
      auto e = (*rp)->AdvanceTo(s_epoch);
      if (!e.ok()) return e.status();
      if (*e != s_epoch) {
        return FailedPrecondition(
            fmt::format("the local log '{}' cannot be replayed to epoch {} (the stream's last): {}",
                        log->writer().dir(), s_epoch, *e));
      }
      auto sh = StreamHashOf(s_epoch, *tail);
      if (!sh.ok()) return sh.status();
      const std::optional<std::uint64_t>& stream_hash = *sh;
      if (stream_hash && *stream_hash != (*rp)->ReplicaHash()) {
        return FailedPrecondition(fmt::format(
            "stream '{}' and the local log '{}' disagree at epoch {} (state hashes differ): they "
            "are different histories; publishing would fork",
            url.stream, log->writer().dir(), s_epoch));
      }
    }
    if (s_epoch == l_epoch) return Status::Ok();
    // Republish the local epochs past the stream's, as the log has them.
    LogReaderOptions rdo;
    rdo.skip_through_epoch = s_epoch;
    rdo.decode_deltas = false;
    auto rd = LogReader::Open(log->writer().dir(), rdo);
    if (!rd.ok()) return rd.status();
    LogBatch batch(log->writer().log_id());
    Epoch expect = s_epoch + 1;
    LogEntry e;
    for (;;) {
      auto r = (*rd)->Next(&e);
      if (!r.ok()) return r.status();
      if (!*r) break;
      if (e.raw_type == static_cast<std::uint8_t>(LogRecordType::kCheckpointMarker)) continue;
      if (e.type == LogRecordType::kCommit &&
          e.raw_type == static_cast<std::uint8_t>(LogRecordType::kCommit)) {
        if (e.commit.epoch <= s_epoch) {
          batch.Clear();
          continue;
        }
        if (e.commit.epoch != expect) {
          return FailedPrecondition(fmt::format(
              "the local log '{}' no longer has epoch {} (retired by a checkpoint) that stream "
              "'{}' lacks; publish to a new stream",
              log->writer().dir(), expect, url.stream));
        }
        batch.AddRaw(e.raw_type, e.payload);
        auto a = (*rp)->AdvanceTo(e.commit.epoch);
        if (!a.ok()) return a.status();
        Item it;
        it.epoch = e.commit.epoch;
        it.log_id = log->writer().log_id();
        it.hash = (*rp)->ReplicaHash();
        it.has_hash = true;
        it.bytes = std::make_shared<const std::vector<std::uint8_t>>(batch.bytes().begin(),
                                                                     batch.bytes().end());
        pending.push_back(std::move(it));
        queued = expect;
        ++st.republished;
        ++expect;
        batch.Clear();
        continue;
      }
      if (e.raw_type != static_cast<std::uint8_t>(LogRecordType::kEvent) && e.epoch <= s_epoch) {
        continue;
      }
      batch.AddRaw(e.raw_type, e.payload);
    }
    if (expect != l_epoch + 1) {
      return FailedPrecondition(fmt::format("the local log '{}' ends at epoch {}, expected {}",
                                            log->writer().dir(), expect - 1, l_epoch));
    }
    st.queued_epoch = queued;
    return Status::Ok();
  }

  // ---- publishing -----------------------------------------------------------------------------

  struct Tally {
    std::uint64_t messages = 0, bytes = 0, packed_messages = 0, packed_epochs = 0;
  };

  // Hands the message in `scratch` to cnats, expecting the stream's last sequence to be
  // `*expect` (then advanced by one). False when the publish call failed.
  bool Send(std::uint64_t* expect) {
    natsMsg* m = nullptr;
    if (natsMsg_Create(&m, data_subject.c_str(), nullptr,
                       reinterpret_cast<const char*>(scratch.data()),
                       static_cast<int>(scratch.size())) != NATS_OK) {
      return false;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    if (*expect == 0) {
      po.ExpectNoMessage = true;  // 0 means "unset" for ExpectLastSeq; one subject per stream
    } else {
      po.ExpectLastSeq = *expect;
    }
    // No MaxWait: for an asynchronous publish, cnats 3.4 keeps every message's deadline in a
    // list of its own and, when the deadline passes, hands its acknowledgement subscription a
    // timeout message for every one of them, answered or not: an allocation and a second
    // dispatch per message, and its timer thread waking about every millisecond while epochs
    // flow. The publisher's own ack timeout does that job (no acknowledgement for
    // ack_timeout_ms while something is sent: the worker recovers), and OnAck drops what a lost
    // acknowledgement leaves behind (DropLostAcks).
    in_flight.fetch_add(1, std::memory_order_relaxed);
    natsStatus s = js_PublishMsgAsync(conn.js.get(), &m, &po);
    if (s != NATS_OK) {
      in_flight.fetch_sub(1, std::memory_order_relaxed);
      natsMsg_Destroy(m);
      return false;
    }
    ++*expect;
    return true;
  }

  // Publishes `it` alone from its start chunk (wire format 3, one epoch: chunked when larger
  // than a chunk). False when a publish call failed.
  bool PublishChunks(const Item& it, std::uint64_t* expect, Tally* t) {
    const std::vector<std::uint8_t>& bytes = *it.bytes;
    const std::size_t n = bytes.empty() ? 1 : (bytes.size() + chunk_bytes - 1) / chunk_bytes;
    repl::ChunkMeta meta;
    meta.epoch = it.epoch;
    meta.log_id = it.log_id;
    meta.token = token;
    meta.count = 1;
    for (std::size_t c = it.start_chunk; c < n; ++c) {
      const std::size_t off = c * chunk_bytes;
      const std::size_t len = std::min(chunk_bytes, bytes.size() - std::min(off, bytes.size()));
      meta.chunk = static_cast<std::uint32_t>(c);
      meta.last = c + 1 == n;
      meta.hash = meta.last && it.has_hash ? std::optional<std::uint64_t>(it.hash) : std::nullopt;
      // The prefix and the chunk in one buffer (nats_util.h): cnats copies it.
      scratch.resize(repl::kPrefixBytesV3 + len);
      repl::EncodeChunkMeta(meta, scratch.data());
      if (len != 0) std::memcpy(scratch.data() + repl::kPrefixBytesV3, bytes.data() + off, len);
      if (!Send(expect)) return false;
      ++t->messages;
      t->bytes += len;
      if (meta.last && opts.on_published) opts.on_published(it.epoch);
    }
    return true;
  }

  // Publishes items[0, n), consecutive epochs, as one packed message (wire format 3: the
  // table of lengths and hashes, then the groups). Each is whole and has its hash (PackRun).
  bool PublishPacked(const Item* items, std::size_t n, std::uint64_t* expect, Tally* t) {
    const auto count = static_cast<std::uint32_t>(n);
    std::size_t total = 0;
    for (std::size_t k = 0; k < n; ++k) total += items[k].bytes->size();
    const std::size_t prefix = repl::PrefixBytes(count);
    scratch.resize(prefix + total);
    repl::ChunkMeta meta;
    meta.epoch = items[0].epoch;
    meta.count = count;
    meta.log_id = items[0].log_id;
    meta.token = token;
    meta.chunk = 0;
    meta.last = true;
    meta.hash = items[n - 1].hash;
    repl::EncodeChunkMeta(meta, scratch.data());
    std::size_t off = prefix;
    for (std::size_t k = 0; k < n; ++k) {
      const std::vector<std::uint8_t>& b = *items[k].bytes;
      repl::EncodePackEntry(scratch.data(), static_cast<std::uint32_t>(k),
                            static_cast<std::uint32_t>(b.size()), items[k].hash);
      if (!b.empty()) std::memcpy(scratch.data() + off, b.data(), b.size());
      off += b.size();
    }
    if (!Send(expect)) return false;
    ++t->messages;
    ++t->packed_messages;
    t->packed_epochs += n;
    t->bytes += total;
    if (opts.on_published) {
      for (std::size_t k = 0; k < n; ++k) opts.on_published(items[k].epoch);
    }
    return true;
  }

  // How many of items[0, n) go out in the first message when packing: the longest run of
  // consecutive epochs of one log id, each whole (no start chunk) and with its hash, at most
  // max_epochs_per_message, whose packed message is no larger than a chunk's message. 1 when
  // items[0] cannot be packed (it then goes alone, chunked if need be).
  std::size_t PackRun(const Item* items, std::size_t n) const {
    auto packable = [](const Item& it) { return it.start_chunk == 0 && it.has_hash; };
    if (!packable(items[0])) return 1;
    const std::size_t limit = repl::kPrefixBytesV3 + chunk_bytes;
    const std::size_t max_epochs = std::max<std::uint32_t>(opts.max_epochs_per_message, 1);
    std::size_t sum = items[0].bytes->size(), k = 1;
    while (k < n && k < max_epochs && packable(items[k]) &&
           items[k].epoch == items[k - 1].epoch + 1 && items[k].log_id == items[0].log_id &&
           repl::PrefixBytes(static_cast<std::uint32_t>(k + 1)) + sum + items[k].bytes->size() <=
               limit) {
      sum += items[k].bytes->size();
      ++k;
    }
    return k;
  }

  // Publishes items[0, n) asynchronously, in order, the first message expecting the stream's
  // last sequence to be `*expect` (advanced by one per message); packed when `pack`, else one
  // epoch per message. False when a publish call failed. Without mu: only the holder of
  // `publishing` calls it.
  bool PublishItems(const Item* items, std::size_t n, bool pack, std::uint64_t* expect, Tally* t) {
    for (std::size_t i = 0; i < n;) {
      const std::size_t run = pack ? PackRun(items + i, n - i) : 1;
      const bool ok =
          run == 1 ? PublishChunks(items[i], expect, t) : PublishPacked(items + i, run, expect, t);
      if (!ok) return false;
      i += run;
    }
    return true;
  }

  // Requires l (on mu) held and `publishing` clear. Sends every epoch not yet sent, packed when
  // there are several (and packing is on), with mu released while handing them to cnats.
  void PublishUnsent(std::unique_lock<std::mutex>& l) {
    publishing = true;
    if (sent == 0) last_progress = Clock::now();
    const std::size_t end = pending.size();
    // Copies, since the ack handler may pop the front meanwhile (an Item's bytes are shared, so
    // a copy is cheap).
    batch.assign(pending.begin() + static_cast<std::ptrdiff_t>(sent),
                 pending.begin() + static_cast<std::ptrdiff_t>(end));
    for (std::size_t k = sent; k < end; ++k) pending[k].start_chunk = 0;
    sent = end;
    std::uint64_t expect = last_seq;
    l.unlock();
    Tally t;
    const bool ok = PublishItems(batch.data(), batch.size(), opts.pack_in_flight != 0, &expect, &t);
    batch.clear();
    l.lock();
    publishing = false;
    last_seq = expect;
    st.messages += t.messages;
    st.bytes += t.bytes;
    st.packed_messages += t.packed_messages;
    st.packed_epochs += t.packed_epochs;
    if (!ok) need_recovery = true;
  }

  // The stream says what is stored: drop what it has, resend the rest after it.
  void Recover() {
    natsMsgList lost{};
    if (js_PublishAsyncGetPendingList(&lost, conn.js.get()) == NATS_OK) natsMsgList_Destroy(&lost);
    for (int attempt = 0;; ++attempt) {
      {
        std::lock_guard<std::mutex> l(mu);
        if (!error.ok()) return;
        if (stopping && attempt > 200) {
          error = Status(StatusCode::kIO, fmt::format("stream '{}' unreachable at close: epochs "
                                                      "after {} were not acknowledged",
                                                      url.stream, acked));
          WakeAll();
          return;
        }
      }
      auto tail = repl::ReadTail(conn.js.get(), url.stream);
      if (!tail.ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      std::lock_guard<std::mutex> l(mu);
      const auto& last = tail->last;
      if (last && last->token > token) {
        error = FailedPrecondition(
            fmt::format("stream '{}' was published by a newer leader (token {} > ours {}): fenced",
                        url.stream, last->token, token));
        WakeAll();
        return;
      }
      MarkAcked(tail->complete_epoch());
      in_flight.store(0);  // the pending list was dropped: nothing is awaited any more
      for (Item& it : pending) it.start_chunk = 0;
      if (last && !last->last && last->token == token && !pending.empty() &&
          pending.front().epoch == last->epoch) {
        // Our own partly stored epoch: continue after its stored chunks (same bytes, same
        // chunking), which also keeps message ids from colliding with the stored ones.
        pending.front().start_chunk = last->chunk + 1;
      }
      sent = 0;
      last_seq = tail->last_seq;
      need_recovery = false;
      last_progress = Clock::now();
      ++st.recoveries;
      WakeAll();
      return;
    }
  }

  Status PublishCheckpoint(const CheckpointJob& job) {
    const std::string subject = repl::CkptSubject(url.stream, job.epoch);
    const std::string stream = repl::CkptStream(url.stream);
    std::uint64_t first = 0;
    std::size_t chunks = 0;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 10000;
    for (std::size_t off = 0; off < job.bytes.size() || chunks == 0; off += chunk_bytes) {
      const std::size_t len = std::min(chunk_bytes, job.bytes.size() - off);
      jsPubAck* pa = nullptr;
      jsErrCode err = static_cast<jsErrCode>(0);
      natsStatus s = js_Publish(&pa, conn.js.get(), subject.c_str(), job.bytes.data() + off,
                                static_cast<int>(len), &po, &err);
      if (s != NATS_OK) return repl::NatsError(s, "publishing a checkpoint chunk");
      if (chunks == 0) first = pa->Sequence;
      jsPubAck_Destroy(pa);
      ++chunks;
      if (len == 0) break;
    }
    natsMsg* m = nullptr;
    const std::string head = repl::CkptHead(url.stream);
    if (natsMsg_Create(&m, head.c_str(), nullptr, nullptr, 0) != NATS_OK) {
      return Status(StatusCode::kIO, "checkpoint head message");
    }
    NatsPtr<natsMsg> msg(m);
    const std::string e = std::to_string(job.epoch), f = std::to_string(first),
                      n = std::to_string(chunks), t = std::to_string(token);
    natsMsgHeader_Set(m, "Nats-Rollup", "sub");
    natsMsgHeader_Set(m, repl::kHdrCkptEpoch, e.c_str());
    natsMsgHeader_Set(m, repl::kHdrCkptFirst, f.c_str());
    natsMsgHeader_Set(m, repl::kHdrCkptChunks, n.c_str());
    natsMsgHeader_Set(m, repl::kHdrToken, t.c_str());
    jsPubAck* pa = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    if (natsStatus s = js_PublishMsg(&pa, conn.js.get(), m, &po, &err); s != NATS_OK) {
      return repl::NatsError(s, "publishing a checkpoint head");
    }
    jsPubAck_Destroy(pa);
    // Older checkpoints' chunks (and heads) are no longer needed. Only when there are some: a
    // purge to the stream's first sequence (the stream's first checkpoint) emptied the whole
    // stream on nats-server 2.9, the checkpoint just published included.
    jsStreamInfo* si = nullptr;
    if (js_GetStreamInfo(&si, conn.js.get(), stream.c_str(), nullptr, &err) == NATS_OK) {
      const bool older = si->State.FirstSeq < first;
      jsStreamInfo_Destroy(si);
      if (older) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Stream.Purge.Sequence = first;
        (void)js_PurgeStream(conn.js.get(), stream.c_str(), &jo, &err);
      }
    }
    {
      std::lock_guard<std::mutex> l(mu);
      ++st.checkpoints;
    }
    Retain();
    return Status::Ok();
  }

  // The newest checkpoint epoch the checkpoint stream names (nullopt when there is none).
  std::optional<Epoch> StoredCheckpointEpoch() {
    natsMsg* hm = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    if (js_GetLastMsg(&hm, conn.js.get(), repl::CkptStream(url.stream).c_str(),
                      repl::CkptHead(url.stream).c_str(), nullptr, &err) != NATS_OK) {
      return std::nullopt;
    }
    NatsPtr<natsMsg> head(hm);
    const char* v = nullptr;
    natsMsgHeader_Get(hm, repl::kHdrCkptEpoch, &v);
    return repl::ParseU64(v);
  }

  // Retention (docs/Replication.md, "Retention"): purges the data messages before the first
  // message of epoch C+1, C the newest stored checkpoint's epoch, when the stream holds more than
  // retain_bytes; and, below that same point, those older than retain_age_ms. Never anything a
  // follower starting from that checkpoint needs.
  void Retain() {
    if (opts.retain_bytes == 0 && opts.retain_age_ms == 0) return;
    const std::optional<Epoch> ckpt = StoredCheckpointEpoch();
    if (!ckpt) return;
    auto tail = repl::ReadTail(conn.js.get(), url.stream);
    if (!tail.ok() || tail->last_seq < tail->first_seq) return;
    auto after = repl::FirstSeqAfter(conn.js.get(), url.stream, *ckpt, *tail);
    if (!after.ok() || *after <= tail->first_seq) return;
    std::uint64_t upto = tail->first_seq;  // purge [first_seq, upto)
    if (opts.retain_bytes != 0 && tail->bytes > opts.retain_bytes) upto = *after;
    if (opts.retain_age_ms != 0 && upto < *after) {
      // The first message at least retain_age_ms young, by binary search in [upto, after):
      // store times never decrease along the stream.
      const std::int64_t cutoff = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count() -
                                  opts.retain_age_ms * 1000000;
      std::uint64_t lo = upto, hi = *after;
      while (lo < hi) {
        const std::uint64_t mid = lo + (hi - lo) / 2;
        natsMsg* m = nullptr;
        jsErrCode err = static_cast<jsErrCode>(0);
        const natsStatus s = js_GetMsg(&m, conn.js.get(), url.stream.c_str(), mid, nullptr, &err);
        if (s == NATS_OK) {
          NatsPtr<natsMsg> msg(m);
          if (natsMsg_GetTime(m) < cutoff) {
            lo = mid + 1;
          } else {
            hi = mid;
          }
        } else if (s == NATS_NOT_FOUND) {
          lo = mid + 1;  // purged meanwhile: older still
        } else {
          return;  // the server is away: next time
        }
      }
      upto = std::max(upto, lo);
    }
    if (upto <= tail->first_seq) return;
    jsOptions dj;
    jsOptions_Init(&dj);
    dj.Stream.Purge.Sequence = upto;  // keeps `upto` and after
    jsErrCode err = static_cast<jsErrCode>(0);
    if (js_PurgeStream(conn.js.get(), url.stream.c_str(), &dj, &err) == NATS_OK) {
      std::lock_guard<std::mutex> l(mu);
      ++st.purges;
    }
  }

  void WorkerLoop() {
    pthread_setname_np(pthread_self(), "mmsb-publish");
    std::unique_lock<std::mutex> l(mu);
    for (;;) {
      const auto timeout = std::chrono::milliseconds(opts.ack_timeout_ms);
      worker_waiting = true;
      cv.wait_for(l, std::chrono::milliseconds(50), [&] {
        return !error.ok() ||
               (!publishing && (need_recovery || (sent < pending.size() && !Backlogged()))) ||
               (!checkpoints.empty() && acked >= checkpoints.front().epoch) ||
               (stopping && pending.empty() && checkpoints.empty() && !publishing);
      });
      worker_waiting = false;
      if (!error.ok()) return;
      if (stopping && pending.empty() && checkpoints.empty() && !publishing) return;
      if (opts.retain_age_ms != 0 && Clock::now() >= next_retention) {
        // Age passes without new checkpoints: look again now and then.
        next_retention = Clock::now() + std::chrono::milliseconds(std::clamp<std::int64_t>(
                                            opts.retain_age_ms / 4, 20, 1000));
        l.unlock();
        Retain();
        l.lock();
        continue;
      }
      const bool stalled = sent > 0 && Clock::now() - last_progress > timeout;
      if (!publishing && (need_recovery || stalled)) {
        publishing = true;
        l.unlock();
        Recover();
        l.lock();
        publishing = false;
        continue;
      }
      if (!checkpoints.empty() && acked >= checkpoints.front().epoch) {
        CheckpointJob job = std::move(checkpoints.front());
        checkpoints.pop_front();
        l.unlock();
        Status s = PublishCheckpoint(job);
        l.lock();
        if (!s.ok()) {
          // A checkpoint is an optimisation for new followers: report it, keep replicating.
          std::fprintf(stderr, "mmsb replication: %s\n", s.ToString().c_str());
        }
        continue;
      }
      if (!publishing && sent < pending.size() && !Backlogged()) PublishUnsent(l);
    }
  }

  Status Enqueue(Item item) {
    std::unique_lock<std::mutex> l(mu);
    if (!error.ok() || pending.size() >= opts.window) {
      ++done_waiters;
      done_cv.wait(l, [&] { return !error.ok() || pending.size() < opts.window; });
      --done_waiters;
    }
    if (!error.ok()) return error;
    queued = item.epoch;
    st.queued_epoch = item.epoch;
    pending.push_back(std::move(item));
    if (publishing || need_recovery || Backlogged()) {
      // The worker publishes or recovers: it takes this epoch with its next batch. Or the
      // server has a backlog (Backlogged): the epoch waits for the next acknowledgement, which
      // releases every waiting epoch in one packed message (OnAck wakes the worker; a later
      // commit may send them first).
      if (worker_waiting && (need_recovery || !Backlogged())) cv.notify_one();
      return Status::Ok();
    }
    // No backlog and nobody publishing: send from this (the committing) thread, which saves a
    // thread hand-off per epoch; epochs that waited go with it, packed. `publishing` keeps the
    // worker out until the messages are handed to cnats, so the sequences they expect stay in
    // order.
    PublishUnsent(l);
    if (worker_waiting && (need_recovery || stopping)) cv.notify_one();
    return Status::Ok();
  }

  Status WaitAcked(Epoch e, std::int64_t timeout_ms) {
    std::unique_lock<std::mutex> l(mu);
    ++done_waiters;
    const bool done = done_cv.wait_for(l, std::chrono::milliseconds(timeout_ms),
                                       [&] { return !error.ok() || acked >= e; });
    --done_waiters;
    if (!error.ok()) return error;
    if (!done) {
      return Status(StatusCode::kIO,
                    fmt::format("epoch {} not acknowledged by stream '{}' within {} ms (acked {})",
                                e, url.stream, timeout_ms, acked));
    }
    return Status::Ok();
  }

  void StopThreads() {
    if (lease) lease->StopRenewing();
    {
      std::lock_guard<std::mutex> l(mu);
      stopping = true;
      WakeAll();
    }
    if (worker.joinable()) worker.join();
  }
};

Replicator::~Replicator() { (void)Close(); }

Expected<std::shared_ptr<Replicator>> Replicator::Start(std::shared_ptr<LogSink> log,
                                                        const std::string& url,
                                                        const ReplicationOptions& options) {
  if (!log) return InvalidArgument("Replicate: no log sink");
  auto u = ParseReplicaUrl(url);
  if (!u.ok()) return u.status();
  std::shared_ptr<Replicator> r(new Replicator());
  r->impl_ = std::make_unique<Impl>();
  Impl& m = *r->impl_;
  m.url = *u;
  m.data_subject = repl::DataSubject(m.url.stream);
  m.opts = options;
  m.opts.window = std::max<std::size_t>(m.opts.window, 1);
  m.log = std::move(log);
  m.owner = options.owner;
  if (m.owner.empty()) {
    char host[256] = {0};
    (void)::gethostname(host, sizeof host - 1);
    static std::atomic<int> instance{0};  // two publishers in one process are two owners
    m.owner = fmt::format("{}:{}:{}", host, ::getpid(), instance++);
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.AckHandler = &Impl::OnAck;
  jo.PublishAsync.AckHandlerClosure = &m;
  m.max_pending = static_cast<std::int64_t>(std::min<std::size_t>(m.opts.window * 4, 65536));
  jo.PublishAsync.MaxPending = m.max_pending;
  jo.PublishAsync.StallWait = options.ack_timeout_ms;
  jo.Wait = 5000;
  auto c = repl::Connect(m.url.server, &jo);
  if (!c.ok()) return c.status();
  m.conn = std::move(*c);
  const std::int64_t max_payload = natsConnection_GetMaxPayload(m.conn.nc.get());
  const std::size_t room = 4096;  // headers and the 48-byte prefix
  m.chunk_bytes = max_payload > static_cast<std::int64_t>(room * 2)
                      ? static_cast<std::size_t>(max_payload) - room
                      : room;
  if (options.max_chunk_bytes != 0)
    m.chunk_bytes = std::min(m.chunk_bytes, options.max_chunk_bytes);
  MMSB_RETURN_IF_ERROR(repl::EnsureStreams(m.conn.js.get(), m.url.stream, options.replicas));
  auto lease = repl::LeaderLease::Acquire(m.conn.js.get(), m.url.stream, m.owner,
                                          m.opts.lease_ttl_ms, m.opts.replicas);
  if (!lease.ok()) return lease.status();
  m.lease = std::move(*lease);
  m.token = m.lease->token();
  m.st.fencing_token = m.token;
  if (Status s = m.Reconcile(); !s.ok()) {
    m.lease->Release();
    return s;
  }
  m.worker = std::thread([&m] { m.WorkerLoop(); });
  m.lease->StartRenewing([&m](Status lost) { (void)m.Fail(std::move(lost)); });
  m.log->SetGroupObserver(r, true);
  return r;
}

Status Replicator::OnGroup(const LoggedGroup& g) {
  Impl::Item it;
  it.epoch = g.epoch;
  it.log_id = g.log_id;
  it.hash = g.state_hash;
  it.has_hash = true;
  it.bytes = std::make_shared<const std::vector<std::uint8_t>>(g.records.begin(), g.records.end());
  // Under the commit lock: no race on these counters.
  Impl& m = *impl_;
  m.bytes_since_checkpoint += g.records.size();
  const bool by_bytes = m.opts.checkpoint_every_bytes != 0 &&
                        m.bytes_since_checkpoint >= m.opts.checkpoint_every_bytes;
  const bool by_age =
      m.opts.checkpoint_every_ms != 0 && Clock::now() - m.last_checkpoint_request >=
                                             std::chrono::milliseconds(m.opts.checkpoint_every_ms);
  if (by_bytes || by_age) {
    m.bytes_since_checkpoint = 0;
    m.last_checkpoint_request = Clock::now();
    m.want_checkpoint = true;  // asked for in AfterGroup: the sink's lock is held here
  }
  return impl_->Enqueue(std::move(it));
}

Status Replicator::AfterGroup(Epoch log_epoch) {
  if (impl_->want_checkpoint.exchange(false)) impl_->log->RequestCheckpoint();  // next commit
  if (impl_->opts.durability != ReplicaDurability::kServerAck) return health();
  return impl_->WaitAcked(log_epoch, 60000);
}

void Replicator::OnCheckpoint(Epoch epoch, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  Impl::CheckpointJob job;
  job.epoch = epoch;
  job.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return;
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->checkpoints.push_back(std::move(job));
  impl_->cv.notify_all();
}

Status Replicator::WaitAcked(Epoch log_epoch, std::int64_t timeout_ms) {
  return impl_->WaitAcked(log_epoch, timeout_ms);
}

Status Replicator::Close() {
  if (!impl_ || !impl_->conn.nc) return Status::Ok();
  Impl& m = *impl_;
  m.log->SetGroupObserver(nullptr, false);
  Status s = m.WaitAcked(m.queued, 10000);
  m.StopThreads();
  if (m.lease) m.lease->Release();
  m.lease.reset();
  m.conn.Close();  // before the context frees its acknowledgement subscription
  return s;
}

ReplicationStats Replicator::stats() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->st;
}

Status Replicator::health() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->error;
}

}  // namespace mmsb
