#pragma once
// Shared by the store server's socket tests (tests/store/store_server_*_test.cpp): a raw-socket
// client that speaks both TCPStore wire dialects byte by byte, the request encoders, a log sink,
// and the fixture of the tests run in both dialects. Every read is bounded (about 5 s) and names
// what it waited for, so a server that fails to answer makes a test fail, never hang.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <future>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "runner/store_server.h"

namespace store_test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kReadTimeout = 5s;
constexpr auto kQuiet = 200ms;  // how long "no reply" is watched for

inline std::string Hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    if (!out.empty()) out += ' ';
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out.empty() ? "(nothing)" : out;
}

// ---- Request and reply encoding (raw host-order integers, u64-length-prefixed strings) ----

struct Bytes {
  std::string data;
  template <typename T>
  Bytes& Raw(T value) {
    data.append(reinterpret_cast<const char*>(&value), sizeof(T));
    return *this;
  }
  Bytes& U8(uint8_t v) { return Raw(v); }
  Bytes& U32(uint32_t v) { return Raw(v); }
  Bytes& U64(uint64_t v) { return Raw(v); }
  Bytes& I64(int64_t v) { return Raw(v); }
  Bytes& Str(const std::string& s) {
    U64(s.size());
    data += s;
    return *this;
  }
  Bytes& Keys(const std::vector<std::string>& keys) {
    U64(keys.size());
    for (const std::string& key : keys) Str(key);
    return *this;
  }
  Bytes& Append(const Bytes& other) {
    data += other.data;
    return *this;
  }
};

// Query bytes of one dialect. The 1.13 dialect has no PING/queues/LIST; the 2.2+ one no WATCH_KEY.
struct Dialect {
  const char* name;
  bool validate;  // opens with VALIDATE + magic
  uint8_t set, compare_set, get, add, check, wait, num_keys, delete_key, append, multi_get,
      multi_set, cancel_wait;
  uint8_t first_unknown;
};

inline void PrintTo(const Dialect& d, std::ostream* os) { *os << d.name; }

constexpr uint32_t kMagic = 0x3C85F7CE;
const Dialect kV113{"pytorch_1_13", false, 0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13};
const Dialect kV22{"pytorch_2_2", true, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 18};
constexpr uint8_t kV113WatchKey = 7;
constexpr uint8_t kV22Validate = 0, kV22Ping = 13, kV22QueuePush = 14, kV22QueuePop = 15,
                  kV22QueueLen = 16, kV22List = 17;
constexpr uint8_t kStopWaiting = 0, kWaitCanceled = 1, kReady = 0, kNotReady = 1;

struct Ops {
  const Dialect& d;
  Bytes Set(const std::string& k, const std::string& v) const {
    return Bytes().U8(d.set).Str(k).Str(v);
  }
  Bytes Get(const std::string& k) const { return Bytes().U8(d.get).Str(k); }
  Bytes Add(const std::string& k, int64_t delta) const {
    return Bytes().U8(d.add).Str(k).I64(delta);
  }
  Bytes Check(const std::vector<std::string>& keys) const { return Bytes().U8(d.check).Keys(keys); }
  Bytes Wait(const std::vector<std::string>& keys) const { return Bytes().U8(d.wait).Keys(keys); }
  Bytes NumKeys() const { return Bytes().U8(d.num_keys); }
  Bytes Delete(const std::string& k) const { return Bytes().U8(d.delete_key).Str(k); }
  Bytes CompareSet(const std::string& k, const std::string& expected,
                   const std::string& desired) const {
    return Bytes().U8(d.compare_set).Str(k).Str(expected).Str(desired);
  }
  Bytes AppendOp(const std::string& k, const std::string& v) const {
    return Bytes().U8(d.append).Str(k).Str(v);
  }
  Bytes MultiGet(const std::vector<std::string>& keys) const {
    return Bytes().U8(d.multi_get).Keys(keys);
  }
  Bytes MultiSet(const std::vector<std::pair<std::string, std::string>>& items) const {
    Bytes b;
    b.U8(d.multi_set).U64(items.size());
    for (const auto& [k, v] : items) b.Str(k).Str(v);
    return b;
  }
  Bytes CancelWait() const { return Bytes().U8(d.cancel_wait); }
};

// ---- A raw TCP client with bounded reads ----

class Client {
 public:
  // Connects or returns the errno of the failure (connect bounded by 5 s).
  static std::pair<std::unique_ptr<Client>, int> TryConnect(const std::string& host,
                                                            uint16_t port) {
    sockaddr_storage addr{};
    socklen_t len = 0;
    int family = AF_INET;
    if (host.find(':') != std::string::npos) {
      family = AF_INET6;
      auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
      a6->sin6_family = AF_INET6;
      a6->sin6_port = htons(port);
      if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) != 1)
        throw std::runtime_error("bad host " + host);
      len = sizeof(sockaddr_in6);
    } else {
      auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
      a4->sin_family = AF_INET;
      a4->sin_port = htons(port);
      if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) != 1)
        throw std::runtime_error("bad host " + host);
      len = sizeof(sockaddr_in);
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return {nullptr, errno};
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      if (errno != EINPROGRESS) {
        const int err = errno;
        close(fd);
        return {nullptr, err};
      }
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, 5000) != 1) {
        close(fd);
        return {nullptr, ETIMEDOUT};
      }
      int err = 0;
      socklen_t err_len = sizeof(err);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
      if (err != 0) {
        close(fd);
        return {nullptr, err};
      }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return {std::unique_ptr<Client>(new Client(fd)), 0};
  }

  static std::unique_ptr<Client> Connect(uint16_t port, const std::string& host = "127.0.0.1") {
    auto [client, err] = TryConnect(host, port);
    if (!client) {
      throw std::runtime_error("cannot connect to " + host + ":" + std::to_string(port) + ": " +
                               std::strerror(err));
    }
    return std::move(client);
  }

  // Connects and, for the 2.2+ dialect, sends VALIDATE.
  static std::unique_ptr<Client> Open(uint16_t port, const Dialect& d) {
    auto client = Connect(port);
    if (d.validate) client->Send(Bytes().U8(kV22Validate).U32(kMagic));
    return client;
  }

  // Takes over a connected socket set up by the test (a chosen source address, small buffers).
  static std::unique_ptr<Client> Adopt(int fd) { return std::unique_ptr<Client>(new Client(fd)); }
  [[nodiscard]] int fd() const { return fd_; }

  ~Client() { Close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  void ShutdownSending() { ::shutdown(fd_, SHUT_WR); }

  uint16_t LocalPort() const {
    sockaddr_in addr{};
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    return ntohs(addr.sin_port);
  }

  void Send(const std::string& bytes) {
    size_t sent = 0;
    const auto deadline = Clock::now() + kReadTimeout;
    while (sent < bytes.size()) {
      ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR) && Clock::now() < deadline) {
        pollfd p{fd_, POLLOUT, 0};
        poll(&p, 1, 100);
        continue;
      }
      throw std::runtime_error(std::string("send failed: ") + std::strerror(errno));
    }
  }
  void Send(const Bytes& b) { Send(b.data); }

  // One byte per write, with a pause so the server sees each byte on its own.
  void SendBytewise(const std::string& bytes) {
    for (char c : bytes) {
      Send(std::string(1, c));
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  // Reads exactly n bytes or throws after ~5 s naming `what`.
  std::string Read(size_t n, const std::string& what) {
    std::string out;
    const auto deadline = Clock::now() + kReadTimeout;
    while (out.size() < n) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        throw std::runtime_error("timed out after 5 s waiting for " + what + " (got " +
                                 std::to_string(out.size()) + " of " + std::to_string(n) +
                                 " bytes: " + Hex(out) + ")");
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[4096];
      ssize_t got = recv(fd_, buffer, std::min(sizeof(buffer), n - out.size()), 0);
      if (got > 0) {
        out.append(buffer, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        throw std::runtime_error("connection closed while waiting for " + what + " (got " +
                                 Hex(out) + ")");
      }
    }
    return out;
  }
  template <typename T>
  T ReadScalar(const std::string& what) {
    const std::string raw = Read(sizeof(T), what);
    T value{};
    std::memcpy(&value, raw.data(), sizeof(T));
    return value;
  }
  uint8_t ReadU8(const std::string& what) { return ReadScalar<uint8_t>(what); }
  int64_t ReadI64(const std::string& what) { return ReadScalar<int64_t>(what); }
  std::string ReadStr(const std::string& what) {
    const uint64_t size = ReadScalar<uint64_t>("the length of " + what);
    if (size > (1u << 20))
      throw std::runtime_error("absurd length " + std::to_string(size) + " for " + what);
    return Read(size, what);
  }

  // Whatever arrives within `quiet` though nobody asked for it; empty: nothing did.
  std::string Unexpected(std::chrono::milliseconds quiet = kQuiet) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(quiet.count())) <= 0) return {};
    char buffer[256];
    ssize_t got = recv(fd_, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (got > 0) return std::string(buffer, static_cast<size_t>(got));
    return got == 0 ? "(end of stream)" : "(error)";
  }

  // True when the server closes the connection within 5 s (bytes before the end are discarded).
  bool ClosedByPeer() {
    const auto deadline = Clock::now() + kReadTimeout;
    while (Clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buffer[256];
      ssize_t got = recv(fd_, buffer, sizeof(buffer), 0);
      if (got == 0) return true;
      if (got < 0 && errno != EAGAIN && errno != EINTR) return true;
    }
    return false;
  }

 private:
  explicit Client(int fd) : fd_(fd) {}
  int fd_;
};

// Repeats `condition` until it holds or ~5 s pass.
template <typename F>
bool Eventually(F condition) {
  const auto deadline = Clock::now() + kReadTimeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

struct LogSink {
  std::mutex mutex;
  std::vector<std::string> lines;
  runner::StoreServer::LogFn Fn() {
    return [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mutex);
      lines.push_back(line);
    };
  }
  bool Contains(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex);
    for (const std::string& line : lines) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }
  std::string All() {
    std::lock_guard<std::mutex> lock(mutex);
    std::string out;
    for (const std::string& line : lines) out += line + "\n";
    return out;
  }
};

// ---- Tests run in both dialects (instantiated once, in store_server_protocol_test.cpp) ----

class StoreServerDialect : public ::testing::TestWithParam<Dialect> {
 protected:
  LogSink sink_;  // before server_: the server logs into it
  runner::StoreServer server_{"127.0.0.1", 0, sink_.Fn()};
  const Dialect& d() const { return GetParam(); }
  Ops op() const { return Ops{GetParam()}; }
};

}  // namespace store_test
