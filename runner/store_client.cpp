#include "runner/store_client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "common/errors.h"
#include "runner/store_protocol.h"
#include "runner/store_socket.h"

namespace runner {

namespace {

using Clock = std::chrono::steady_clock;
namespace proto = store_protocol;

// Query bytes of the PyTorch >= 2.2 dialect.
constexpr uint8_t kValidate = 0, kSet = 1, kGet = 3, kAdd = 4, kCheck = 5, kWait = 6,
                  kMultiGet = 10, kCancelWait = 12;
// WAIT's answers.
constexpr uint8_t kStopWaiting = 0, kWaitCanceled = 1;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// One non-blocking connect bounded by `timeout_ms`; the socket, or -1 with `*error` set.
int ConnectOnce(const sockaddr_in& addr, int timeout_ms, std::string* error) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *error = std::strerror(errno);
    return -1;
  }
  int err = 0;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    err = errno;
    if (err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      err = poll(&p, 1, timeout_ms) == 1 ? 0 : ETIMEDOUT;
      socklen_t len = sizeof(err);
      if (err == 0) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    }
  }
  if (err != 0) {
    *error = std::strerror(err);
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

std::string ShortSeconds(double seconds) {
  const double rounded = std::round(seconds * 10) / 10;
  std::string text = std::to_string(rounded);
  text.erase(text.find_last_not_of('0') + 1);
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text + " s";
}

}  // namespace

std::string ResolveIpv4(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &result) != 0 || result == nullptr) return "";
  char text[INET_ADDRSTRLEN] = {};
  const auto* addr = reinterpret_cast<const sockaddr_in*>(result->ai_addr);
  inet_ntop(AF_INET, &addr->sin_addr, text, sizeof(text));
  freeaddrinfo(result);
  return text;
}

StoreClient::StoreClient(const std::string& host, int port, double connect_timeout_s,
                         double request_timeout_s, std::string what,
                         const std::function<void()>& between_tries)
    : request_timeout_s_(request_timeout_s), what_(std::move(what)) {
  const Clock::time_point start = Clock::now();
  std::string error;
  int tries = 0;
  while (true) {
    ++tries;
    // Resolved on every try: the name may appear in DNS only once the machine is up.
    const std::string ip = ResolveIpv4(host);
    if (ip.empty()) {
      error = "'" + host + "' does not resolve to an IPv4 address";
    } else {
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<uint16_t>(port));
      inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
      const double left = connect_timeout_s - SecondsSince(start);
      fd_ = ConnectOnce(addr, static_cast<int>(std::clamp(left, 0.1, 2.0) * 1000), &error);
      if (fd_ >= 0) break;
    }
    if (SecondsSince(start) >= connect_timeout_s) {
      throw common::CommunicationError(
          "cannot reach " + what_ + ": " + error + " (retried " + std::to_string(tries) +
          " times for " + ShortSeconds(SecondsSince(start)) +
          ", launch.rendezvous_timeout_s). Is the runner of node 0 started on that machine with "
          "the same MASTER_ADDR/MASTER_PORT, and can this machine reach that port (firewall)?");
    }
    if (between_tries) between_tries();
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  std::string hello(1, static_cast<char>(kValidate));
  proto::Writer(&hello).Scalar<uint32_t>(proto::kValidationMagic);
  Send(hello);
}

std::string StoreClient::LocalName() const {
  sockaddr_storage local{};
  socklen_t length = sizeof(local);
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &length) != 0) return "";
  return store_socket::PeerName(local, length);
}

StoreClient::~StoreClient() {
  if (fd_ >= 0) close(fd_);
}

void StoreClient::Fail(const std::string& why) const {
  throw common::CommunicationError("lost " + what_ + ": " + why +
                                   "; the node-0 agent has ended or its machine is unreachable");
}

void StoreClient::Send(const std::string& bytes) {
  size_t sent = 0;
  const Clock::time_point start = Clock::now();
  while (sent < bytes.size()) {
    const ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) Fail(std::string("sending failed: ") + std::strerror(errno));
    if (SecondsSince(start) > request_timeout_s_)
      Fail("it accepted no data for " + ShortSeconds(request_timeout_s_));
    pollfd p{fd_, POLLOUT, 0};
    poll(&p, 1, 100);
  }
}

std::string StoreClient::Read(size_t n) {
  std::string out = ReadWithin(n, request_timeout_s_);
  if (out.size() < n) Fail("no answer for " + ShortSeconds(request_timeout_s_));
  return out;
}

std::string StoreClient::ReadWithin(size_t n, double timeout_s) {
  std::string out;
  const Clock::time_point start = Clock::now();
  while (out.size() < n) {
    const double left = timeout_s - SecondsSince(start);
    if (left <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(left * 1000) + 1);
    if (ready < 0 && errno != EINTR) Fail(std::string("poll failed: ") + std::strerror(errno));
    if (ready <= 0) continue;
    char buffer[65536];
    const ssize_t got = recv(fd_, buffer, std::min(sizeof(buffer), n - out.size()), 0);
    if (got > 0) {
      out.append(buffer, static_cast<size_t>(got));
    } else if (got == 0) {
      Fail("the connection was closed");
    } else if (errno != EAGAIN && errno != EINTR) {
      Fail(std::string("receiving failed: ") + std::strerror(errno));
    }
  }
  return out;
}

std::string StoreClient::ReadBytes() {
  const std::string size_bytes = Read(sizeof(uint64_t));
  uint64_t size = 0;
  std::memcpy(&size, size_bytes.data(), sizeof(size));
  if (size > proto::kMaxValueBytes) Fail("it sent a value of " + std::to_string(size) + " bytes");
  return Read(static_cast<size_t>(size));
}

void StoreClient::Set(const std::string& key, const std::string& value) {
  std::string request(1, static_cast<char>(kSet));
  proto::Writer out(&request);
  out.Bytes(key);
  out.Bytes(value);
  Send(request);
}

std::string StoreClient::Get(const std::string& key) {
  std::string request(1, static_cast<char>(kGet));
  proto::Writer(&request).Bytes(key);
  Send(request);
  return ReadBytes();
}

int64_t StoreClient::Add(const std::string& key, int64_t delta) {
  std::string request(1, static_cast<char>(kAdd));
  proto::Writer out(&request);
  out.Bytes(key);
  out.Scalar<int64_t>(delta);
  Send(request);
  const std::string raw = Read(sizeof(int64_t));
  int64_t value = 0;
  std::memcpy(&value, raw.data(), sizeof(value));
  return value;
}

bool StoreClient::Wait(const std::vector<std::string>& keys, double timeout_s) {
  std::string request(1, static_cast<char>(kWait));
  proto::Writer out(&request);
  out.Scalar<uint64_t>(keys.size());
  for (const std::string& key : keys) out.Bytes(key);
  Send(request);
  std::string answer = ReadWithin(1, timeout_s);
  if (answer.empty()) {
    // Cancelled; the keys may have come in between: then STOP_WAITING comes first.
    Send(std::string(1, static_cast<char>(kCancelWait)));
    answer = Read(1);
    if (static_cast<uint8_t>(answer[0]) == kWaitCanceled) return false;
    if (static_cast<uint8_t>(Read(1)[0]) != kWaitCanceled) Fail("it did not cancel a wait");
  }
  if (static_cast<uint8_t>(answer[0]) != kStopWaiting)
    Fail("it answered a wait with " + std::to_string(static_cast<int>(answer[0])));
  return true;
}

bool StoreClient::Check(const std::vector<std::string>& keys) {
  std::string request(1, static_cast<char>(kCheck));
  proto::Writer out(&request);
  out.Scalar<uint64_t>(keys.size());
  for (const std::string& key : keys) out.Bytes(key);
  Send(request);
  return Read(1)[0] == 0;
}

std::vector<std::string> StoreClient::MultiGet(const std::vector<std::string>& keys) {
  std::string request(1, static_cast<char>(kMultiGet));
  proto::Writer out(&request);
  out.Scalar<uint64_t>(keys.size());
  for (const std::string& key : keys) out.Bytes(key);
  Send(request);
  std::vector<std::string> values;
  values.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) values.push_back(ReadBytes());
  return values;
}

}  // namespace runner
