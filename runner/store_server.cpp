#include "runner/store_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "common/errors.h"
#include "runner/store_connection.h"
#include "runner/store_state.h"

namespace runner {

class StoreServer::Impl {
 public:
  Impl(const std::string& address, uint16_t port, LogFn log)
      : address_(address), log_(std::move(log)), state_(log_) {
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
    for (const auto& [fd, missing] : state_.Waits()) {
      std::string keys;
      for (const std::string& key : missing) keys += (keys.empty() ? "" : ", ") + key;
      auto conn = connections_.find(fd);
      out.push_back((conn == connections_.end() ? "?" : conn->second.peer) + " waits for " + keys);
    }
    return out;
  }

  size_t NumKeys() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return state_.NumKeys();
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
        StoreConnection& conn = it->second;
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) ReadFrom(conn);
        if (!conn.closing && !conn.out.empty()) Flush(conn);
      }
      for (auto it = connections_.begin(); it != connections_.end();) {
        if (it->second.closing) {
          state_.Disconnect(it->first);
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
      StoreConnection& conn = connections_[fd];
      conn.id = fd;
      conn.peer = std::string(host) + ":" + serv;
    }
  }

  void ReadFrom(StoreConnection& conn) {
    char buffer[65536];
    bool ended = false;  // end of stream or a connection error
    while (true) {
      ssize_t n = recv(conn.id, buffer, sizeof(buffer), 0);
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
    Deliver(ServeRequests(conn, state_, log_));
    if (ended) {
      if (!conn.closing) Flush(conn);  // a client that only shut down its sending side still reads
      conn.closing = true;
    }
    if (conn.closing) state_.Disconnect(conn.id);
  }

  void Deliver(const StoreState::Replies& replies) {
    for (const StoreState::Reply& reply : replies) {
      auto it = connections_.find(reply.to);
      if (it != connections_.end()) it->second.out += reply.bytes;
    }
  }

  void Flush(StoreConnection& conn) {
    while (!conn.out.empty()) {
      ssize_t n = send(conn.id, conn.out.data(), conn.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        conn.out.erase(0, static_cast<size_t>(n));
      } else {
        if (n < 0 && errno != EAGAIN && errno != EINTR) conn.closing = true;
        return;
      }
    }
  }

  std::string address_;
  LogFn log_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::map<int, StoreConnection> connections_;
  StoreState state_;
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
