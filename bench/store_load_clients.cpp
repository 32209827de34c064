// The load generator's clients (bench/store_load.h): N non-blocking sockets on one epoll set, each
// a small state machine replaying the c10d start-up pattern.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "bench/store_load.h"
#include "runner/store_protocol.h"

namespace store_load {

namespace {

using Clock = std::chrono::steady_clock;
using runner::store_protocol::Writer;

const std::string kCounter = "load/count";
const std::string kRelease = "load/release";
const std::string kGo = "go";

std::string ConfigKey(int i) { return "load/config/" + std::to_string(i); }
std::string ConfigValue(int i) { return "value-" + std::to_string(i) + std::string(40, '.'); }

// Query bytes of the two dialects.
struct Codes {
  uint8_t set, get, add, wait;
};
Codes CodesOf(Dialect d) { return d == Dialect::kV1 ? Codes{0, 2, 3, 5} : Codes{1, 3, 4, 6}; }

std::string Validate() {
  std::string out;
  Writer(&out).Scalar<uint8_t>(0);
  Writer(&out).Scalar<uint32_t>(0x3C85F7CE);
  return out;
}
std::string KeyRequest(uint8_t code, const std::string& key) {
  std::string out;
  Writer(&out).Scalar<uint8_t>(code);
  Writer(&out).Bytes(key);
  return out;
}
std::string SetRequest(Dialect d, const std::string& key, const std::string& value) {
  std::string out = KeyRequest(CodesOf(d).set, key);
  Writer(&out).Bytes(value);
  return out;
}
std::string AddRequest(Dialect d, const std::string& key) {
  std::string out = KeyRequest(CodesOf(d).add, key);
  Writer(&out).Scalar<int64_t>(1);
  return out;
}
std::string WaitRequest(Dialect d, const std::string& key) {
  std::string out;
  Writer(&out).Scalar<uint8_t>(CodesOf(d).wait);
  Writer(&out).Scalar<uint64_t>(1);
  Writer(&out).Bytes(key);
  return out;
}

sockaddr_in Loopback(int last_byte, uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl((127u << 24) | static_cast<uint32_t>(last_byte));
  return addr;
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Sets the configuration keys (at least one) over one blocking connection; the GET of the last
// one makes sure the server has stored them all before the clients start.
void SetConfigKeys(uint16_t port, const RunConfig& config) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  const sockaddr_in server = Loopback(1, port);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof(server)) != 0) {
    close(fd);
    throw std::runtime_error(Errno("store_load: connecting to 127.0.0.1:" + std::to_string(port)));
  }
  std::string out = config.dialect == Dialect::kV2 ? Validate() : "";
  for (int i = 0; i < config.config_keys; ++i) {
    out += SetRequest(config.dialect, ConfigKey(i), ConfigValue(i));
  }
  const int last = config.config_keys - 1;
  out += KeyRequest(CodesOf(config.dialect).get, ConfigKey(last));
  const bool sent = send(fd, out.data(), out.size(), MSG_NOSIGNAL) == ssize_t(out.size());
  uint64_t length = 0;
  const bool answered =
      sent && recv(fd, &length, 8, MSG_WAITALL) == 8 && length == ConfigValue(last).size();
  close(fd);
  if (!answered) {
    throw std::runtime_error("store_load: the server at 127.0.0.1:" + std::to_string(port) +
                             " did not answer the set-up requests");
  }
}

enum class Step { kConnecting, kAdd, kWait, kGets, kDone, kFailed };

struct Client {
  int fd = -1;
  Step step = Step::kConnecting;
  int gets_answered = 0;
  std::string in;
  std::string out;  // bytes the socket did not take yet
};

class Load {
 public:
  Load(uint16_t port, const RunConfig& config)
      : port_(port), config_(config), clients_(config.clients), add_seen_(config.clients + 1) {
    expected_gets_ = {std::to_string(config.clients), kGo};
    for (int i = 0; i < config.config_keys; ++i) expected_gets_.push_back(ConfigValue(i));
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  }
  ~Load() {
    for (Client& c : clients_) {
      if (c.fd < 0) continue;
      linger reset{1, 0};  // no TIME_WAIT left behind for the next run
      setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
      close(c.fd);
    }
    close(epoll_fd_);
  }

  RunResult Run() {
    cpu_at_start_ = CpuSeconds(config_.server_pid);
    start_ = Clock::now();
    const auto deadline = start_ + std::chrono::duration<double>(config_.timeout_s);
    std::vector<epoll_event> events(1024);
    StartConnects();
    while (done_ + failed_ < config_.clients && Clock::now() < deadline) {
      const int n = epoll_wait(epoll_fd_, events.data(), int(events.size()), 100);
      if (n < 0 && errno != EINTR) throw std::runtime_error(Errno("store_load: epoll_wait"));
      for (int i = 0; i < n; ++i) OnEvent(clients_[events[i].data.u32], events[i].events);
      StartConnects();
    }
    RunResult result = Result();
    const double cpu_after_barrier = CpuSeconds(config_.server_pid);
    result.server_cpu_s = cpu_after_barrier - cpu_at_start_;
    if (result.done == config_.clients && config_.round_trips > 0) {
      result.round_trip_us = RoundTrips(clients_[0]);
      if (result.round_trip_us < 0) result.first_error = "client 0: a round trip failed";
      result.round_trip_cpu_us =
          (CpuSeconds(config_.server_pid) - cpu_after_barrier) * 1e6 / config_.round_trips;
    }
    return result;
  }

 private:
  double Since(Clock::time_point t) const {
    return std::chrono::duration<double>(t - start_).count();
  }

  RunResult Result() {
    RunResult r;
    r.done = done_;
    r.failed = config_.clients - done_;
    r.first_error = first_error_;
    if (r.failed > 0 && r.first_error.empty()) {
      r.first_error = "timed out after " + std::to_string(config_.timeout_s) +
                      " s: " + std::to_string(connected_) + " connected, " +
                      std::to_string(released_) + " released, " + std::to_string(done_) + " done";
    }
    r.connect_s = Since(last_connected_);
    r.barrier_s = Since(last_released_);
    r.total_s = Since(last_done_);
    return r;
  }

  // The median microseconds of a GET of client `c`, sent one after another (the median: this
  // machine is shared, and a mean follows its stalls); -1 when one fails.
  double RoundTrips(Client& c) {
    const std::string request = KeyRequest(CodesOf(config_.dialect).get, ConfigKey(0));
    const size_t reply_size = 8 + ConfigValue(0).size();
    std::vector<double> micros;
    for (int i = 0; i < config_.round_trips; ++i) {
      const auto began = Clock::now();
      if (send(c.fd, request.data(), request.size(), MSG_NOSIGNAL) != ssize_t(request.size())) {
        return -1;
      }
      char reply[256];
      for (size_t got = 0; got < reply_size;) {
        const ssize_t n = recv(c.fd, reply, sizeof(reply), 0);
        if (n > 0) {
          got += size_t(n);
          continue;
        }
        pollfd ready{c.fd, POLLIN, 0};
        if ((n < 0 && errno != EAGAIN && errno != EINTR) || n == 0 || poll(&ready, 1, 5000) != 1) {
          return -1;
        }
      }
      micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - began).count());
    }
    std::nth_element(micros.begin(), micros.begin() + long(micros.size() / 2), micros.end());
    return micros[micros.size() / 2];
  }

  void StartConnects() {
    while (connecting_ < config_.max_connecting && next_ < config_.clients) {
      const uint32_t index = uint32_t(next_++);
      Client& c = clients_[index];
      ++connecting_;  // until Connected or Fail
      c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c.fd < 0) return Fail(c, Errno("socket"));
      int one = 1;
      setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
      setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      const sockaddr_in source = Loopback(2 + int(index) % config_.source_addresses, 0);
      const sockaddr_in server = Loopback(1, port_);
      if (bind(c.fd, reinterpret_cast<const sockaddr*>(&source), sizeof(source)) != 0) {
        return Fail(c, Errno("bind to a loopback source address"));
      }
      const int rc = connect(c.fd, reinterpret_cast<const sockaddr*>(&server), sizeof(server));
      if (rc != 0 && errno != EINPROGRESS) return Fail(c, Errno("connect"));
      epoll_event ev{};
      ev.events = EPOLLOUT;
      ev.data.u32 = index;
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &ev);
    }
  }

  void OnEvent(Client& c, uint32_t events) {
    if (c.step == Step::kConnecting) return Connected(c);
    if (events & EPOLLOUT) Send(c, "");
    if (c.step != Step::kFailed && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) Readable(c);
  }

  void Connected(Client& c) {
    --connecting_;
    c.step = Step::kAdd;
    int error = 0;
    socklen_t len = sizeof(error);
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &len);
    if (error != 0) return Fail(c, std::string("connect: ") + std::strerror(error));
    ++connected_;
    last_connected_ = Clock::now();
    Watch(c, EPOLLIN);
    Send(c, (config_.dialect == Dialect::kV2 ? Validate() : "") +
                AddRequest(config_.dialect, kCounter));
  }

  void Watch(Client& c, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u32 = uint32_t(&c - clients_.data());
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void Send(Client& c, const std::string& bytes) {
    const bool was_blocked = !c.out.empty();
    c.out += bytes;
    while (!c.out.empty()) {
      const ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.out.erase(0, size_t(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        break;
      } else {
        return Fail(c, Errno("send"));
      }
    }
    if (was_blocked != !c.out.empty())
      Watch(c, EPOLLIN | (c.out.empty() ? 0u : uint32_t{EPOLLOUT}));
  }

  void Readable(Client& c) {
    char buffer[4096];
    while (true) {
      const ssize_t n = recv(c.fd, buffer, sizeof(buffer), 0);
      if (n > 0) {
        c.in.append(buffer, size_t(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
      return Fail(c, n == 0 ? "the server closed the connection" : Errno("recv"));
    }
    while (c.step != Step::kDone && c.step != Step::kFailed && Consume(c)) {
    }
  }

  // Takes one reply of the current step from `c.in`; false when it is not complete yet.
  bool Consume(Client& c) {
    switch (c.step) {
      case Step::kAdd:
        return c.in.size() >= 8 && TakeAdd(c);
      case Step::kWait:
        return !c.in.empty() && TakeWait(c);
      case Step::kGets:
        return TakeGet(c);
      default:
        return false;
    }
  }

  bool TakeAdd(Client& c) {
    int64_t value = 0;
    std::memcpy(&value, c.in.data(), 8);
    c.in.erase(0, 8);
    if (value < 1 || value > config_.clients || add_seen_[size_t(value)]) {
      Fail(c, "ADD returned " + std::to_string(value) + " (expected 1.." +
                  std::to_string(config_.clients) + ", each once)");
      return false;
    }
    add_seen_[size_t(value)] = 1;
    c.step = Step::kWait;
    const bool last = value == config_.clients;
    Send(c, (last ? SetRequest(config_.dialect, kRelease, kGo) : "") +
                WaitRequest(config_.dialect, kRelease));
    return true;
  }

  bool TakeWait(Client& c) {
    const uint8_t reply = uint8_t(c.in[0]);
    c.in.erase(0, 1);
    if (reply != 0) {
      Fail(c, "WAIT answered " + std::to_string(reply) + " (expected 0, STOP_WAITING)");
      return false;
    }
    ++released_;
    last_released_ = Clock::now();
    c.step = Step::kGets;
    const uint8_t get = CodesOf(config_.dialect).get;
    std::string out = KeyRequest(get, kCounter) + KeyRequest(get, kRelease);
    for (int i = 0; i < config_.config_keys; ++i) out += KeyRequest(get, ConfigKey(i));
    Send(c, out);
    return true;
  }

  bool TakeGet(Client& c) {
    uint64_t length = 0;
    if (c.in.size() < 8) return false;
    std::memcpy(&length, c.in.data(), 8);
    if (c.in.size() < 8 + length) return false;
    const std::string value = c.in.substr(8, length);
    c.in.erase(0, 8 + length);
    const std::string& expected = expected_gets_[size_t(c.gets_answered)];
    if (value != expected) {
      Fail(c, "GET #" + std::to_string(c.gets_answered + 1) + " returned '" + value.substr(0, 64) +
                  "' (expected '" + expected + "')");
      return false;
    }
    if (++c.gets_answered == int(expected_gets_.size())) {
      c.step = Step::kDone;
      ++done_;
      last_done_ = Clock::now();
    }
    return true;
  }

  void Fail(Client& c, const std::string& why) {
    if (c.step == Step::kConnecting) --connecting_;
    if (c.step == Step::kFailed || c.step == Step::kDone) return;
    c.step = Step::kFailed;
    ++failed_;
    if (first_error_.empty()) {
      first_error_ = "client " + std::to_string(&c - clients_.data()) + ": " + why;
    }
    if (c.fd >= 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  }

  uint16_t port_;
  RunConfig config_;
  int epoll_fd_ = -1;
  std::vector<Client> clients_;
  std::vector<uint8_t> add_seen_;
  std::vector<std::string> expected_gets_;
  int next_ = 0, connecting_ = 0, connected_ = 0, released_ = 0, done_ = 0, failed_ = 0;
  std::string first_error_;
  double cpu_at_start_ = 0;
  Clock::time_point start_, last_connected_, last_released_, last_done_;
};

}  // namespace

RunResult RunClients(uint16_t port, const RunConfig& config) {
  SetConfigKeys(port, config);
  Load load(port, config);
  return load.Run();
}

}  // namespace store_load
