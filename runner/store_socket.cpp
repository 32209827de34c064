#include "runner/store_socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/errors.h"

namespace runner::store_socket {

namespace {

// Inherited by every accepted connection (see Listen).
void SetUpConnections(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  int idle = 60, interval = 10, count = 6;
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
}

}  // namespace

int Listen(const std::string& address, uint16_t port, uint16_t* bound_port) {
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
  const int fd = socket(result->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int err = errno;
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    SetUpConnections(fd);
    const bool ok =
        bind(fd, result->ai_addr, result->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0;
    err = ok ? 0 : errno;
  }
  freeaddrinfo(result);
  if (fd < 0 || err != 0) {
    if (fd >= 0) close(fd);
    throw common::CommunicationError(where + ": " + std::strerror(err) +
                                     (err == EADDRINUSE ? "; use launch.store_port=0" : ""));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  *bound_port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return fd;
}

std::string PeerName(const sockaddr_storage& peer, socklen_t length) {
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (peer.ss_family == AF_INET && length >= sizeof(sockaddr_in)) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&peer);
    inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
    port = ntohs(v4->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (peer.ss_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&peer);
    port = ntohs(v6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
      inet_ntop(AF_INET, v6->sin6_addr.s6_addr + 12, host, sizeof(host));
      return std::string(host) + ":" + std::to_string(port);
    }
    inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  return "?";
}

void CloseAtOnce(int fd) {
  linger reset{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  close(fd);
}

uint64_t RaiseOpenFilesLimit(uint64_t wanted) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= wanted) return limit.rlim_cur;
  const rlim_t raised =
      limit.rlim_max == RLIM_INFINITY ? wanted : std::min<rlim_t>(wanted, limit.rlim_max);
  if (raised > limit.rlim_cur) {
    rlimit next = limit;
    next.rlim_cur = raised;
    if (setrlimit(RLIMIT_NOFILE, &next) == 0) return raised;
  }
  return limit.rlim_cur;
}

bool SendSome(int fd, std::string& out) {
  while (!out.empty()) {
    const ssize_t n = send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    if (n <= 0) return !(n < 0 && errno != EAGAIN && errno != EINTR);
    out.erase(0, static_cast<size_t>(n));
  }
  return true;
}

std::string Unwatched() {
  return std::string("the store cannot watch it (epoll_ctl: ") + std::strerror(errno) +
         "); after 'No space left on device', raise fs.epoll.max_user_watches";
}

}  // namespace runner::store_socket
