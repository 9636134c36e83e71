// The replication entry points that do not depend on the publisher's internals: the
// "nats://host:port/stream" URL, the durability levels' names, Replicate and ReplicateFromEnv
// (MMSB_REPLICATE).
#include <cctype>
#include <cstdlib>

#include <fmt/format.h>

#include "mmsb/replication.h"

namespace mmsb {

const char* ReplicaDurabilityName(ReplicaDurability d) {
  switch (d) {
    case ReplicaDurability::kAsync:
      return "async";
    case ReplicaDurability::kServerAck:
      return "server_ack";
  }
  return "unknown";
}

Expected<ReplicaUrl> ParseReplicaUrl(const std::string& url) {
  const std::string scheme = "nats://";
  auto bad = [&](const std::string& why) {
    return InvalidArgument(
        fmt::format("replication URL '{}': {} (expected nats://host:port/stream)", url, why));
  };
  if (url.rfind(scheme, 0) != 0) return bad("it does not start with nats://");
  const std::size_t slash = url.find('/', scheme.size());
  if (slash == std::string::npos || slash == scheme.size()) return bad("no stream name");
  ReplicaUrl r;
  r.server = url.substr(0, slash);
  r.stream = url.substr(slash + 1);
  if (const std::size_t q = r.stream.find('?'); q != std::string::npos) r.stream.resize(q);
  if (r.stream.empty()) return bad("no stream name");
  for (char c : r.stream) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return bad(fmt::format("stream names use letters, digits, '-' and '_', not '{}'", c));
    }
  }
  return r;
}

Expected<std::shared_ptr<Replicator>> Replicate(std::shared_ptr<LogSink> log,
                                                const std::string& url,
                                                const ReplicationOptions& options) {
  return Replicator::Start(std::move(log), url, options);
}

Expected<std::shared_ptr<Replicator>> Replicate(std::shared_ptr<LogSink> log,
                                                const std::string& server,
                                                const std::string& stream,
                                                const ReplicationOptions& options) {
  return Replicator::Start(std::move(log), server + "/" + stream, options);
}

Expected<std::shared_ptr<Replicator>> ReplicateFromEnv(std::shared_ptr<LogSink> log,
                                                       const ReplicationOptions& options) {
  const char* v = std::getenv("MMSB_REPLICATE");
  if (v == nullptr || *v == '\0') return std::shared_ptr<Replicator>();
  std::string url = v;
  ReplicationOptions o = options;
  if (const std::size_t q = url.find('?'); q != std::string::npos) {
    const std::string query = url.substr(q + 1);
    if (query == "durability=server_ack") {
      o.durability = ReplicaDurability::kServerAck;
    } else if (query == "durability=async") {
      o.durability = ReplicaDurability::kAsync;
    } else {
      return InvalidArgument(fmt::format(
          "MMSB_REPLICATE='{}': unknown option '{}' (durability=async or durability=server_ack)", v,
          query));
    }
  }
  return Replicator::Start(std::move(log), url, o);
}

}  // namespace mmsb
