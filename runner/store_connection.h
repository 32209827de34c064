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
  // The server's bookkeeping: the epoll events it watches for, and whether it is on this round's
  // list of connections to settle (flush, answer, close).
  uint32_t interest = 0;
  bool touched = false;
};

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
