// cnats plumbing: connection, streams, the wire format (formats 1 to 3 read, 3 written).
#include "nats_util.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

namespace mmsb::repl {

Status NatsError(natsStatus s, const std::string& what) {
  natsStatus ignored;
  const char* last = nats_GetLastError(&ignored);
  std::string detail = last != nullptr && *last != '\0' ? last : natsStatus_GetText(s);
  const StatusCode code = s == NATS_NOT_FOUND ? StatusCode::kNotFound : StatusCode::kIO;
  return Status(code, fmt::format("{}: {}", what, detail));
}

std::string DataStream(const std::string& stream) { return stream; }
std::string DataSubject(const std::string& stream) { return stream + ".log"; }
std::string CkptStream(const std::string& stream) { return stream + "_CKPT"; }
std::string CkptSubject(const std::string& stream, Epoch epoch) {
  return fmt::format("{}.ckpt.{}", stream, epoch);
}
std::string CkptHead(const std::string& stream) { return stream + ".ckpt.head"; }

Expected<Connection> Connect(const std::string& server, jsOptions* js_options) {
  natsOptions* raw = nullptr;
  if (natsStatus s = natsOptions_Create(&raw); s != NATS_OK) return NatsError(s, "nats options");
  NatsPtr<natsOptions> opts(raw);
  natsOptions_SetURL(opts.get(), server.c_str());
  natsOptions_SetAllowReconnect(opts.get(), true);
  natsOptions_SetMaxReconnect(opts.get(), -1);
  natsOptions_SetReconnectWait(opts.get(), 50);
  natsOptions_SetReconnectBufSize(opts.get(), 64 << 20);
  natsOptions_SetTimeout(opts.get(), 2000);
  natsConnection* nc = nullptr;
  if (natsStatus s = natsConnection_Connect(&nc, opts.get()); s != NATS_OK) {
    return NatsError(s, fmt::format("connecting to {}", server));
  }
  Connection c;
  c.nc.reset(nc);
  jsCtx* js = nullptr;
  if (natsStatus s = natsConnection_JetStream(&js, nc, js_options); s != NATS_OK) {
    return NatsError(s, "JetStream context");
  }
  c.js.reset(js);
  return c;
}

bool UnsubscribeAndSettle(natsConnection* nc, natsSubscription* sub) {
  (void)natsSubscription_Unsubscribe(sub);
  return natsConnection_FlushTimeout(nc, 2000) == NATS_OK;
}

namespace {

Status EnsureStream(jsCtx* js, const std::string& name, const std::string& subject, int replicas,
                    bool rollup) {
  jsStreamInfo* si = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, js, name.c_str(), nullptr, &err);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(si);
    return Status::Ok();
  }
  if (s != NATS_NOT_FOUND) return NatsError(s, fmt::format("stream '{}'", name));
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name.c_str();
  const char* subjects[1] = {subject.c_str()};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = replicas;
  cfg.AllowRollup = rollup;
  cfg.AllowDirect = true;
  s = js_AddStream(&si, js, &cfg, nullptr, &err);
  if (s != NATS_OK) {
    // Another process may have created it meanwhile.
    if (js_GetStreamInfo(&si, js, name.c_str(), nullptr, &err) == NATS_OK) {
      jsStreamInfo_Destroy(si);
      return Status::Ok();
    }
    return NatsError(s, fmt::format("creating stream '{}'", name));
  }
  jsStreamInfo_Destroy(si);
  return Status::Ok();
}

const char* Header(natsMsg* msg, const char* key) {
  const char* v = nullptr;
  if (natsMsgHeader_Get(msg, key, &v) != NATS_OK) return nullptr;
  return v;
}

}  // namespace

Status EnsureStreams(jsCtx* js, const std::string& stream, int replicas) {
  MMSB_RETURN_IF_ERROR(EnsureStream(js, DataStream(stream), DataSubject(stream), replicas, false));
  return EnsureStream(js, CkptStream(stream), stream + ".ckpt.>", replicas, true);
}

std::string Hex16(std::uint64_t v) { return fmt::format("{:016x}", v); }

std::optional<std::uint64_t> ParseU64(const char* s, int base) {
  if (s == nullptr || *s == '\0') return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s, &end, base);
  if (errno != 0 || end == s || *end != '\0' || *s == '-') return std::nullopt;
  return static_cast<std::uint64_t>(v);
}

namespace {

constexpr char kMagic[7] = {'M', 'M', 'S', 'B', 'R', 'P', 'L'};
constexpr std::uint32_t kFlagLast = 1, kFlagHash = 2;

void Put64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void Put32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint64_t Get64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
std::uint32_t Get32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

void EncodeChunkMeta(const ChunkMeta& m, std::uint8_t* out) {
  std::memcpy(out, kMagic, sizeof kMagic);
  out[7] = kWireVersion;
  Put64(out + 8, m.epoch);
  Put64(out + 16, m.log_id);
  Put64(out + 24, m.token);
  Put64(out + 32, m.hash.value_or(0));
  Put32(out + 40, m.chunk);
  Put32(out + 44, (m.last ? kFlagLast : 0) | (m.hash ? kFlagHash : 0));
  Put32(out + 48, m.count);
  Put32(out + 52, 0);
}

void EncodePackEntry(std::uint8_t* out, std::uint32_t index, std::uint32_t length,
                     std::uint64_t hash) {
  std::uint8_t* e = out + kPrefixBytesV3 + kPackEntryBytes * index;
  Put32(e, length);
  Put32(e + 4, 0);
  Put64(e + 8, hash);
}

PackEntry ReadPackEntry(natsMsg* msg, std::uint32_t index) {
  const auto* e = reinterpret_cast<const std::uint8_t*>(natsMsg_GetData(msg)) + kPrefixBytesV3 +
                  kPackEntryBytes * index;
  return PackEntry{Get32(e), Get64(e + 8)};
}

namespace {

// Format 1: the fields in Mmsb-* headers, the records as the whole payload.
Status ReadFormat1(natsMsg* msg, ChunkMeta* m) {
  auto need = [&](const char* key, int base, std::uint64_t* out) -> Status {
    auto v = ParseU64(Header(msg, key), base);
    if (!v) return InvalidArgument(fmt::format("format-1 message has no valid {} header", key));
    *out = *v;
    return Status::Ok();
  };
  std::uint64_t chunk = 0;
  MMSB_RETURN_IF_ERROR(need(kHdrEpoch, 10, &m->epoch));
  MMSB_RETURN_IF_ERROR(need(kHdrChunk, 10, &chunk));
  MMSB_RETURN_IF_ERROR(need(kHdrLogId, 16, &m->log_id));
  MMSB_RETURN_IF_ERROR(need(kHdrToken, 10, &m->token));
  if (chunk > 0xFFFFFFFFu) return InvalidArgument("format-1 message: Mmsb-Chunk out of range");
  m->chunk = static_cast<std::uint32_t>(chunk);
  const char* last = Header(msg, kHdrLast);
  m->last = last != nullptr && std::strcmp(last, "1") == 0;
  m->hash = ParseU64(Header(msg, kHdrHash), 16);
  m->count = 1;
  m->version = 1;
  m->data_offset = 0;
  return Status::Ok();
}

}  // namespace

Status ReadChunkMeta(natsMsg* msg, ChunkMeta* m, bool format1_first) {
  if (format1_first && Header(msg, kHdrEpoch) != nullptr) return ReadFormat1(msg, m);
  const int len = natsMsg_GetDataLength(msg);
  const auto* p = reinterpret_cast<const std::uint8_t*>(natsMsg_GetData(msg));
  if (len < 8 || std::memcmp(p, kMagic, sizeof kMagic) != 0) {
    // Only here are the headers parsed: format 1, or none of ours.
    if (Header(msg, kHdrEpoch) != nullptr) return ReadFormat1(msg, m);
    return InvalidArgument("message is not an MMSB replication chunk (no MMSBRPL prefix)");
  }
  const std::uint8_t version = p[7];
  if (version != 2 && version != 3) {
    return InvalidArgument(fmt::format(
        "message is in replication wire format {}; this MMSB reads formats 1 to {}: upgrade it",
        version, kWireVersion));
  }
  const std::size_t fixed = version == 2 ? kPrefixBytesV2 : kPrefixBytesV3;
  if (static_cast<std::size_t>(len) < fixed) {
    return InvalidArgument(
        fmt::format("message of {} bytes is shorter than its {}-byte prefix", len, fixed));
  }
  const std::uint32_t flags = Get32(p + 44);
  if ((flags & ~(kFlagLast | kFlagHash)) != 0) {
    return InvalidArgument(fmt::format("message prefix has unknown flags {:#x}", flags));
  }
  m->epoch = Get64(p + 8);
  m->log_id = Get64(p + 16);
  m->token = Get64(p + 24);
  m->hash = (flags & kFlagHash) != 0 ? std::optional<std::uint64_t>(Get64(p + 32)) : std::nullopt;
  m->chunk = Get32(p + 40);
  m->last = (flags & kFlagLast) != 0;
  m->version = version;
  m->count = 1;
  m->data_offset = fixed;
  if (version == 2) return Status::Ok();
  m->count = Get32(p + 48);
  if (m->count == 0 || Get32(p + 52) != 0) {
    return InvalidArgument(
        fmt::format("message prefix has an epoch count of {} or reserved bytes", m->count));
  }
  if (m->count == 1) return Status::Ok();
  // A packed message: whole epochs only, each with its hash, lengths adding up.
  if (m->chunk != 0 || !m->last || !m->hash) {
    return InvalidArgument(
        fmt::format("packed message of {} epochs from {} is not one whole chunk with a hash",
                    m->count, m->epoch));
  }
  if (m->epoch + (m->count - 1) < m->epoch) {
    return InvalidArgument(
        fmt::format("packed message: epochs {} + {} overflow", m->epoch, m->count));
  }
  const std::uint64_t table = kPackEntryBytes * static_cast<std::uint64_t>(m->count);
  if (static_cast<std::uint64_t>(len) < kPrefixBytesV3 + table) {
    return InvalidArgument(
        fmt::format("packed message of {} bytes is shorter than its table of {} "
                    "epochs",
                    len, m->count));
  }
  m->data_offset = kPrefixBytesV3 + table;
  std::uint64_t sum = 0;
  for (std::uint32_t i = 0; i < m->count; ++i) {
    const std::uint8_t* e = p + kPrefixBytesV3 + kPackEntryBytes * i;
    if (Get32(e + 4) != 0) return InvalidArgument("packed message: table entry reserved bytes");
    sum += Get32(e);
  }
  if (sum != static_cast<std::uint64_t>(len) - m->data_offset) {
    return InvalidArgument(fmt::format(
        "packed message: its table's {} bytes of groups differ from the {} bytes it carries", sum,
        static_cast<std::uint64_t>(len) - m->data_offset));
  }
  if (Get64(p + kPrefixBytesV3 + kPackEntryBytes * (m->count - 1) + 8) != *m->hash) {
    return InvalidArgument("packed message: the last epoch's hash differs from the prefix's");
  }
  return Status::Ok();
}

Expected<StreamTail> ReadTail(jsCtx* js, const std::string& stream) {
  jsStreamInfo* raw = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&raw, js, DataStream(stream).c_str(), nullptr, &err);
  if (s != NATS_OK) return NatsError(s, fmt::format("stream '{}'", stream));
  NatsPtr<jsStreamInfo> si(raw);
  StreamTail t;
  t.first_seq = si->State.FirstSeq;
  t.last_seq = si->State.LastSeq;
  t.bytes = si->State.Bytes;
  if (si->State.Msgs == 0) return t;
  natsMsg* m = nullptr;
  s = js_GetMsg(&m, js, DataStream(stream).c_str(), t.last_seq, nullptr, &err);
  if (s != NATS_OK) return NatsError(s, fmt::format("stream '{}' message {}", stream, t.last_seq));
  NatsPtr<natsMsg> msg(m);
  ChunkMeta meta;
  if (Status ms = ReadChunkMeta(m, &meta); !ms.ok()) {
    return Corruption(fmt::format("stream '{}' message {}: {}", stream, t.last_seq, ms.message()));
  }
  t.last = meta;
  return t;
}

Expected<std::uint64_t> FirstSeqAfter(jsCtx* js, const std::string& stream, Epoch epoch,
                                      const StreamTail& tail) {
  if (!tail.last || tail.last_seq == 0) return tail.last_seq + 1;
  std::uint64_t lo = tail.first_seq, hi = tail.last_seq + 1;  // answer in [lo, hi]
  while (lo < hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    natsMsg* m = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = js_GetMsg(&m, js, DataStream(stream).c_str(), mid, nullptr, &err);
    if (s != NATS_OK) return NatsError(s, fmt::format("stream '{}' message {}", stream, mid));
    NatsPtr<natsMsg> msg(m);
    ChunkMeta meta;
    MMSB_RETURN_IF_ERROR(ReadChunkMeta(m, &meta));
    if (meta.last_epoch() > epoch) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

}  // namespace mmsb::repl
