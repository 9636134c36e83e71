// Test fixtures for replication: a private nats-server (JetStream, file store in a temporary
// directory, a free loopback port) that a test can kill -9 and restart, and a loopback TCP proxy
// that delays every byte. Tests skip, saying why, when nats-server is not installed.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

namespace mmsb::testing {

inline std::string FindNatsServer() {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/bin:/usr/sbin";
  p += ":/usr/sbin:/usr/bin";
  std::size_t at = 0;
  while (at <= p.size()) {
    const std::size_t end = std::min(p.find(':', at), p.size());
    const std::string cand = p.substr(at, end - at) + "/nats-server";
    if (::access(cand.c_str(), X_OK) == 0) return cand;
    at = end + 1;
  }
  return {};
}

inline int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

inline bool PortAccepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// nats-server -js -a 127.0.0.1 -p <free port> -sd <temp dir>, stopped at destruction.
class NatsServer {
 public:
  NatsServer() : binary_(FindNatsServer()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mmsb-nats-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) dir_ = tmpl;
    port_ = FreeLoopbackPort();
  }
  ~NatsServer() {
    Stop();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  bool available() const { return !binary_.empty(); }
  // When the caller runs at a real-time priority (bench/run --realtime), start the server one
  // priority above it, as if it had a host of its own: at an equal SCHED_FIFO priority, which
  // never preempts, its threads wait behind the caller's leader and follower threads
  // (docs/Replication.md, "The server's priority"). No effect on a caller at SCHED_OTHER.
  void set_above_caller(bool above) { above_caller_ = above; }
  // Starts (or restarts, same port and store) and waits until it accepts connections.
  bool Start() {
    if (binary_.empty() || pid_ > 0) return false;
    const std::string port = std::to_string(port_);
    pid_ = ::fork();
    if (pid_ == 0) {
      // Its own log file; no inherited stdout, which would keep a caller's pipe open.
      const int devnull = ::open("/dev/null", O_RDWR);
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      if (above_caller_) RaiseRealTimePriority();
      const std::string log = dir_ + "/server.log";
      ::execl(binary_.c_str(), binary_.c_str(), "-js", "-a", "127.0.0.1", "-p", port.c_str(), "-sd",
              dir_.c_str(), "-l", log.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 500; ++i) {
      if (PortAccepts(port_)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  void Kill9() { Signal(SIGKILL); }
  void Stop() { Signal(SIGTERM); }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string server() const { return fmt::format("nats://127.0.0.1:{}", port_); }
  std::string Url(const std::string& stream) const { return server() + "/" + stream; }

 private:
  static void RaiseRealTimePriority() {
    const int policy = ::sched_getscheduler(0);
    sched_param sp{};
    if ((policy != SCHED_FIFO && policy != SCHED_RR) || ::sched_getparam(0, &sp) != 0) return;
    if (sp.sched_priority < ::sched_get_priority_max(policy)) ++sp.sched_priority;
    (void)::sched_setscheduler(0, policy, &sp);  // best effort: unchanged if refused
  }
  void Signal(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
  }
  std::string binary_;
  std::string dir_;
  int port_ = -1;
  pid_t pid_ = -1;
  bool above_caller_ = false;
};

// Forwards loopback connections to `target_port`, holding every chunk of bytes for `delay_ms`
// in each direction (a slow network between follower and server).
class DelayProxy {
 public:
  DelayProxy(int target_port, int delay_ms) : target_(target_port), delay_ms_(delay_ms) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(listen_fd_, 16);
    accept_ = std::thread([this] { Accept(); });
  }
  ~DelayProxy() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    if (accept_.joinable()) accept_.join();
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    for (auto& t : pumps_) t.join();
    for (int fd : fds_) ::close(fd);
  }
  int port() const { return port_; }
  // Closes every connection made so far, dropping the bytes held back in either direction (a
  // network cut): what the server sent and the proxy still delays never reaches the client. New
  // connections are accepted as before.
  void Cut() {
    std::lock_guard<std::mutex> l(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
  }

 private:
  void Accept() {
    for (;;) {
      const int c = ::accept(listen_fd_, nullptr, nullptr);
      if (c < 0 || stop_) return;
      const int s = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<std::uint16_t>(target_));
      if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(c);
        ::close(s);
        continue;
      }
      std::lock_guard<std::mutex> l(mu_);
      fds_.push_back(c);
      fds_.push_back(s);
      pumps_.emplace_back([this, c, s] { Pump(c, s); });
      pumps_.emplace_back([this, s, c] { Pump(s, c); });
    }
  }
  void Pump(int from, int to) {
    std::vector<char> buf(1 << 16);
    for (;;) {
      const ssize_t n = ::read(from, buf.data(), buf.size());
      if (n <= 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
      ssize_t done = 0;
      while (done < n) {
        const ssize_t w = ::write(to, buf.data() + done, static_cast<std::size_t>(n - done));
        if (w <= 0) return;
        done += w;
      }
    }
    ::shutdown(to, SHUT_WR);
  }
  int target_;
  int delay_ms_;
  int listen_fd_ = -1;
  int port_ = -1;
  std::atomic<bool> stop_{false};
  std::mutex mu_;  // fds_ (Cut runs on the test's thread)
  std::thread accept_;
  std::vector<int> fds_;
  std::vector<std::thread> pumps_;
};

}  // namespace mmsb::testing
