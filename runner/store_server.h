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

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace runner {

class StoreServer {
 public:
  using LogFn = std::function<void(const std::string&)>;

  // Binds `address` (an IPv4 or IPv6 literal such as "127.0.0.1") and starts serving.
  // Throws common::CommunicationError naming the address and port when it cannot listen.
  StoreServer(const std::string& address, uint16_t port, LogFn log = nullptr);
  ~StoreServer();  // stops the thread and closes every connection; never throws
  StoreServer(const StoreServer&) = delete;
  StoreServer& operator=(const StoreServer&) = delete;

  [[nodiscard]] uint16_t port() const;
  [[nodiscard]] const std::string& address() const;
  // For diagnostics of a hang: each client still waiting, and for which keys.
  [[nodiscard]] std::vector<std::string> DescribeWaits() const;
  [[nodiscard]] size_t NumKeys() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace runner
