// cnats plumbing shared by the publisher and the follower: ownership wrappers, connection,
// stream set-up, and the message headers of the replication wire format.
//
// Wire format 2 (docs/Replication.md, "Wire format"): stream `<S>` holds subject `<S>.log`; each
// message is one chunk of one epoch group (framed log records, the commit record last) behind a
// fixed 48-byte prefix, all integers little-endian:
//   [0, 7)   "MMSBRPL"            [7]      format version, 2
//   [8, 16)  log epoch            [16, 24) log id (seeds the records' checksums)
//   [24, 32) fencing token        [32, 40) LogState::ReplicaHash() after the epoch (flag 2)
//   [40, 44) chunk index, from 0  [44, 48) flags: 1 = the group's last chunk, 2 = hash present
// and no header of ours (the only header is cnats's expected-last-sequence): a header costs the
// publisher an allocation, a hash insert and an encoding per message and the follower a parse.
// Format 1 carried the same fields in six Mmsb-* headers; a format-1 follower finds no
// Mmsb-Epoch header on a format-2 message and refuses it ("no valid Mmsb-Epoch header"), and a
// format-2 reader refuses a format-1 message or a newer version by name (ReadChunkMeta).
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

inline constexpr const char* kHdrEpoch = "Mmsb-Epoch";  // format 1's: recognised to refuse it
inline constexpr const char* kHdrToken = "Mmsb-Token";
inline constexpr std::uint8_t kWireVersion = 2;
inline constexpr std::size_t kChunkPrefixBytes = 48;
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

// The replication headers of one data message.
struct ChunkMeta {
  Epoch epoch = 0;
  std::uint32_t chunk = 0;
  bool last = false;
  std::uint64_t log_id = 0;
  std::optional<std::uint64_t> hash;
  std::uint64_t token = 0;
};
// Writes `meta`'s 48-byte prefix (wire format 2) to `out`.
void EncodeChunkMeta(const ChunkMeta& meta, std::uint8_t* out);
// Reads a data message's prefix. InvalidArgument saying why when the message is not a format-2
// replication chunk: a format-1 message (an older MMSB's), a newer format, or none of ours.
Status ReadChunkMeta(natsMsg* msg, ChunkMeta* meta);
// A data message's chunk bytes (after the prefix): only after ReadChunkMeta accepted it.
inline const std::uint8_t* ChunkData(natsMsg* msg) {
  return reinterpret_cast<const std::uint8_t*>(natsMsg_GetData(msg)) + kChunkPrefixBytes;
}
inline std::size_t ChunkLength(natsMsg* msg) {
  return static_cast<std::size_t>(natsMsg_GetDataLength(msg)) - kChunkPrefixBytes;
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
  // The newest complete epoch in the stream (the last message's, or the one before when it is a
  // partial epoch's chunk).
  Epoch complete_epoch() const {
    if (!last) return 0;
    return last->last ? last->epoch : last->epoch - 1;
  }
};
Expected<StreamTail> ReadTail(jsCtx* js, const std::string& stream);

// The first data sequence whose epoch is greater than `epoch` (binary search over stored
// messages; epochs never decrease along the stream). last_seq + 1 when there is none.
Expected<std::uint64_t> FirstSeqAfter(jsCtx* js, const std::string& stream, Epoch epoch,
                                      const StreamTail& tail);

}  // namespace mmsb::repl
