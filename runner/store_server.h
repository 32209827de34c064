#pragma once
// The c10d store the workers meet at: a server for PyTorch's TCPStore wire protocol, hosted by the
// node-0 agent on its own thread.
//
// Why not LibTorch's TCPStore server: in LibTorch 1.13 it listens on every interface (no bind
// address option), and the store must listen only on the address the other nodes reach it by.
// This server binds exactly the address it is given (port 0: the OS picks a free one).
//
// It speaks both wire dialects stock clients use, chosen per connection: PyTorch 1.13 (no
// handshake; SET=0 ... DELETE_KEY=8, plus 2.0's APPEND/MULTI_GET/MULTI_SET/CANCEL_WAIT) and PyTorch
// 2.2 and later (VALIDATE with magic 0x3C85F7CE first; SET=1 ... PING, QUEUE_*, LIST). Requests are
// raw host-order integers and u64-length-prefixed byte strings. Details: docs/ARCHITECTURE.md.
//
// Only the job may reach it: peers outside StoreServerOptions::allow are refused, and each
// connection's size is capped (connections, key and value sizes, buffered bytes). A bad or
// oversized request closes that connection only.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runner/store_access.h"

namespace runner {

// Who may connect, and how much one connection may cost. A peer over a cap is closed (its
// connection only) and logged with its address; those log lines are rate-limited.
struct StoreServerOptions {
  // Peers not on the list are refused: closed at once, and logged with how to let them in.
  StoreAllowList allow = StoreAllowList::Loopback();
  // Open connections at once; one more is refused. A worker holds one (two for a PyTorch 1.13
  // client that watches keys); 16384 fits thousands of workers. The server raises the process's
  // soft open-files limit (up to the hard one) to reach it.
  size_t max_connections = 16384;
  // A request whose key or value is longer closes its connection. c10d keys are paths of a few
  // dozen bytes; values are addresses, NCCL ids, small pickles.
  uint64_t max_key_bytes = uint64_t{64} << 10;
  uint64_t max_value_bytes = uint64_t{64} << 20;
  // Bytes held for one connection: requests received and not yet answered, and replies not yet
  // sent. Over this the connection is closed. At least one largest request or reply.
  size_t max_buffered_bytes = size_t{256} << 20;
  // While this many reply bytes wait for a connection its next requests stay unread (the client
  // blocks in send): a client that sends and never reads holds about this much, not more.
  size_t pause_reading_bytes = size_t{1} << 20;
  // Lines a peer can provoke (refusals, caps, bad requests): `log_burst` at once, then one per
  // `log_interval` (10 a minute); the next line says how many were left out.
  int log_burst = 20;
  std::chrono::milliseconds log_interval{6000};
};

// Descriptors a process holding the store needs besides the store's connections (logs, pipes,
// MPI, workers): the store raises the open-files limit to its cap plus these, and the agent's
// capacity check (runner/store_job.h) asks for them too.
inline constexpr uint64_t kStoreOtherFiles = 256;

// What the server has seen, for diagnostics and tests.
struct StoreServerStats {
  size_t connections = 0;         // open now
  size_t buffered_bytes = 0;      // held for them now (unanswered requests and unsent replies)
  size_t paused = 0;              // of them, not read from: their replies wait unread
  uint64_t refused = 0;           // connections refused: not allowed, or over max_connections
  uint64_t closed_by_server = 0;  // for a bad request or a cap (key, value, buffered bytes)
  uint64_t log_lines_left_out = 0;
  uint64_t bytes_read = 0;   // requests, since the start
  uint64_t replies = 0;      // answers queued, since the start
  uint64_t reply_bytes = 0;  // their bytes
};

class StoreServer {
 public:
  using LogFn = std::function<void(const std::string&)>;

  // Binds `address` (an IPv4 or IPv6 literal such as "127.0.0.1") and starts serving.
  // Throws common::CommunicationError naming the address and port when it cannot listen.
  StoreServer(const std::string& address, uint16_t port, LogFn log = nullptr,
              StoreServerOptions options = {});
  ~StoreServer();  // stops the thread and closes every connection; never throws
  StoreServer(const StoreServer&) = delete;
  StoreServer& operator=(const StoreServer&) = delete;

  [[nodiscard]] uint16_t port() const;
  [[nodiscard]] const std::string& address() const;
  [[nodiscard]] size_t max_connections() const;  // StoreServerOptions::max_connections
  // For diagnostics of a hang: each client still waiting, and for which keys.
  [[nodiscard]] std::vector<std::string> DescribeWaits() const;
  [[nodiscard]] size_t NumKeys() const;
  [[nodiscard]] StoreServerStats Stats() const;
  // Who may connect from now on; connections already open stay. (The TCP rendezvous opens the
  // store to any agent until they have met, then narrows it to the job's hosts.)
  void SetAllowList(StoreAllowList allow);
  // Called with the peer's name (as the store logs it, "10.0.0.2:41234") whenever a connection
  // ends, from the store's thread with its lock held: it must be quick and must not call the
  // server. Null: nobody. Once this returns, the previous observer is never called again.
  void SetCloseObserver(std::function<void(const std::string& peer)> observer);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace runner
