// cnats plumbing shared by the publisher and the follower: ownership wrappers, connection,
// stream set-up, and the message headers of the replication wire format.
//
// Wire format 3 (docs/Replication.md, "Wire format"): stream `<S>` holds subject `<S>.log`;
// each message carries either one chunk of one epoch group or several whole epoch groups (a
// contiguous range, "packed" while the publisher has a backlog), behind a versioned prefix, all
// integers little-endian:
//   [0, 7)   "MMSBRPL"            [7]      format version, 3
//   [8, 16)  first log epoch      [16, 24) log id (seeds the records' checksums)
//   [24, 32) fencing token        [32, 40) LogState::ReplicaHash() after the last epoch (flag 2)
//   [40, 44) chunk index, from 0  [44, 48) flags: 1 = the group's last chunk, 2 = hash present
//   [48, 52) epoch count n >= 1   [52, 56) 0
// then, only when n > 1 (chunk 0, flags 1|2), n 16-byte entries, one per epoch in order:
//   [0, 4) the epoch group's byte length, [4, 8) 0, [8, 16) the state hash after that epoch
// and the group bytes (framed log records, each group's commit record last), concatenated.
// No header of ours (the only header is cnats's expected-last-sequence): a header costs the
// publisher an allocation, a hash insert and an encoding per message and the follower a parse.
// Format 2 is format 3 without [48, 56) (always one epoch); format 1 carried the fields in six
// Mmsb-* headers and the records as the whole payload. ReadChunkMeta reads all three; a newer
// version or a foreign message is refused by name.
// Stream `<S>_CKPT` holds checkpoint file chunks on `<S>.ckpt.<epoch>` and, on `<S>.ckpt.head`
// (rolled up: only the newest is kept), a head message naming the complete checkpoint.
// Thread-safety: the wrappers are single-owner values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <nats/nats.h>

#include "mmsb/status.h"
#include "mmsb/types.h"

namespace mmsb::repl {

// Format 1's headers (read, never written).
inline constexpr const char* kHdrEpoch = "Mmsb-Epoch";
inline constexpr const char* kHdrChunk = "Mmsb-Chunk";
inline constexpr const char* kHdrLast = "Mmsb-Last";
inline constexpr const char* kHdrLogId = "Mmsb-Log-Id";
inline constexpr const char* kHdrHash = "Mmsb-Hash";
inline constexpr const char* kHdrToken = "Mmsb-Token";
inline constexpr std::uint8_t kWireVersion = 3;  // what this MMSB writes
inline constexpr std::size_t kPrefixBytesV2 = 48;
inline constexpr std::size_t kPrefixBytesV3 = 56;
inline constexpr std::size_t kPackEntryBytes = 16;
inline constexpr const char* kHdrCkptEpoch = "Mmsb-Checkpoint-Epoch";
inline constexpr const char* kHdrCkptFirst = "Mmsb-Checkpoint-First-Seq";
inline constexpr const char* kHdrCkptChunks = "Mmsb-Checkpoint-Chunks";
inline constexpr const char* kLeaseBucket = "mmsb_leases";

struct NatsDeleter {
  void operator()(natsConnection* p) const { natsConnection_Destroy(p); }
  void operator()(natsOptions* p) const { natsOptions_Destroy(p); }
  void operator()(jsCtx* p) const { jsCtx_Destroy(p); }
  void operator()(natsMsg* p) const { natsMsg_Destroy(p); }
  void operator()(jsStreamInfo* p) const { jsStreamInfo_Destroy(p); }
  void operator()(kvStore* p) const { kvStore_Destroy(p); }
  void operator()(kvEntry* p) const { kvEntry_Destroy(p); }
  void operator()(natsSubscription* p) const { natsSubscription_Destroy(p); }
};
template <typename T>
using NatsPtr = std::unique_ptr<T, NatsDeleter>;

// A Status from a cnats status, with the library's last error text.
Status NatsError(natsStatus s, const std::string& what);

std::string DataStream(const std::string& stream);   // "<S>"
std::string DataSubject(const std::string& stream);  // "<S>.log"
std::string CkptStream(const std::string& stream);   // "<S>_CKPT"
std::string CkptSubject(const std::string& stream, Epoch epoch);
std::string CkptHead(const std::string& stream);

// A connection that reconnects forever (a JetStream server restart is a pause, not an error).
//
// Subscriptions and cnats 3.4 (Debian 12's libnats): its reader thread looks up the subscription
// of an incoming message without taking a reference (nats.c issue #637, fixed in 3.5). Dropping
// the last reference to a subscription while messages for it still arrive lets that thread use
// freed memory: the replication bench hung in a mutex of a freed subscription about one run in
// five, and crashed. So the last reference to a subscription is dropped only when no incoming
// message can still reach it: after UnsubscribeAndSettle succeeded, or after the connection was
// closed (Close below joins the reader thread while the subscriptions are still held).
struct Connection {
  NatsPtr<natsConnection> nc;
  NatsPtr<jsCtx> js;
  Connection() = default;
  Connection(Connection&&) = default;
  Connection& operator=(Connection&& o) noexcept {
    Close();
    nc = std::move(o.nc);
    js = std::move(o.js);
    return *this;
  }
  ~Connection() { Close(); }
  // Closes the connection (joining cnats's threads), then frees the context and the connection.
  // Subscriptions the caller still holds are safe to destroy afterwards.
  void Close() {
    if (nc) natsConnection_Close(nc.get());
    js.reset();
    nc.reset();
  }
};
Expected<Connection> Connect(const std::string& server, jsOptions* js_options = nullptr);

// Unsubscribes `sub`, then waits for a round trip to the server: once its PONG is read, the
// reader thread is past every message it looked up before the unsubscribe, so `sub` may be
// destroyed. False when the round trip failed (the server is away): keep `sub` alive until the
// connection is closed.
bool UnsubscribeAndSettle(natsConnection* nc, natsSubscription* sub);

// Creates the data and checkpoint streams when missing (file storage, `replicas`).
Status EnsureStreams(jsCtx* js, const std::string& stream, int replicas);

// The replication fields of one data message.
struct ChunkMeta {
  Epoch epoch = 0;          // the message's first (for a chunk: its only) epoch
  std::uint32_t count = 1;  // epochs in the message: more than 1 only for a packed message
  std::uint32_t chunk = 0;
  bool last = false;
  std::uint64_t log_id = 0;
  std::optional<std::uint64_t> hash;  // after the message's last epoch
  std::uint64_t token = 0;
  std::uint8_t version = kWireVersion;  // the format the message was read in
  std::size_t data_offset = 0;          // where the group bytes start in the payload
  Epoch last_epoch() const { return epoch + count - 1; }
  bool packed() const { return count > 1; }
};
// The bytes of a format-3 message's prefix for `count` epochs (with the table when count > 1).
inline std::size_t PrefixBytes(std::uint32_t count) {
  return kPrefixBytesV3 + (count > 1 ? kPackEntryBytes * count : 0);
}
// Writes `meta`'s fixed 56-byte prefix (wire format 3; meta.count set) to `out`.
void EncodeChunkMeta(const ChunkMeta& meta, std::uint8_t* out);
// Writes entry `index` of a packed message's table; `out` is the message's first byte.
void EncodePackEntry(std::uint8_t* out, std::uint32_t index, std::uint32_t length,
                     std::uint64_t hash);
// Reads a data message's fields (wire format 1, 2 or 3). For a packed message it also checks
// the table (flags, reserved bytes, lengths adding up to the payload, the last entry's hash).
// InvalidArgument saying why when the message is not a replication message of a known format.
// The prefix is looked for first, the format-1 headers only without one; `format1_first` looks
// for the headers first (the follower, while it assembles a format-1 epoch: a continuation
// chunk's bytes are arbitrary and could begin like a prefix).
Status ReadChunkMeta(natsMsg* msg, ChunkMeta* meta, bool format1_first = false);
// Entry `index` of a packed message's table: only after ReadChunkMeta accepted it.
struct PackEntry {
  std::uint32_t length = 0;
  std::uint64_t hash = 0;
};
PackEntry ReadPackEntry(natsMsg* msg, std::uint32_t index);
// A data message's group bytes (after the prefix): only after ReadChunkMeta accepted it.
inline const std::uint8_t* ChunkData(natsMsg* msg, const ChunkMeta& meta) {
  return reinterpret_cast<const std::uint8_t*>(natsMsg_GetData(msg)) + meta.data_offset;
}
inline std::size_t ChunkLength(natsMsg* msg, const ChunkMeta& meta) {
  return static_cast<std::size_t>(natsMsg_GetDataLength(msg)) - meta.data_offset;
}

std::string Hex16(std::uint64_t v);
std::optional<std::uint64_t> ParseU64(const char* s, int base = 10);

// The last data message's meta (nullopt for an empty stream) and the stream's first and last
// sequence.
struct StreamTail {
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t bytes = 0;
  std::optional<ChunkMeta> last;
  // The newest complete epoch in the stream (the last message's last epoch, or the one before
  // when it is a partial epoch's chunk).
  Epoch complete_epoch() const {
    if (!last) return 0;
    return last->last ? last->last_epoch() : last->epoch - 1;
  }
};
Expected<StreamTail> ReadTail(jsCtx* js, const std::string& stream);

// The first data sequence whose message holds an epoch greater than `epoch`, i.e. whose last
// epoch is (binary search over stored messages; epochs never decrease along the stream).
// last_seq + 1 when there is none.
Expected<std::uint64_t> FirstSeqAfter(jsCtx* js, const std::string& stream, Epoch epoch,
                                      const StreamTail& tail);

}  // namespace mmsb::repl
