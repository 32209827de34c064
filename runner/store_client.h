#pragma once
// A small blocking client of the job's store (runner/store_server.h), for the agents' own use:
// the control plane over TCP (runner/control_plane_store.cpp) meets and talks through it. It
// speaks the PyTorch >= 2.2 dialect (VALIDATE first). Every call is bounded: a store that does not
// answer within the request timeout, or a connection that breaks, is a
// common::CommunicationError naming the store's address and port. Not thread-safe: one client per
// thread.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace runner {

class StoreClient {
 public:
  // Connects to `host:port` (a name or an IPv4 literal), retrying refused or unreachable
  // connections until `connect_timeout_s` has passed. `what` names the store in errors (for
  // example "the job's store at MASTER_ADDR:MASTER_PORT = 10.0.0.1:29500"); `request_timeout_s`
  // bounds every later call. `between_tries` runs before each pause between tries (it may throw
  // to give up early: the rendezvous ends on a stop signal that way).
  StoreClient(const std::string& host, int port, double connect_timeout_s, double request_timeout_s,
              std::string what, const std::function<void()>& between_tries = {});
  ~StoreClient();
  StoreClient(const StoreClient&) = delete;
  StoreClient& operator=(const StoreClient&) = delete;

  void Set(const std::string& key, const std::string& value);
  [[nodiscard]] std::string Get(const std::string& key);  // "" when missing
  [[nodiscard]] int64_t Add(const std::string& key, int64_t delta);
  [[nodiscard]] bool Check(const std::vector<std::string>& keys);
  // One value per key, "" for a missing one.
  [[nodiscard]] std::vector<std::string> MultiGet(const std::vector<std::string>& keys);
  // Blocks at the store until every key exists (true), at most `timeout_s` (false: the wait is
  // cancelled with CANCEL_WAIT). The store answers when the last key is set: no polling.
  [[nodiscard]] bool Wait(const std::vector<std::string>& keys, double timeout_s);
  [[nodiscard]] const std::string& what() const { return what_; }
  // This end of the connection as the store names its peers ("10.0.0.2:41234"); "" if unknown.
  [[nodiscard]] std::string LocalName() const;

 private:
  void Send(const std::string& bytes);
  [[nodiscard]] std::string Read(size_t n);
  // Up to `n` bytes within `timeout_s`: fewer (possibly none) when the time is up.
  [[nodiscard]] std::string ReadWithin(size_t n, double timeout_s);
  [[nodiscard]] std::string ReadBytes();
  [[noreturn]] void Fail(const std::string& why) const;

  int fd_ = -1;
  double request_timeout_s_;
  std::string what_;
};

// The IPv4 address `host` resolves to ("" when it does not), for binding the store where the
// other machines reach it.
[[nodiscard]] std::string ResolveIpv4(const std::string& host);

}  // namespace runner
