// Replication: the transaction log copied, epoch by epoch, to followers through NATS JetStream.
//
// A leader attaches a Replicator to its LogSink: every epoch group the log appends is published,
// in the log's own record format, to a JetStream stream (chunked when larger than the server's
// max payload), with the server's expected-last-sequence check on every message, so the stream
// holds one gap-free, duplicate-free history. A lease in a JetStream key-value bucket makes one
// publisher the leader; its fencing token is in every message. Checkpoints the log writes go to a
// second stream that keeps only the newest. A Follower loads that checkpoint (or its own replica
// log), consumes the following epochs, applies each through Replayer::ApplyGroup only once its
// last chunk arrived, and checks the leader's state hash after every epoch.
// docs/Replication.md has the model, the guarantees and the failure behaviour.
//
// This library links cnats (libnats); libmmsb does not. A program enables replication with
// mmsb::Replicate(log, "nats://host:4222/stream") or mmsb::ReplicateFromEnv(log)
// (MMSB_REPLICATE=nats://host:4222/stream), and links mmsb::replication
// (mmsb_instrument(target REPLICATE)).
//
// Ownership: a Replicator holds its LogSink, connection and publisher thread until Close().
// A Follower owns its connection, subscription and replica log.
// Thread-safety: Replicator methods may be called from any thread. A Follower is driven by one
// thread (Poll/RunUntil); Snapshot(), epoch() and stats() may be called from others.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "mmsb/log.h"
#include "mmsb/replay.h"
#include "mmsb/status.h"

namespace mmsb {

// "nats://host:port/stream" split into the server URL and the stream name.
struct ReplicaUrl {
  std::string server;  // "nats://host:port"
  std::string stream;  // JetStream stream name: letters, digits, '-' and '_'
};
Expected<ReplicaUrl> ParseReplicaUrl(const std::string& url);

// When a commit counts as replicated; next to the local log's Durability (which it does not
// change: the local log's level is waited for first).
enum class ReplicaDurability : std::uint8_t {
  // Commit returns once the group is queued for publishing. At most `window` epochs are queued or
  // unacknowledged; a commit that would exceed that waits (backpressure, never loss).
  kAsync = 0,
  // Commit returns once the JetStream server acknowledged the epoch's last chunk: stored in the
  // stream's file store (not necessarily fsynced: nats-server syncs its files every 2 minutes by
  // default, see docs/Replication.md); with an R3 stream, stored by a quorum of 2 servers.
  kServerAck = 1,
};
const char* ReplicaDurabilityName(ReplicaDurability d);  // "async", "server_ack"

struct ReplicationOptions {
  ReplicaDurability durability = ReplicaDurability::kAsync;
  std::size_t window = 1024;           // epochs queued or in flight
  std::size_t max_chunk_bytes = 0;     // 0: the server's max payload less room for headers
  std::int64_t lease_ttl_ms = 5000;    // a crashed leader's lease expires after this
  std::int64_t ack_timeout_ms = 2000;  // no ack progress for this long: re-check the stream
  int replicas = 1;                    // stream replicas when the streams are created (R1 or R3)
  // Packing (wire format 3, docs/Replication.md "Packing"). While at least pack_in_flight
  // messages are unacknowledged (a backlog at the server), a new epoch is not sent at once: it
  // waits for the next acknowledgement, and then every waiting epoch goes out whole in one
  // message (at most max_epochs_per_message epochs and one chunk's bytes). With fewer messages
  // in flight an epoch is sent at once, as its own message. 0: never pack. 16 measured best for
  // the lag on 2 CPUs at 10k epochs/s (docs/Replication.md, "The default window").
  std::size_t pack_in_flight = 16;
  std::uint32_t max_epochs_per_message = 256;
  // Retention (docs/Replication.md, "Retention"). Only what the newest stored checkpoint covers
  // is ever purged: the data messages before its epoch's successor. Of those, all when the data
  // stream holds more than retain_bytes (0: no byte limit), and those older than retain_age_ms
  // (0: no age limit), checked after each checkpoint and every retain_age_ms / 4 (20 ms..1 s).
  std::uint64_t retain_bytes = 0;
  std::int64_t retain_age_ms = 0;
  // Ask the log for a checkpoint after this many replicated group bytes, or when this long has
  // passed since the last request (0: never), so retention can make progress.
  std::uint64_t checkpoint_every_bytes = 0;
  std::int64_t checkpoint_every_ms = 0;
  std::string owner;  // who holds the lease, for messages; default "host:pid"
  // Tracing (bench/replication: where an epoch's lag goes). Called with the epoch when its last
  // chunk was handed to the client library (on the committing or the publishing thread), and
  // when the server acknowledged it (on the client library's acknowledgement thread, with the
  // publisher's lock held: it must not block or call the Replicator).
  std::function<void(Epoch epoch)> on_published;
  std::function<void(Epoch epoch)> on_acked;
};

struct ReplicationStats {
  Epoch queued_epoch = 0;  // newest epoch handed to the publisher
  Epoch acked_epoch = 0;   // newest epoch the server acknowledged (all before it too)
  std::uint64_t messages = 0;
  std::uint64_t packed_messages = 0;  // messages that carried more than one epoch
  std::uint64_t packed_epochs = 0;    // the epochs those carried
  std::uint64_t bytes = 0;
  std::uint64_t recoveries = 0;   // times the publisher re-read the stream and resent
  std::uint64_t republished = 0;  // epochs republished from the local log at start
  std::uint64_t checkpoints = 0;
  std::uint64_t purges = 0;  // retention purges of the data stream
  // Times the publisher found messages whose acknowledgement was lost (a reconnect) after a later
  // one had covered their epochs, and stopped awaiting them (docs/Replication.md, "Timeouts").
  std::uint64_t lost_acks_dropped = 0;
  std::uint64_t fencing_token = 0;
};

class Replicator : public LogGroupObserver {
 public:
  // Connects, creates the streams if needed, takes the lease (FailedPrecondition naming the
  // holder when another publisher has it), reconciles the stream with the local log (republishes
  // the local epochs the stream lacks; refuses when the stream is ahead or disagrees), then
  // observes `log`. Call before the first commit that should be replicated.
  static Expected<std::shared_ptr<Replicator>> Start(std::shared_ptr<LogSink> log,
                                                     const std::string& url,
                                                     const ReplicationOptions& options = {});
  ~Replicator() override;

  // Waits until the server acknowledged every epoch up to `log_epoch` (IO after `timeout_ms`).
  Status WaitAcked(Epoch log_epoch, std::int64_t timeout_ms = 30000);
  // Waits for everything queued, then stops publishing and releases the lease.
  Status Close();
  ReplicationStats stats() const;
  // The first error that stopped publishing (OK while healthy).
  Status health() const;

  // LogGroupObserver
  Status OnGroup(const LoggedGroup& group) override;
  Status AfterGroup(Epoch log_epoch) override;
  void OnCheckpoint(Epoch epoch, const std::string& path) override;

  class Impl;

 private:
  Replicator() = default;
  std::unique_ptr<Impl> impl_;
};

// Replicator::Start with "nats://host:port/stream", or server URL and stream apart.
Expected<std::shared_ptr<Replicator>> Replicate(std::shared_ptr<LogSink> log,
                                                const std::string& url,
                                                const ReplicationOptions& options = {});
Expected<std::shared_ptr<Replicator>> Replicate(std::shared_ptr<LogSink> log,
                                                const std::string& server,
                                                const std::string& stream,
                                                const ReplicationOptions& options = {});
// Replicates to MMSB_REPLICATE (nats://host:port/stream[?durability=server_ack]) when it is set;
// null when it is not.
Expected<std::shared_ptr<Replicator>> ReplicateFromEnv(std::shared_ptr<LogSink> log,
                                                       const ReplicationOptions& options = {});

// ---- Follower ----------------------------------------------------------------------------------

struct FollowOptions {
  // A replica log directory: resumed from when it holds a log, written epoch by epoch (a full
  // log every `mmsb` command reads). Empty: the follower keeps the state in memory only.
  std::string out_dir;
  // Check each epoch's state hash against the leader's. The hash is kept up to date from each
  // epoch's changes (O(changed bytes)); every `full_hash_every` checked epochs (0: never) it is
  // also recomputed by a full pass over the state, which checks the incremental tracking.
  bool check_hash = true;
  std::uint64_t full_hash_every = 4096;
  // Called after each applied epoch, on the thread that drives the follower.
  std::function<void(const LogState& state, Epoch epoch)> on_epoch;
  // Called when an epoch's last chunk arrived, before it is applied, with the time the server
  // stored that chunk (nanoseconds since the Unix epoch, the server's clock): tracing.
  std::function<void(Epoch epoch, std::int64_t stored_unix_nanos)> on_received;
};

struct FollowStats {
  Epoch epoch = 0;             // last applied
  Epoch checkpoint_epoch = 0;  // where this follower started from a checkpoint (0: none)
  std::uint64_t epochs_applied = 0;
  std::uint64_t hashes_checked = 0;
  std::uint64_t full_hashes = 0;      // of those, also checked by a full pass
  std::uint64_t divergences = 0;      // hash mismatches (the follower stops at the first)
  std::uint64_t duplicates = 0;       // epochs received again and ignored
  std::uint64_t partial_dropped = 0;  // epochs whose chunks stopped before the last
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
};

class Follower {
 public:
  // Connects and positions: from out_dir's log if it has one, else from the stream's newest
  // checkpoint (or the beginning). NotFound when the stream does not exist.
  static Expected<std::unique_ptr<Follower>> Open(const std::string& url,
                                                  const FollowOptions& options = {});
  ~Follower();

  // Receives and applies what arrives within `timeout_ms`; returns the epoch reached. Corruption
  // on a state-hash mismatch or an epoch gap (nothing past the last good epoch is applied).
  Expected<Epoch> Poll(std::int64_t timeout_ms);
  // Polls until `epoch` is applied or `timeout_ms` passes without progress.
  Expected<Epoch> RunUntil(Epoch epoch, std::int64_t timeout_ms);

  // The state at the last applied epoch. state() only on the driving thread; Snapshot() copies
  // it under a lock, from any thread.
  const LogState& state() const;
  LogState Snapshot() const;
  Epoch epoch() const;
  FollowStats stats() const;

  class Impl;

 private:
  explicit Follower(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mmsb
