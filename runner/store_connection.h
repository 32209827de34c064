#pragma once
// One client connection of the store server (runner/store_server.h) and its framing: the dialect it
// speaks (decided by its first bytes: VALIDATE with the magic, or a 1.13 request), cutting its
// input into requests, handing each to the state machine (runner/store_state.h), and dropping the
// stale WAIT of a 1.13 client that moved on. Socket-free: the server reads into `in`, sends `out`,
// and closes the socket once `closing` is set.

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
};

// Answers every complete request in `conn.in`, in order, consuming them; returns the replies, for
// `conn` and for the connections the requests woke, to be appended to their `out` in order. A
// request no client sends (a wrong validation number, an unknown query type, absurd sizes) sets
// `conn.closing` and logs why; the requests before it are still answered.
[[nodiscard]] StoreState::Replies ServeRequests(StoreConnection& conn, StoreState& state,
                                                const std::function<void(const std::string&)>& log);

}  // namespace runner
