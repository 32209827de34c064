// runner::StoreServer against a raw-socket client that speaks both TCPStore wire dialects byte by
// byte. Every read is bounded (about 5 s) and names what it waited for, so a server that fails to
// answer makes a test fail, never hang.

#include "runner/store_server.h"

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

#include "common/errors.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kReadTimeout = 5s;
constexpr auto kQuiet = 200ms;  // how long "no reply" is watched for

std::string Hex(const std::string& bytes) {
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

void PrintTo(const Dialect& d, std::ostream* os) { *os << d.name; }

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

// ---- The table of requests and exact replies shared by several tests ----

struct Step {
  std::string what;
  Bytes request;
  Bytes reply;  // exact bytes expected; empty: the op has no reply
};

Bytes Str(const std::string& s) { return Bytes().Str(s); }
Bytes I64(int64_t v) { return Bytes().I64(v); }
Bytes U8(uint8_t v) { return Bytes().U8(v); }

std::vector<Step> EveryOpSteps(const Dialect& d) {
  const Ops op{d};
  return {
      {"SET a=1", op.Set("a", "1"), {}},
      {"GET a", op.Get("a"), Str("1")},
      {"SET a=one (overwrite)", op.Set("a", "one"), {}},
      {"GET a after overwrite", op.Get("a"), Str("one")},
      {"SET empty value", op.Set("empty", ""), {}},
      {"GET empty value", op.Get("empty"), Str("")},
      {"SET binary value", op.Set("bin", std::string("\0\xff\x01", 3)), {}},
      {"GET binary value", op.Get("bin"), Str(std::string("\0\xff\x01", 3))},
      {"ADD c 5 (new key)", op.Add("c", 5), I64(5)},
      {"ADD c -7", op.Add("c", -7), I64(-2)},
      {"ADD c 0", op.Add("c", 0), I64(-2)},
      {"GET c (decimal text)", op.Get("c"), Str("-2")},
      {"CHECK [a c] ready", op.Check({"a", "c"}), U8(kReady)},
      {"CHECK [a missing] not ready", op.Check({"a", "missing"}), U8(kNotReady)},
      {"CHECK [] ready", op.Check({}), U8(kReady)},
      {"WAIT [a] existing", op.Wait({"a"}), U8(kStopWaiting)},
      {"WAIT [a c] existing", op.Wait({"a", "c"}), U8(kStopWaiting)},
      {"GETNUMKEYS", op.NumKeys(), I64(4)},
      {"COMPARE_SET a one->two", op.CompareSet("a", "one", "two"), Str("two")},
      {"COMPARE_SET a mismatch", op.CompareSet("a", "one", "three"), Str("two")},
      {"COMPARE_SET new key, expected empty", op.CompareSet("cs", "", "created"), Str("created")},
      {"GET created by COMPARE_SET", op.Get("cs"), Str("created")},
      {"COMPARE_SET missing key, expected non-empty", op.CompareSet("nope", "x", "y"), Str("x")},
      {"CHECK key COMPARE_SET did not create", op.Check({"nope"}), U8(kNotReady)},
      {"APPEND a", op.AppendOp("a", "+x"), {}},
      {"GET appended", op.Get("a"), Str("two+x")},
      {"APPEND new key", op.AppendOp("ap", "z"), {}},
      {"GET new appended key", op.Get("ap"), Str("z")},
      {"MULTI_SET m1 m2", op.MultiSet({{"m1", "v1"}, {"m2", "v2"}}), {}},
      {"MULTI_GET m1 m2 missing", op.MultiGet({"m1", "m2", "missing"}),
       Bytes().Str("v1").Str("v2").Str("")},
      {"MULTI_GET []", op.MultiGet({}), {}},
      {"GETNUMKEYS after more keys", op.NumKeys(), I64(8)},
      {"DELETE_KEY a", op.Delete("a"), I64(1)},
      {"DELETE_KEY a again", op.Delete("a"), I64(0)},
      {"CHECK deleted key", op.Check({"a"}), U8(kNotReady)},
      {"GETNUMKEYS after delete", op.NumKeys(), I64(7)},
      {"CANCEL_WAIT with no WAIT pending", op.CancelWait(), U8(kWaitCanceled)},
  };
}

std::string AllRequests(const std::vector<Step>& steps) {
  std::string out;
  for (const Step& step : steps) out += step.request.data;
  return out;
}

void ExpectReply(Client& client, const Step& step) {
  if (step.reply.data.empty()) return;
  const std::string got = client.Read(step.reply.data.size(), "the reply to " + step.what);
  EXPECT_EQ(Hex(got), Hex(step.reply.data)) << step.what;
}

// ---- Tests run in both dialects ----

class StoreServerDialect : public ::testing::TestWithParam<Dialect> {
 protected:
  LogSink sink_;  // before server_: the server logs into it
  runner::StoreServer server_{"127.0.0.1", 0, sink_.Fn()};
  const Dialect& d() const { return GetParam(); }
  Ops op() const { return Ops{GetParam()}; }
};

TEST_P(StoreServerDialect, EveryOpOneRequestAtATime) {
  auto client = Client::Open(server_.port(), d());
  for (const Step& step : EveryOpSteps(d())) {
    client->Send(step.request);
    ExpectReply(*client, step);
  }
  EXPECT_EQ(Hex(client->Unexpected()), Hex("")) << "bytes nobody asked for";
  EXPECT_EQ(server_.NumKeys(), 7u);
}

TEST_P(StoreServerDialect, EveryOpSplitIntoOneByteWrites) {
  auto client = Client::Connect(server_.port());
  if (d().validate) client->SendBytewise(Bytes().U8(kV22Validate).U32(kMagic).data);
  for (const Step& step : EveryOpSteps(d())) {
    client->SendBytewise(step.request.data);
    ExpectReply(*client, step);
  }
  EXPECT_EQ(Hex(client->Unexpected()), Hex(""));
}

TEST_P(StoreServerDialect, EveryOpPipelinedInOneWrite) {
  const std::vector<Step> steps = EveryOpSteps(d());
  auto client = Client::Connect(server_.port());
  std::string all = d().validate ? Bytes().U8(kV22Validate).U32(kMagic).data : std::string();
  all += AllRequests(steps);
  client->Send(all);
  for (const Step& step : steps) ExpectReply(*client, step);
  EXPECT_EQ(Hex(client->Unexpected()), Hex(""));
}

TEST_P(StoreServerDialect, WaitRepliesOnlyOnceAnotherConnectionSetsTheKey) {
  auto waiter = Client::Open(server_.port(), d());
  auto setter = Client::Open(server_.port(), d());
  waiter->Send(op().Wait({"later"}));
  EXPECT_EQ(Hex(waiter->Unexpected()), Hex("")) << "WAIT replied before the key existed";
  setter->Send(op().Set("later", "x"));
  EXPECT_EQ(waiter->ReadU8("STOP_WAITING after the other client's SET"), kStopWaiting);
  // And once it exists, WAIT answers at once.
  waiter->Send(op().Wait({"later"}));
  EXPECT_EQ(waiter->ReadU8("STOP_WAITING for an existing key"), kStopWaiting);
  EXPECT_EQ(Hex(waiter->Unexpected()), Hex(""));
}

TEST_P(StoreServerDialect, WaitIsEndedByAddCompareSetAppendAndMultiSet) {
  struct Case {
    const char* what;
    Bytes request;
    size_t reply_bytes;
  };
  const Ops o = op();
  const std::vector<Case> cases = {
      {"ADD", o.Add("k0", 1), 8},
      {"COMPARE_SET", o.CompareSet("k1", "", "v"), 9},
      {"APPEND", o.AppendOp("k2", "v"), 0},
      {"MULTI_SET", o.MultiSet({{"other", "1"}, {"k3", "v"}}), 0},
  };
  auto setter = Client::Open(server_.port(), d());
  for (size_t i = 0; i < cases.size(); ++i) {
    auto waiter = Client::Open(server_.port(), d());
    waiter->Send(o.Wait({"k" + std::to_string(i)}));
    EXPECT_EQ(Hex(waiter->Unexpected(50ms)), Hex("")) << cases[i].what;
    setter->Send(cases[i].request);
    if (cases[i].reply_bytes)
      setter->Read(cases[i].reply_bytes, std::string("reply to ") + cases[i].what);
    EXPECT_EQ(waiter->ReadU8(std::string("STOP_WAITING after ") + cases[i].what), kStopWaiting);
  }
}

TEST_P(StoreServerDialect, WaitOnSeveralKeysEndsWhenTheLastExists) {
  auto waiter = Client::Open(server_.port(), d());
  auto setter = Client::Open(server_.port(), d());
  setter->Send(op().Set("k1", "1"));
  waiter->Send(op().Wait({"k1", "k2", "k3"}));
  setter->Send(op().Set("k2", "2"));
  EXPECT_EQ(Hex(waiter->Unexpected()), Hex("")) << "replied with k3 still missing";
  setter->Send(op().Set("k2", "2 again"));  // a key already counted changes nothing
  EXPECT_EQ(Hex(waiter->Unexpected()), Hex("")) << "replied with k3 still missing";
  setter->Send(op().Set("k3", "3"));
  EXPECT_EQ(waiter->ReadU8("STOP_WAITING once k1, k2 and k3 exist"), kStopWaiting);
  EXPECT_EQ(Hex(waiter->Unexpected()), Hex(""));
}

TEST_P(StoreServerDialect, CancelWaitEndsThePendingWait) {
  auto waiter = Client::Open(server_.port(), d());
  auto setter = Client::Open(server_.port(), d());
  waiter->Send(op().Wait({"never"}));
  EXPECT_EQ(Hex(waiter->Unexpected(50ms)), Hex(""));
  waiter->Send(op().CancelWait());
  EXPECT_EQ(waiter->ReadU8("WAIT_CANCELED"), kWaitCanceled);
  EXPECT_TRUE(server_.DescribeWaits().empty());
  setter->Send(op().Set("never", "now"));
  setter->Send(op().Get("never"));
  EXPECT_EQ(setter->ReadStr("GET never"), "now");
  EXPECT_EQ(Hex(waiter->Unexpected()), Hex("")) << "a cancelled WAIT still replied";
  waiter->Send(op().Get("never"));
  EXPECT_EQ(waiter->ReadStr("GET after CANCEL_WAIT"), "now");
}

TEST_P(StoreServerDialect, UnknownQueryByteClosesOnlyThatConnection) {
  auto other = Client::Open(server_.port(), d());
  other->Send(op().Set("k", "v"));
  for (uint8_t bad : {d().first_unknown, uint8_t{0x47} /* 'G' of "GET / HTTP" */, uint8_t{0xff}}) {
    auto bad_client = Client::Open(server_.port(), d());
    bad_client->Send(op().Get("k"));
    EXPECT_EQ(bad_client->ReadStr("GET before the bad byte"), "v");
    bad_client->Send(Bytes().U8(bad).Str("k"));
    EXPECT_TRUE(bad_client->ClosedByPeer()) << "query byte " << int(bad) << " did not close";
    EXPECT_TRUE(sink_.Contains("unknown query type " + std::to_string(bad))) << sink_.All();
  }
  other->Send(op().Get("k"));
  EXPECT_EQ(other->ReadStr("GET on the good connection"), "v");
  auto fresh = Client::Open(server_.port(), d());
  fresh->Send(op().Get("k"));
  EXPECT_EQ(fresh->ReadStr("GET on a new connection"), "v");
}

TEST_P(StoreServerDialect, AbsurdLengthClosesTheConnectionInsteadOfBufferingOrSpinning) {
  // A GET whose key length is 2^64 - 9: pos + length wraps around to 0. The server must not take
  // that as a complete request (it used to: an endless loop answering the same bytes).
  struct Case {
    const char* what;
    Bytes request;
  };
  const std::vector<Case> cases = {
      {"GET with key length 2^64-9", Bytes().U8(d().get).U64(~uint64_t{0} - 8)},
      {"SET with key length 2^63", Bytes().U8(d().set).U64(uint64_t{1} << 63)},
      {"SET with a 3 GiB value", Bytes().U8(d().set).Str("k").U64(uint64_t{3} << 30)},
      {"WAIT on 2^40 keys", Bytes().U8(d().wait).U64(uint64_t{1} << 40)},
      {"MULTI_SET of 2^40 items", Bytes().U8(d().multi_set).U64(uint64_t{1} << 40)},
  };
  for (const Case& c : cases) {
    auto bad = Client::Open(server_.port(), d());
    bad->Send(c.request);
    EXPECT_TRUE(bad->ClosedByPeer()) << c.what;
    auto good = Client::Open(server_.port(), d());
    good->Send(op().Add("alive", 1));
    EXPECT_GT(good->ReadI64(std::string("ADD after ") + c.what), 0) << c.what;
  }
  EXPECT_TRUE(sink_.Contains("bytes (at most")) << sink_.All();
  EXPECT_TRUE(sink_.Contains("a key count of 1099511627776")) << sink_.All();
}

TEST_P(StoreServerDialect, SetFollowedAtOnceByCloseIsNotLost) {
  // A client may SET (no reply) and exit: the request and the end of the stream can arrive in
  // the same read.
  constexpr int kClients = 40;
  std::vector<std::string> keys;
  for (int i = 0; i < kClients; ++i) {
    keys.push_back("exit/" + std::to_string(i));
    auto client = Client::Open(server_.port(), d());
    client->Send(op().Set(keys.back(), "bye"));
    client->Close();
  }
  auto checker = Client::Open(server_.port(), d());
  checker->Send(op().Wait(keys));
  EXPECT_EQ(checker->ReadU8("STOP_WAITING for keys set by clients that closed at once"),
            kStopWaiting);
  checker->Send(op().NumKeys());
  EXPECT_EQ(checker->ReadI64("GETNUMKEYS"), kClients);
}

TEST_P(StoreServerDialect, RequestsBeforeShutdownOfTheSendingSideAreAnswered) {
  auto client = Client::Open(server_.port(), d());
  client->Send(Bytes().Append(op().Set("k", "v")).Append(op().Get("k")).Append(op().Add("n", 2)));
  client->ShutdownSending();  // the server sees the end of the stream with the requests
  EXPECT_EQ(client->ReadStr("GET before the end of the stream"), "v");
  EXPECT_EQ(client->ReadI64("ADD before the end of the stream"), 2);
  EXPECT_TRUE(client->ClosedByPeer());
}

INSTANTIATE_TEST_SUITE_P(BothDialects, StoreServerDialect, ::testing::Values(kV113, kV22),
                         [](const ::testing::TestParamInfo<Dialect>& param) {
                           return std::string(param.param.name);
                         });

// ---- Dialect-specific behaviour ----

TEST(StoreServer, StaleWaitOf113ClientIsDroppedWhenItMovesOn) {
  // PyTorch 1.13's client gives up a WAIT on a socket timeout without telling the server, then
  // sends its next request. The reply to that request must not be a late STOP_WAITING byte.
  runner::StoreServer server("127.0.0.1", 0);
  const Ops op{kV113};
  auto client = Client::Open(server.port(), kV113);
  auto other = Client::Open(server.port(), kV113);
  client->Send(op.Set("exists", "value"));
  client->Send(op.Wait({"missing"}));
  EXPECT_EQ(Hex(client->Unexpected(100ms)), Hex(""));
  client->Send(op.Get("exists"));
  EXPECT_EQ(client->ReadStr("GET after a stale WAIT"), "value");
  EXPECT_TRUE(server.DescribeWaits().empty());
  other->Send(op.Set("missing", "late"));
  other->Send(op.Get("missing"));
  EXPECT_EQ(other->ReadStr("GET missing"), "late");
  EXPECT_EQ(Hex(client->Unexpected()), Hex("")) << "the dropped WAIT still replied";
  client->Send(op.Add("n", 1));
  EXPECT_EQ(client->ReadI64("ADD after everything"), 1);

  // The same with the stale WAIT and the next request in one write.
  client->Send(Bytes().Append(op.Wait({"missing2"})).Append(op.Get("exists")));
  EXPECT_EQ(client->ReadStr("pipelined GET after a stale WAIT"), "value");
  other->Send(op.Set("missing2", "x"));
  other->Send(op.NumKeys());
  EXPECT_EQ(other->ReadI64("GETNUMKEYS"), 4);
  EXPECT_EQ(Hex(client->Unexpected()), Hex(""));
}

TEST(StoreServer, WrongValidationMagicClosesTheConnection) {
  LogSink sink;
  runner::StoreServer server("127.0.0.1", 0, sink.Fn());
  for (uint32_t magic : {0xDEADBEEFu, kMagic + 1, 0xFFFFFFFFu}) {
    auto client = Client::Connect(server.port());
    client->Send(Bytes().U8(kV22Validate).U32(magic).U8(kV22Ping).U32(7));
    EXPECT_TRUE(client->ClosedByPeer()) << std::hex << magic;
  }
  EXPECT_TRUE(sink.Contains("wrong validation number 0xDEADBEEF")) << sink.All();
  // A second VALIDATE with the wrong number on a validated connection closes it as well.
  auto client = Client::Open(server.port(), kV22);
  client->Send(Bytes().U8(kV22Ping).U32(42));
  EXPECT_EQ(client->ReadScalar<uint32_t>("PING echo"), 42u);
  client->Send(Bytes().U8(kV22Validate).U32(0x12345678));
  EXPECT_TRUE(client->ClosedByPeer());
  // The server goes on serving.
  auto good = Client::Open(server.port(), kV22);
  good->Send(Bytes().U8(kV22Ping).U32(9));
  EXPECT_EQ(good->ReadScalar<uint32_t>("PING echo after bad clients"), 9u);
}

TEST(StoreServer, V113SetAsFirstRequestIsNotMistakenForValidate) {
  // SET is byte 0 in 1.13, like VALIDATE in 2.2+: the next four bytes decide.
  runner::StoreServer server("127.0.0.1", 0);
  const Ops op{kV113};
  for (size_t key_size : {size_t{0}, size_t{1}, size_t{4096}}) {
    auto client = Client::Connect(server.port());
    const std::string key(key_size, 'k');
    client->SendBytewise(op.Set(key, "v").data.substr(0, 6));
    client->Send(op.Set(key, "v").data.substr(6));
    client->Send(op.Get(key));
    EXPECT_EQ(client->ReadStr("GET of a " + std::to_string(key_size) + "-byte key"), "v");
  }
}

TEST(StoreServer, V22PingQueuesAndList) {
  runner::StoreServer server("127.0.0.1", 0);
  const Ops op{kV22};
  auto client = Client::Open(server.port(), kV22);
  auto queue_push = [](const std::string& k, const std::string& v) {
    return Bytes().U8(kV22QueuePush).Str(k).Str(v);
  };
  const std::vector<Step> steps = {
      {"PING", Bytes().U8(kV22Ping).U32(0xA1B2C3D4), Bytes().U32(0xA1B2C3D4)},
      {"QUEUE_LEN of a missing queue", Bytes().U8(kV22QueueLen).Str("q"), I64(0)},
      {"QUEUE_POP of an empty queue", Bytes().U8(kV22QueuePop).Str("q"), I64(0)},
      {"CHECK an empty queue", op.Check({"q"}), U8(kNotReady)},
      {"QUEUE_PUSH 1", queue_push("q", "first"), {}},
      {"QUEUE_PUSH 2", queue_push("q", "second"), {}},
      {"QUEUE_LEN 2", Bytes().U8(kV22QueueLen).Str("q"), I64(2)},
      {"CHECK a non-empty queue", op.Check({"q"}), U8(kReady)},
      {"WAIT on a non-empty queue", op.Wait({"q"}), U8(kStopWaiting)},
      {"QUEUE_POP first", Bytes().U8(kV22QueuePop).Str("q"), Bytes().I64(2).Str("first")},
      {"QUEUE_POP second", Bytes().U8(kV22QueuePop).Str("q"), Bytes().I64(1).Str("second")},
      {"QUEUE_POP empty again", Bytes().U8(kV22QueuePop).Str("q"), I64(0)},
      {"GETNUMKEYS does not count queues", op.NumKeys(), I64(0)},
      {"SET b", op.Set("b", "1"), {}},
      {"SET a", op.Set("a", "2"), {}},
      {"LIST", Bytes().U8(kV22List), Bytes().I64(2).Str("a").Str("b")},
  };
  for (const Step& step : steps) {
    client->Send(step.request);
    ExpectReply(*client, step);
  }
  EXPECT_EQ(Hex(client->Unexpected()), Hex(""));
}

TEST(StoreServer, QueuePushWakesOneWaiterOldestFirst) {
  runner::StoreServer server("127.0.0.1", 0);
  const Ops op{kV22};
  auto first = Client::Open(server.port(), kV22);
  auto second = Client::Open(server.port(), kV22);
  auto pusher = Client::Open(server.port(), kV22);
  first->Send(op.Wait({"jobs"}));
  ASSERT_TRUE(Eventually([&] { return server.DescribeWaits().size() == 1; }));
  second->Send(op.Wait({"jobs"}));
  ASSERT_TRUE(Eventually([&] { return server.DescribeWaits().size() == 2; }));
  pusher->Send(Bytes().U8(kV22QueuePush).Str("jobs").Str("1"));
  EXPECT_EQ(first->ReadU8("STOP_WAITING for the oldest waiter"), kStopWaiting);
  EXPECT_EQ(Hex(second->Unexpected()), Hex("")) << "one item woke two waiters";
  first->Send(Bytes().U8(kV22QueuePop).Str("jobs"));
  EXPECT_EQ(first->Read(8 + 8 + 1, "QUEUE_POP"), Bytes().I64(1).Str("1").data);
  pusher->Send(Bytes().U8(kV22QueuePush).Str("jobs").Str("2"));
  EXPECT_EQ(second->ReadU8("STOP_WAITING for the second waiter"), kStopWaiting);
}

TEST(StoreServer, V113WatchKeyReportsCreateUpdateDelete) {
  runner::StoreServer server("127.0.0.1", 0);
  const Ops op{kV113};
  auto watcher = Client::Open(server.port(), kV113);
  auto writer = Client::Open(server.port(), kV113);
  watcher->Send(Bytes().U8(kV113WatchKey).Str("w"));
  EXPECT_EQ(watcher->ReadU8("KEY_CALLBACK_REGISTERED"), 3);
  auto expect_event = [&](uint8_t type, const std::string& old_value, const std::string& new_value,
                          const std::string& what) {
    EXPECT_EQ(watcher->ReadU8(what + " type"), type) << what;
    EXPECT_EQ(watcher->ReadStr(what + " key"), "w") << what;
    EXPECT_EQ(watcher->ReadStr(what + " old value"), old_value) << what;
    EXPECT_EQ(watcher->ReadStr(what + " new value"), new_value) << what;
  };
  writer->Send(op.Set("w", "1"));
  expect_event(1, "", "1", "KEY_CREATED");
  writer->Send(op.Add("w", 1));
  EXPECT_EQ(writer->ReadI64("ADD"), 2);
  expect_event(0, "1", "2", "KEY_UPDATED");
  writer->Send(op.Delete("w"));
  EXPECT_EQ(writer->ReadI64("DELETE_KEY"), 1);
  expect_event(2, "2", "", "KEY_DELETED");
  writer->Send(op.Set("unwatched", "x"));
  EXPECT_EQ(Hex(watcher->Unexpected()), Hex(""));
}

TEST(StoreServer, AddOfNonNumberCountsFromZeroAndWrapsOnOverflow) {
  LogSink sink;
  runner::StoreServer server("127.0.0.1", 0, sink.Fn());
  const Ops op{kV22};
  auto client = Client::Open(server.port(), kV22);
  client->Send(op.Set("text", "abc"));
  client->Send(op.Add("text", 3));
  EXPECT_EQ(client->ReadI64("ADD to a non-number"), 3);
  EXPECT_TRUE(sink.Contains("not a number")) << sink.All();
  client->Send(op.Add("big", std::numeric_limits<int64_t>::max()));
  EXPECT_EQ(client->ReadI64("ADD max"), std::numeric_limits<int64_t>::max());
  client->Send(op.Add("big", 1));
  EXPECT_EQ(client->ReadI64("ADD past max"), std::numeric_limits<int64_t>::min());
}

// ---- Binding ----

TEST(StoreServerBinding, BoundToLoopbackIsNotReachableByAnotherLocalAddress) {
  runner::StoreServer server("127.0.0.1", 0);
  EXPECT_EQ(server.address(), "127.0.0.1");
  auto [reachable, err] = Client::TryConnect("127.0.0.1", server.port());
  ASSERT_TRUE(reachable) << std::strerror(err);
  // 127.0.0.2 is a different address on the same loopback interface: a wildcard bind would answer.
  auto [other_loopback, err2] = Client::TryConnect("127.0.0.2", server.port());
  EXPECT_FALSE(other_loopback) << "reachable via 127.0.0.2: the server did not bind only 127.0.0.1";
  if (!other_loopback) std::cout << "127.0.0.2: " << std::strerror(err2) << "\n";

  // The other way round, still on loopback only (tests never use other addresses): a server
  // bound to 127.0.0.2 answers there and not on 127.0.0.1.
  runner::StoreServer there("127.0.0.2", 0);
  auto [at_bound, err3] = Client::TryConnect("127.0.0.2", there.port());
  EXPECT_TRUE(at_bound) << "127.0.0.2: " << std::strerror(err3);
  auto [at_other, err4] = Client::TryConnect("127.0.0.1", there.port());
  EXPECT_FALSE(at_other) << "the server bound to 127.0.0.2 was reachable via 127.0.0.1";
  (void)err4;
}

TEST(StoreServerBinding, PortZeroGivesARealPort) {
  runner::StoreServer a("127.0.0.1", 0);
  runner::StoreServer b("127.0.0.1", 0);
  EXPECT_NE(a.port(), 0);
  EXPECT_NE(b.port(), 0);
  EXPECT_NE(a.port(), b.port());
  auto client = Client::Open(b.port(), kV22);
  client->Send(Bytes().U8(kV22Ping).U32(5));
  EXPECT_EQ(client->ReadScalar<uint32_t>("PING on the OS-picked port"), 5u);
}

TEST(StoreServerBinding, NonIpAddressThrowsNamingIt) {
  for (const std::string address :
       {"store-host.example", "localhost", "", "127.0.0.256", "1.2.3", "10.1", "0x7f.1"}) {
    try {
      runner::StoreServer server(address, 0);
      ADD_FAILURE() << "'" << address << "' was accepted";
    } catch (const common::CommunicationError& e) {
      EXPECT_NE(std::string(e.what()).find("'" + address + "'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("not an IP address"), std::string::npos) << e.what();
    }
  }
}

TEST(StoreServerBinding, InUsePortThrowsNamingAddressAndPort) {
  runner::StoreServer first("127.0.0.1", 0);
  try {
    runner::StoreServer second("127.0.0.1", first.port());
    FAIL() << "a second server listened on port " << first.port();
  } catch (const common::CommunicationError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("127.0.0.1:" + std::to_string(first.port())), std::string::npos)
        << message;
    EXPECT_NE(message.find(std::strerror(EADDRINUSE)), std::string::npos) << message;
  }
  // The first one is unharmed.
  auto client = Client::Open(first.port(), kV113);
  client->Send(Ops{kV113}.Add("n", 4));
  EXPECT_EQ(client->ReadI64("ADD on the first server"), 4);
}

TEST(StoreServerBinding, Ipv6LoopbackWhenAvailable) {
  std::unique_ptr<runner::StoreServer> server;
  try {
    server = std::make_unique<runner::StoreServer>("::1", 0);
  } catch (const common::CommunicationError& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  auto client = Client::Connect(server->port(), "::1");
  client->Send(Bytes().U8(kV22Validate).U32(kMagic).U8(kV22Ping).U32(6));
  EXPECT_EQ(client->ReadScalar<uint32_t>("PING over IPv6"), 6u);
  auto [v4, err] = Client::TryConnect("127.0.0.1", server->port());
  EXPECT_FALSE(v4) << "the server bound to ::1 answered on 127.0.0.1";
  (void)err;
}

// ---- Lifetime, diagnostics, load ----

TEST(StoreServer, DestructionWithClientsConnectedAndWaitingDoesNotHang) {
  auto server = std::make_unique<runner::StoreServer>("127.0.0.1", 0);
  std::vector<std::unique_ptr<Client>> clients;
  for (const Dialect* d : {&kV113, &kV22, &kV113, &kV22}) {
    clients.push_back(Client::Open(server->port(), *d));
    clients.back()->Send(Ops{*d}.Wait({"never"}));
  }
  clients.push_back(Client::Connect(server->port()));
  clients.back()->Send(Ops{kV113}.Set("half", "x").data.substr(0, 5));  // half a request
  clients.push_back(Client::Connect(server->port()));                   // said nothing
  ASSERT_TRUE(Eventually([&] { return server->DescribeWaits().size() == 4; }));

  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  std::thread([s = std::move(server), done]() mutable {
    s.reset();
    done->set_value();
  }).detach();
  ASSERT_EQ(finished.wait_for(5s), std::future_status::ready) << "~StoreServer hung";
  for (size_t i = 0; i < clients.size(); ++i) {
    EXPECT_TRUE(clients[i]->ClosedByPeer()) << "client " << i << " was not disconnected";
  }
}

TEST(StoreServer, DescribeWaitsNamesThePeerAndKeys) {
  runner::StoreServer server("127.0.0.1", 0);
  EXPECT_TRUE(server.DescribeWaits().empty());
  auto waiter = Client::Open(server.port(), kV22);
  auto setter = Client::Open(server.port(), kV22);
  setter->Send(Ops{kV22}.Set("present", "1"));
  waiter->Send(Ops{kV22}.Wait({"present", "rank/1/ready", "rank/2/ready"}));
  ASSERT_TRUE(Eventually([&] { return server.DescribeWaits().size() == 1; }));
  const std::string line = server.DescribeWaits().front();
  EXPECT_NE(line.find("127.0.0.1:" + std::to_string(waiter->LocalPort())), std::string::npos)
      << line;
  EXPECT_NE(line.find("rank/1/ready"), std::string::npos) << line;
  EXPECT_NE(line.find("rank/2/ready"), std::string::npos) << line;
  EXPECT_EQ(line.find("present"), std::string::npos) << "names a key that exists: " << line;
  setter->Send(Ops{kV22}.Set("rank/1/ready", "1"));
  ASSERT_TRUE(Eventually([&] {
    auto waits = server.DescribeWaits();
    return waits.size() == 1 && waits.front().find("rank/1/ready") == std::string::npos;
  })) << "a key that now exists is still listed";
  setter->Send(Ops{kV22}.Set("rank/2/ready", "1"));
  EXPECT_EQ(waiter->ReadU8("STOP_WAITING"), kStopWaiting);
  EXPECT_TRUE(server.DescribeWaits().empty());
  // A waiting client that disconnects is no longer listed.
  auto quitter = Client::Open(server.port(), kV22);
  quitter->Send(Ops{kV22}.Wait({"gone"}));
  ASSERT_TRUE(Eventually([&] { return server.DescribeWaits().size() == 1; }));
  quitter->Close();
  EXPECT_TRUE(Eventually([&] { return server.DescribeWaits().empty(); }));
}

TEST(StoreServer, SixtyFourConcurrentClients) {
  runner::StoreServer server("127.0.0.1", 0);
  constexpr int kClients = 64;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    const Dialect& d = i % 2 ? kV22 : kV113;
    clients.push_back(Client::Open(server.port(), d));
    clients.back()->Send(Ops{d}.Wait({"go"}));
  }
  ASSERT_TRUE(Eventually([&] { return server.DescribeWaits().size() == kClients; }))
      << server.DescribeWaits().size() << " of " << kClients << " waiting";
  auto starter = Client::Open(server.port(), kV22);
  starter->Send(Ops{kV22}.Set("go", "1"));

  std::vector<std::thread> threads;
  std::vector<std::string> errors(kClients);
  std::vector<int64_t> counts(kClients);
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      try {
        Client& c = *clients[i];
        const Ops op{i % 2 ? kV22 : kV113};
        if (c.ReadU8("STOP_WAITING for go") != kStopWaiting)
          throw std::runtime_error("bad WAIT reply");
        const std::string key = "client/" + std::to_string(i);
        for (int round = 0; round < 20; ++round) {
          c.Send(Bytes()
                     .Append(op.Add("counter", 1))
                     .Append(op.Set(key, std::to_string(round)))
                     .Append(op.Get(key)));
          counts[i] = c.ReadI64("ADD counter");
          if (c.ReadStr("GET own key") != std::to_string(round))
            throw std::runtime_error("wrong own value");
        }
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(errors[i], "") << "client " << i;
  starter->Send(Ops{kV22}.Get("counter"));
  EXPECT_EQ(starter->ReadStr("GET counter"), std::to_string(kClients * 20));
  EXPECT_EQ(server.NumKeys(), size_t{kClients + 2});
}

}  // namespace
