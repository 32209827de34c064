#include "runner/store_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>

#include "common/errors.h"
#include "runner/store_protocol.h"

namespace runner {

namespace {

using namespace store_protocol;  // NOLINT: the codec is this file's vocabulary

struct Connection {
  int fd = -1;
  std::string peer;
  Dialect dialect = Dialect::kUndecided;
  std::string in;
  std::string out;
  std::set<std::string> waiting_for;  // keys of the pending WAIT; empty: none pending
  uint64_t wait_seq = 0;              // when that WAIT began (queue items wake the oldest)
  std::set<std::string> watched;      // WATCH_KEY (1.13)
  bool closing = false;
};

}  // namespace

class StoreServer::Impl {
 public:
  Impl(const std::string& address, uint16_t port, LogFn log)
      : address_(address), log_(std::move(log)) {
    Listen(address, port);
    if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
      close(listen_fd_);
      throw common::CommunicationError(std::string("store: cannot create a pipe: ") +
                                       std::strerror(errno));
    }
    thread_ = std::thread([this] { Loop(); });
  }

  ~Impl() {
    stop_ = true;
    char byte = 1;
    (void)!write(wake_[1], &byte, 1);
    if (thread_.joinable()) thread_.join();
    for (auto& [fd, conn] : connections_) close(fd);
    close(listen_fd_);
    close(wake_[0]);
    close(wake_[1]);
  }

  uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }

  std::vector<std::string> DescribeWaits() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [fd, conn] : connections_) {
      if (conn.waiting_for.empty()) continue;
      std::string keys;
      for (const std::string& key : conn.waiting_for) keys += (keys.empty() ? "" : ", ") + key;
      out.push_back(conn.peer + " waits for " + keys);
    }
    return out;
  }

  size_t NumKeys() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return data_.size();
  }

 private:
  void Listen(const std::string& address, uint16_t port) {
    addrinfo hints{};
    hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* result = nullptr;
    const std::string where = "store: cannot listen on " + address + ":" + std::to_string(port);
    int rc = getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &result);
    // getaddrinfo also takes inet_aton's short forms ("10.1" is 10.0.0.1): a typo, not an address.
    in_addr ipv4{};
    if (rc == 0 && address.find(':') == std::string::npos &&
        inet_pton(AF_INET, address.c_str(), &ipv4) != 1) {
      freeaddrinfo(result);
      rc = EAI_NONAME;
    }
    if (rc != 0) {
      throw common::CommunicationError(where + ": '" + address + "' is not an IP address (" +
                                       gai_strerror(rc) + "); set launch.store_addr to one");
    }
    listen_fd_ = socket(result->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int err = errno;
    if (listen_fd_ >= 0) {
      int one = 1;
      setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      const bool ok = bind(listen_fd_, result->ai_addr, result->ai_addrlen) == 0 &&
                      listen(listen_fd_, 1024) == 0;
      err = ok ? 0 : errno;
    }
    if (listen_fd_ < 0 || err != 0) {
      freeaddrinfo(result);
      if (listen_fd_ >= 0) close(listen_fd_);
      throw common::CommunicationError(where + ": " + std::strerror(err) +
                                       (err == EADDRINUSE ? "; use launch.store_port=0" : ""));
    }
    freeaddrinfo(result);
    sockaddr_storage bound{};
    socklen_t len = sizeof(bound);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }

  void Log(const std::string& line) {
    if (log_) log_(line);
  }

  void Loop() {
    while (!stop_) {
      std::vector<pollfd> fds = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
      {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& [fd, conn] : connections_) {
          fds.push_back({fd, static_cast<short>(POLLIN | (conn.out.empty() ? 0 : POLLOUT)), 0});
        }
      }
      if (poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        Log(std::string("store: poll failed: ") + std::strerror(errno));
        return;
      }
      if (fds[1].revents & POLLIN) Accept();
      std::lock_guard<std::mutex> lock(mutex_);
      for (size_t i = 2; i < fds.size(); ++i) {
        auto it = connections_.find(fds[i].fd);
        if (it == connections_.end()) continue;
        Connection& conn = it->second;
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) ReadFrom(conn);
        if (!conn.closing && !conn.out.empty()) Flush(conn);
      }
      for (auto it = connections_.begin(); it != connections_.end();) {
        if (it->second.closing) {
          close(it->first);
          it = connections_.erase(it);
        } else {
          ++it;
        }
      }
    }
  }

  void Accept() {
    while (true) {
      sockaddr_storage peer{};
      socklen_t len = sizeof(peer);
      int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len,
                       SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) return;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      char host[INET6_ADDRSTRLEN] = "?";
      char serv[16] = "?";
      getnameinfo(reinterpret_cast<sockaddr*>(&peer), len, host, sizeof(host), serv, sizeof(serv),
                  NI_NUMERICHOST | NI_NUMERICSERV);
      std::lock_guard<std::mutex> lock(mutex_);
      Connection& conn = connections_[fd];
      conn.fd = fd;
      conn.peer = std::string(host) + ":" + serv;
    }
  }

  void ReadFrom(Connection& conn) {
    char buffer[65536];
    bool ended = false;  // end of stream or a connection error
    while (true) {
      ssize_t n = recv(conn.fd, buffer, sizeof(buffer), 0);
      if (n > 0) {
        conn.in.append(buffer, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) ended = true;
      break;
    }
    // Requests that arrived together with the end of the stream still count: a client may SET a
    // key (no reply) and exit at once.
    while (!conn.closing && Handle(conn)) {
    }
    if (ended) {
      if (!conn.closing) Flush(conn);  // a client that only shut down its sending side still reads
      conn.closing = true;
    }
    if (conn.closing) Unwait(conn);
  }

  void Flush(Connection& conn) {
    while (!conn.out.empty()) {
      ssize_t n = send(conn.fd, conn.out.data(), conn.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        conn.out.erase(0, static_cast<size_t>(n));
      } else {
        if (n < 0 && errno != EAGAIN && errno != EINTR) conn.closing = true;
        return;
      }
    }
  }

  bool Exists(const std::string& key) const {
    if (data_.count(key)) return true;
    auto q = queues_.find(key);
    return q != queues_.end() && !q->second.empty();
  }

  void Unwait(Connection& conn) { conn.waiting_for.clear(); }

  // A key was created or changed: finish the WAITs it completes and tell its watchers. A queue item
  // (wake_one) is for one popper: only the oldest WAIT it completes finishes, as in PyTorch.
  void Touched(const std::string& key, const std::string* old_value, const std::string* new_value,
               bool wake_one = false) {
    std::vector<Connection*> waiters;
    for (auto& [fd, conn] : connections_) {
      if (conn.waiting_for.count(key)) waiters.push_back(&conn);
    }
    std::sort(waiters.begin(), waiters.end(),
              [](const Connection* a, const Connection* b) { return a->wait_seq < b->wait_seq; });
    for (Connection* waiter : waiters) {
      waiter->waiting_for.erase(key);
      if (waiter->waiting_for.empty()) {
        Writer(&waiter->out).Scalar<uint8_t>(0);  // STOP_WAITING
        if (wake_one) break;
      }
    }
    for (auto& [fd, conn] : connections_) {
      if (conn.watched.count(key)) {
        Writer w(&conn.out);
        w.Scalar<uint8_t>(new_value == nullptr ? 2 : old_value == nullptr ? 1 : 0);
        w.Bytes(key);
        w.Bytes(old_value ? *old_value : "");
        w.Bytes(new_value ? *new_value : "");
      }
    }
  }

  void Store(const std::string& key, std::string value) {
    auto it = data_.find(key);
    std::optional<std::string> old;
    if (it != data_.end()) old = it->second;
    data_[key] = std::move(value);
    Touched(key, old ? &*old : nullptr, &data_[key]);
  }

  // Parses and answers one request; false when the buffer holds no complete request or the
  // connection is to be closed.
  bool Handle(Connection& conn) {
    try {
      return HandleOne(conn);
    } catch (const Malformed& e) {
      Log("store: client " + conn.peer + " sent a request with " + e.what() + "; closed");
      conn.closing = true;
      return false;
    }
  }

  bool HandleOne(Connection& conn) {
    if (conn.in.empty()) return false;
    if (conn.dialect == Dialect::kUndecided) {
      // 2.2+ clients open with VALIDATE (byte 0) and the magic; 1.13 never sends 0 then the magic.
      if (static_cast<uint8_t>(conn.in[0]) == 0) {
        if (conn.in.size() < 5) return false;
        uint32_t magic = 0;
        std::memcpy(&magic, conn.in.data() + 1, 4);
        if (magic == kValidationMagic) {
          conn.dialect = Dialect::kV2;
        } else if (magic > kMaxKeyBytes) {
          // Not a 1.13 SET either: those four bytes would be part of its key's length (the low
          // half on little-endian hosts, the high half, 0, on big-endian ones).
          char hex[16];
          std::snprintf(hex, sizeof(hex), "0x%08X", static_cast<unsigned>(magic));
          Log("store: client " + conn.peer + " opened with a wrong validation number " + hex +
              " (expected 0x3C85F7CE); closed");
          conn.closing = true;
          return false;
        } else {
          conn.dialect = Dialect::kV1;
        }
      } else {
        conn.dialect = Dialect::kV1;
      }
    }
    Reader r(conn.in);
    const uint8_t byte = r.Scalar<uint8_t>();
    const Op op = DecodeOp(conn.dialect, byte);
    std::string reply;
    Writer w(&reply);
    // A 1.13 client that timed out in WAIT moves on without cancelling: drop the stale wait.
    if (!conn.waiting_for.empty() && op != Op::kCancelWait) conn.waiting_for.clear();
    switch (op) {
      case Op::kValidate: {
        const uint32_t magic = r.Scalar<uint32_t>();
        if (r.incomplete()) return false;
        if (magic != kValidationMagic) {
          Log("store: client " + conn.peer + " sent a wrong validation number; closed");
          conn.closing = true;
        }
        break;
      }
      case Op::kPing: {
        const uint32_t nonce = r.Scalar<uint32_t>();
        if (r.incomplete()) return false;
        w.Scalar(nonce);
        break;
      }
      case Op::kSet: {
        std::string key = r.Key();
        std::string value = r.Value();
        if (r.incomplete()) return false;
        Store(key, std::move(value));
        break;
      }
      case Op::kCompareSet: {
        std::string key = r.Key();
        std::string expected = r.Value();
        std::string desired = r.Value();
        if (r.incomplete()) return false;
        auto it = data_.find(key);
        if (it == data_.end()) {
          if (expected.empty()) {
            Store(key, desired);
            w.Bytes(desired);
          } else {
            w.Bytes(expected);
          }
        } else {
          if (it->second == expected) Store(key, desired);
          w.Bytes(data_[key]);
        }
        break;
      }
      case Op::kGet: {
        std::string key = r.Key();
        if (r.incomplete()) return false;
        auto it = data_.find(key);
        w.Bytes(it == data_.end() ? std::string() : it->second);
        break;
      }
      case Op::kAdd: {
        std::string key = r.Key();
        const int64_t delta = r.Scalar<int64_t>();
        if (r.incomplete()) return false;
        int64_t value = delta;
        auto it = data_.find(key);
        if (it != data_.end()) {
          try {
            // Wraps around on overflow (as PyTorch's server does in practice) instead of UB.
            value = static_cast<int64_t>(static_cast<uint64_t>(std::stoll(it->second)) +
                                         static_cast<uint64_t>(delta));
          } catch (const std::exception&) {
            Log("store: ADD to key '" + key + "' whose value is not a number; treated as 0");
          }
        }
        Store(key, std::to_string(value));
        w.Scalar<int64_t>(value);
        break;
      }
      case Op::kCheck: {
        std::vector<std::string> keys = r.Keys();
        if (r.incomplete()) return false;
        bool ready = true;
        for (const std::string& key : keys) ready = ready && Exists(key);
        w.Scalar<uint8_t>(ready ? 0 : 1);
        break;
      }
      case Op::kWait: {
        std::vector<std::string> keys = r.Keys();
        if (r.incomplete()) return false;
        for (const std::string& key : keys) {
          if (!Exists(key)) conn.waiting_for.insert(key);
        }
        if (conn.waiting_for.empty()) {
          w.Scalar<uint8_t>(0);
        } else {
          conn.wait_seq = ++wait_counter_;
        }
        break;
      }
      case Op::kCancelWait:
        conn.waiting_for.clear();
        w.Scalar<uint8_t>(1);  // WAIT_CANCELED
        break;
      case Op::kNumKeys:
        w.Scalar<int64_t>(static_cast<int64_t>(data_.size()));
        break;
      case Op::kWatchKey: {
        std::string key = r.Key();
        if (r.incomplete()) return false;
        conn.watched.insert(key);
        w.Scalar<uint8_t>(3);  // CALLBACK_REGISTERED
        break;
      }
      case Op::kDeleteKey: {
        std::string key = r.Key();
        if (r.incomplete()) return false;
        auto it = data_.find(key);
        int64_t deleted = 0;
        if (it != data_.end()) {
          std::string old = it->second;
          data_.erase(it);
          deleted = 1;
          Touched(key, &old, nullptr);
        }
        w.Scalar<int64_t>(deleted);
        break;
      }
      case Op::kAppend: {
        std::string key = r.Key();
        std::string value = r.Value();
        if (r.incomplete()) return false;
        auto it = data_.find(key);
        Store(key, (it == data_.end() ? std::string() : it->second) + value);
        break;
      }
      case Op::kMultiGet: {
        std::vector<std::string> keys = r.Keys();
        if (r.incomplete()) return false;
        for (const std::string& key : keys) {
          auto it = data_.find(key);
          w.Bytes(it == data_.end() ? std::string() : it->second);
        }
        break;
      }
      case Op::kMultiSet: {
        const uint64_t n = r.Scalar<uint64_t>();
        if (!r.incomplete() && n > kMaxKeyCount) {
          throw Malformed("a key count of " + std::to_string(n) + " (at most " +
                          std::to_string(kMaxKeyCount) + ")");
        }
        std::vector<std::pair<std::string, std::string>> items;
        for (uint64_t i = 0; i < n && !r.incomplete(); ++i) {
          std::string key = r.Key();
          std::string value = r.Value();
          items.emplace_back(std::move(key), std::move(value));
        }
        if (r.incomplete()) return false;
        for (auto& [key, value] : items) Store(key, std::move(value));
        break;
      }
      case Op::kQueuePush: {
        std::string key = r.Key();
        std::string value = r.Value();
        if (r.incomplete()) return false;
        queues_[key].push_back(std::move(value));
        Touched(key, nullptr, &queues_[key].back(), /*wake_one=*/true);
        break;
      }
      case Op::kQueuePop: {
        std::string key = r.Key();
        if (r.incomplete()) return false;
        std::deque<std::string>& queue = queues_[key];
        w.Scalar<int64_t>(static_cast<int64_t>(queue.size()));
        if (!queue.empty()) {
          w.Bytes(queue.front());
          queue.pop_front();
        }
        break;
      }
      case Op::kQueueLen: {
        std::string key = r.Key();
        if (r.incomplete()) return false;
        w.Scalar<int64_t>(static_cast<int64_t>(queues_[key].size()));
        break;
      }
      case Op::kList:
        w.Scalar<int64_t>(static_cast<int64_t>(data_.size()));
        for (const auto& [key, value] : data_) w.Bytes(key);
        break;
      case Op::kUnknown:
        Log("store: client " + conn.peer + " sent unknown query type " + std::to_string(byte) +
            " (" + (conn.dialect == Dialect::kV2 ? "PyTorch >= 2.2" : "PyTorch 1.13") +
            " dialect); closing it. Is the worker's PyTorch 2.0 or 2.1? Those are not supported.");
        conn.closing = true;
        return false;
    }
    conn.in.erase(0, r.consumed());
    conn.out += reply;
    return true;
  }

  std::string address_;
  LogFn log_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::map<int, Connection> connections_;
  std::map<std::string, std::string> data_;
  std::map<std::string, std::deque<std::string>> queues_;
  uint64_t wait_counter_ = 0;
  std::thread thread_;
};

StoreServer::StoreServer(const std::string& address, uint16_t port, LogFn log)
    : impl_(std::make_unique<Impl>(address, port, std::move(log))) {}
StoreServer::~StoreServer() = default;
uint16_t StoreServer::port() const { return impl_->port(); }
const std::string& StoreServer::address() const { return impl_->address(); }
std::vector<std::string> StoreServer::DescribeWaits() const { return impl_->DescribeWaits(); }
size_t StoreServer::NumKeys() const { return impl_->NumKeys(); }

}  // namespace runner
