// runner::StoreServer's listening socket: bound to exactly the address given (IPv4 or IPv6), port 0
// picks a free port, errors that name a bad address or a port in use, and the options every
// accepted connection inherits from it.

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include "common/errors.h"
#include "runner/store_server.h"
#include "runner/store_socket.h"
#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

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

// The server sets no option per connection: Linux copies the listening socket's into each one.
TEST(StoreServerBinding, AcceptedConnectionsInheritNoDelayAndKeepalive) {
  uint16_t port = 0;
  const int listener = runner::store_socket::Listen("127.0.0.1", 0, &port);
  auto client = Client::Connect(port);
  pollfd ready{listener, POLLIN, 0};
  ASSERT_EQ(poll(&ready, 1, 5000), 1) << "no connection to accept within 5 s";
  const int fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  struct Option {
    int level, name, expected;
    const char* what;
  };
  for (const Option& o : {Option{IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY"},
                          Option{SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE"},
                          Option{IPPROTO_TCP, TCP_KEEPIDLE, 60, "TCP_KEEPIDLE"},
                          Option{IPPROTO_TCP, TCP_KEEPINTVL, 10, "TCP_KEEPINTVL"},
                          Option{IPPROTO_TCP, TCP_KEEPCNT, 6, "TCP_KEEPCNT"}}) {
    int value = -1;
    socklen_t len = sizeof(value);
    ASSERT_EQ(getsockopt(fd, o.level, o.name, &value, &len), 0) << o.what;
    EXPECT_EQ(value != 0 && o.expected == 1 ? 1 : value, o.expected) << o.what;
  }
  close(fd);
  close(listener);
}

}  // namespace
}  // namespace store_test
