#pragma once
// One client connection of the store server (runner/store_server.h) and its framing: the dialect it
// speaks (decided by its first bytes: VALIDATE with the magic, or a 1.13 request), cutting its
// input into requests, handing each to the state machine (runner/store_state.h), and dropping the
// stale WAIT of a 1.13 client that moved on. Socket-free: the server reads into `in`, sends `out`,
// and closes the socket once `closing` is set.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "runner/store_protocol.h"
#include "runner/store_state.h"

namespace runner {

struct StoreConnection {
  ConnectionId id = -1;  // the socket's descriptor
  std::string peer;      // "address:port", for log lines and DescribeWaits
  store_protocol::Dialect dialect = store_protocol::Dialect::kUndecided;
  std::string in;   // received bytes not yet answered (at most the start of one request)
  std::string out;  // reply bytes not yet sent
  bool closing = false;
  int last_query = -1;  // the query byte of the last request answered; -1: none yet
  // The server's bookkeeping: the epoll events it watches for, and whether it is on this round's
  // list of connections to settle (flush, answer, close).
  uint32_t interest = 0;
  bool touched = false;
};

// Whether a request that does not parse (an unknown query type, a malformed request) on `conn`
// looks like a PyTorch 2.0/2.1 client's rather than garbage. Those send no handshake, as 1.13
// does, and number SET=0 ... GETNUMKEYS=6 the same, but from 7 on differently (2.1: DELETE_KEY=7,
// APPEND=8, MULTI_GET=9, MULTI_SET=10, CANCEL_WAIT=11, no WATCH_KEY): read as 1.13, such a
// request leaves a tail (APPEND read as DELETE_KEY), or takes the next one's bytes (MULTI_SET read
// as MULTI_GET), and it is the request after it that fails. So: the 1.13 dialect, and either the
// failing request's own query byte or the last answered one in 7..11. `query` is the failing
// request's first byte.
[[nodiscard]] bool LooksLikePyTorch20Or21(const StoreConnection& conn, uint8_t query);

// "0d 01 00 00 ..." : the first `max` bytes of `bytes` in hex, for log lines.
[[nodiscard]] std::string HexPrefix(const std::string& bytes, size_t max = 16);

// What one connection may send and be sent (from StoreServerOptions).
struct ServeLimits {
  uint64_t max_key_bytes = store_protocol::kMaxKeyBytes;
  uint64_t max_value_bytes = store_protocol::kMaxValueBytes;
  // Requests are left in `in`, unanswered, once this many reply bytes wait for `conn`.
  size_t pause_reading_bytes = SIZE_MAX;
};

// Answers the complete requests in `conn.in`, in order, consuming them, until none is left or
// `conn.out` and the replies for `conn` reach `limits.pause_reading_bytes`; returns the replies,
// for `conn` and for the connections the requests woke, to be appended to their `out` in order. A
// request no client sends (a wrong validation number, an unknown query type, a key or value over
// the limits, absurd sizes) sets `conn.closing` and logs why; the requests before it are still
// answered.
[[nodiscard]] StoreState::Replies ServeRequests(StoreConnection& conn, StoreState& state,
                                                const ServeLimits& limits,
                                                const std::function<void(const std::string&)>& log);

}  // namespace runner
