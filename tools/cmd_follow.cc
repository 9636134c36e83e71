// `mmsb follow nats://host:port/stream [--out DIR] [--serve SOCKET]`: a replication follower.
// All logic is in mmsb::replication (replication/); this file parses flags and prints.
#include <cstdio>
#include <string>

#include "command.h"

#if MMSB_HAVE_REPLICATION
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "mmsb/replication.h"

#include "log_cli.h"
#endif

namespace mmsb::cli {
namespace {

struct FollowArgs {
  std::string url;
  std::string out;
  std::string serve;
  std::string until;
  std::int64_t idle_ms = 0;
  bool no_hash = false;
  bool quiet = false;
};

#if MMSB_HAVE_REPLICATION

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

// Answers every connection on a Unix socket with the follower's current state as JSON (the
// `mmsb replay --json` format), then closes it: a local reader's view of the replica.
class StateServer {
 public:
  StateServer(const Follower& f, std::string path) : follower_(f), path_(std::move(path)) {}
  ~StateServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  Status Start() {
    sockaddr_un addr{};
    if (path_.size() >= sizeof addr.sun_path) return InvalidArgument("--serve: path too long");
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size());
    ::unlink(path_.c_str());
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 16) != 0) {
      return IOError(
          fmt::format("--serve: cannot listen on '{}': {}", path_, std::strerror(errno)));
    }
    thread_ = std::thread([this] { Loop(); });
    return Status::Ok();
  }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      const std::string json = LogStateToJson(follower_.Snapshot(), nullptr, false) + "\n";
      std::size_t done = 0;
      while (done < json.size()) {
        const ssize_t n = ::write(c, json.data() + done, json.size() - done);
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
      }
      ::close(c);
    }
  }
  const Follower& follower_;
  std::string path_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

int Run(const FollowArgs& a) {
  Epoch until = kLatestEpoch;
  if (!a.until.empty()) {
    if (int rc = EpochFlag("--until", a.until, true, &until); rc != 0) return rc;
  }
  // Local arguments are checked before connecting, so their errors name them.
  std::error_code ec;
  if (!a.out.empty() && std::filesystem::exists(a.out, ec) &&
      !std::filesystem::is_directory(a.out, ec)) {
    return Fail(fmt::format("--out: '{}' is a file; the replica log is a directory", a.out));
  }
  if (!a.serve.empty()) {
    const std::filesystem::path parent = std::filesystem::path(a.serve).parent_path();
    if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
      return Fail(fmt::format("--serve: no directory '{}' for the socket", parent.string()));
  }
  FollowOptions o;
  o.out_dir = a.out;
  o.check_hash = !a.no_hash;
  auto f = Follower::Open(a.url, o);
  if (!f.ok()) {
    const std::string m = f.status().ToString();
    return Fail(m.find(a.url) != std::string::npos ? m : fmt::format("'{}': {}", a.url, m));
  }
  std::unique_ptr<StateServer> server;
  if (!a.serve.empty()) {
    server = std::make_unique<StateServer>(**f, a.serve);
    if (Status s = server->Start(); !s.ok()) return Fail(s.ToString());
  }
  ::signal(SIGINT, OnSignal);
  ::signal(SIGTERM, OnSignal);
  if (!a.quiet) {
    const FollowStats s = (*f)->stats();
    std::fprintf(stderr, "following %s from epoch %llu%s\n", a.url.c_str(),
                 static_cast<unsigned long long>(s.epoch),
                 s.checkpoint_epoch ? " (checkpoint)" : "");
  }
  auto last_progress = std::chrono::steady_clock::now();
  Epoch last = (*f)->epoch();
  int rc = 0;
  while (!g_stop && (until == kLatestEpoch || last < until)) {
    auto e = (*f)->Poll(100);
    if (!e.ok()) {
      rc = Fail(e.status().ToString());
      break;
    }
    if (*e != last) {
      last = *e;
      last_progress = std::chrono::steady_clock::now();
    } else if (a.idle_ms > 0 && std::chrono::steady_clock::now() - last_progress >
                                    std::chrono::milliseconds(a.idle_ms)) {
      break;
    }
  }
  const FollowStats s = (*f)->stats();
  std::printf(
      "epoch %llu, state hash %016llx: %llu epochs applied, %llu hashes checked, %llu "
      "divergences, %llu duplicates ignored, %llu partial epochs dropped\n",
      static_cast<unsigned long long>(s.epoch),
      static_cast<unsigned long long>((*f)->state().ReplicaHash()),
      static_cast<unsigned long long>(s.epochs_applied),
      static_cast<unsigned long long>(s.hashes_checked),
      static_cast<unsigned long long>(s.divergences), static_cast<unsigned long long>(s.duplicates),
      static_cast<unsigned long long>(s.partial_dropped));
  if (rc == 0 && until != kLatestEpoch && last < until) {
    return Fail(fmt::format("stopped at epoch {} before epoch {} (idle for {} ms)", last, until,
                            a.idle_ms));
  }
  return rc;
}

#else

int Run(const FollowArgs&) {
  return Fail(
      "this mmsb was built without replication (libnats-dev was not found; install it and "
      "reconfigure with -DMMSB_WITH_REPLICATION=ON)");
}

#endif

void AddFollow(CLI::App& app) {
  static FollowArgs a;
  CLI::App* sub =
      app.add_subcommand("follow", "follow a replicated log (NATS JetStream) to the same state");
  sub->add_option("url", a.url, "nats://host:port/stream")->required();
  sub->add_option("--out", a.out,
                  "keep a replica log in DIR (resumed from on restart; every mmsb command reads "
                  "it)");
  sub->add_option("--serve", a.serve,
                  "answer each connection on Unix socket PATH with the current state as JSON");
  sub->add_option("--until", a.until, "stop once this epoch is applied");
  sub->add_option("--idle-exit", a.idle_ms, "stop after MS milliseconds without a new epoch")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--no-hash", a.no_hash, "do not check the leader's state hash per epoch");
  sub->add_flag("-q,--quiet", a.quiet, "no progress on stderr");
  SetAction(sub, [] { return Run(a); });
}

const CommandRegistrar kRegistrar(AddFollow);

}  // namespace
}  // namespace mmsb::cli
