// runner::ServeRequests on byte strings, without sockets: what the store says about a request it
// cannot read. Only bytes that look like a PyTorch 2.0/2.1 client (no handshake, a query numbered
// differently from 1.13's) get the "2.0 or 2.1?" question; garbage (HTTP, TLS, SSH, random
// bytes, an unknown query of a known dialect) is called an unrecognised request, with its first
// bytes and the peer.

#include "runner/store_connection.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

// PyTorch 2.1's numbering (TCPStoreBackend.hpp): no handshake, no WATCH_KEY.
constexpr uint8_t k21Add = 3, k21DeleteKey = 7, k21Append = 8, k21MultiGet = 9, k21MultiSet = 10;

struct Case {
  const char* what;
  std::string bytes;  // everything the client sent, from its first byte
  bool hint;          // "PyTorch 2.0 or 2.1?"
  std::string says;   // part of the line
};

std::vector<std::string> Serve(const std::string& bytes) {
  runner::StoreState state;
  runner::StoreConnection conn;
  conn.id = 7;
  conn.peer = "10.0.0.9:41000";
  conn.in = bytes;
  std::vector<std::string> lines;
  (void)runner::ServeRequests(conn, state, runner::ServeLimits{},
                              [&](const std::string& line) { lines.push_back(line); });
  return lines;
}

TEST(StoreConnectionTest, OnlyBytesLikeAPyTorch20Or21ClientAreAskedAbout) {
  const std::string unrecognised = "store: unrecognised request from 10.0.0.9:41000: query type ";
  const std::vector<Case> cases = {
      {"an HTTP request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false,
       unrecognised + "71 is unknown in the PyTorch 1.13 dialect (first bytes: 47 45 54 20 2f 20 " +
           "48 54 54 50 2f 31 2e 31 0d 0a ...); closed"},
      {"a TLS ClientHello", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), false,
       unrecognised + "22 is unknown in the PyTorch 1.13 dialect (first bytes: 16 03 01 02 00 " +
           "01 00 01 fc 03 03)"},
      {"an SSH banner", "SSH-2.0-OpenSSH_9.2\r\n", false, unrecognised + "83 is unknown"},
      {"all ones", std::string(64, '\xff'), false, unrecognised + "255 is unknown"},
      {"a 1.13 GET, then an unknown query", Bytes().U8(kV113.get).Str("k").U8(13).Str("k").data,
       false, unrecognised + "13 is unknown in the PyTorch 1.13 dialect (first bytes: 0d 01 00"},
      {"a 2.2 handshake, then an unknown query",
       Bytes().U8(kV22Validate).U32(kMagic).U8(18).Str("k").data, false,
       unrecognised + "18 is unknown in the PyTorch >= 2.2 dialect (first bytes: 12 01 00"},
      {"a 1.13 key count no client sends", Bytes().U8(kV113.wait).U64(uint64_t{1} << 40).data,
       false,
       "sent a request with a key count of 1099511627776 (at most 1048576) (first bytes: 05 00 00 "
       "00 00 00 01 00 00); closed"},
      {"2.1: ADD init/, then APPEND (read as 1.13's DELETE_KEY, its value left over)",
       Bytes().U8(k21Add).Str("init/").I64(1).U8(k21Append).Str("k").Str("value").data, true,
       "sent a request with a key count of 8502796096475496448 (at most 1048576) (first bytes: 05 "
       "00 00 00 00 00 00 00 76 61 6c 75 65); is the worker's PyTorch 2.0 or 2.1?"},
      {"2.1: MULTI_SET (read as 1.13's MULTI_GET, its values left over)",
       Bytes().U8(k21MultiSet).I64(1).Str("k").Str("v").data, true,
       "is the worker's PyTorch 2.0 or 2.1? Those send no handshake, as 1.13 does, but number the "
       "queries differently from 7 on, and are not supported: use PyTorch 1.13 or >= 2.2; closed"},
      {"2.1: MULTI_GET first (read as 1.13's APPEND)",
       Bytes().U8(k21MultiGet).Keys({"a", "b"}).data, true, "is the worker's PyTorch 2.0 or 2.1?"},
      {"2.1: DELETE_KEY (read as WATCH_KEY), then an unknown query",
       Bytes().U8(k21DeleteKey).Str("k").U8(40).data, true,
       "store: client 10.0.0.9:41000 sent a request that is not PyTorch 1.13's after query type 7: "
       "query type 40 is unknown in the PyTorch 1.13 dialect (first bytes: 28); is the worker's "
       "PyTorch 2.0 or 2.1?"},
  };
  for (const Case& c : cases) {
    const std::vector<std::string> lines = Serve(c.bytes);
    ASSERT_EQ(lines.size(), 1u) << c.what;
    EXPECT_NE(lines[0].find(c.says), std::string::npos) << c.what << "\n" << lines[0];
    EXPECT_EQ(lines[0].find("2.0 or 2.1") != std::string::npos, c.hint) << c.what << "\n"
                                                                        << lines[0];
  }
}

TEST(StoreConnectionTest, HonestClientsOfBothDialectsAreNotLoggedAbout) {
  EXPECT_TRUE(Serve(Bytes()
                        .U8(kV113.set)
                        .Str("k")
                        .Str("v")
                        .U8(kV113WatchKey)
                        .Str("k")
                        .U8(kV113.delete_key)
                        .Str("k")
                        .data)
                  .empty());
  EXPECT_TRUE(
      Serve(
          Bytes().U8(kV22Validate).U32(kMagic).U8(kV22.append).Str("k").Str("v").U8(kV22List).data)
          .empty());
}

TEST(StoreConnectionTest, HexPrefixShowsAtMostTheFirstBytes) {
  EXPECT_EQ(runner::HexPrefix(""), "none");
  EXPECT_EQ(runner::HexPrefix(std::string("\x00\xff", 2)), "00 ff");
  EXPECT_EQ(runner::HexPrefix("abcdef", 4), "61 62 63 64 ...");
}

}  // namespace
}  // namespace store_test
