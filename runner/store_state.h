#pragma once
// The c10d store's state machine: keys and values, queues, pending WAITs and 1.13 WATCH_KEYs, with
// TCPStore's semantics, one method per operation. It never touches sockets, threads or clocks: the
// connection layer (runner/store_server.cpp) decodes a request from connection `from`, calls the
// method, and appends each returned Reply's bytes (already in wire form, the same in both dialects)
// to that connection's output, in order. Replies go to `from` and to the connections a change
// wakes: WAITs it completes (STOP_WAITING) and watchers of the key (a watch event).
//
// Not thread-safe: the caller serialises calls.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runner/store_protocol.h"

namespace runner {

// A client connection as the state machine knows it; the server uses the socket's descriptor.
using ConnectionId = int;

class StoreState {
 public:
  using LogFn = std::function<void(const std::string&)>;
  struct Reply {
    ConnectionId to;
    std::string bytes;
    bool operator==(const Reply& other) const { return to == other.to && bytes == other.bytes; }
  };
  using Replies = std::vector<Reply>;

  // Reply bytes of WAIT, CANCEL_WAIT and WATCH_KEY, and the type byte of a watch event.
  static constexpr uint8_t kStopWaiting = 0, kWaitCanceled = 1, kCallbackRegistered = 3;
  static constexpr uint8_t kKeyUpdated = 0, kKeyCreated = 1, kKeyDeleted = 2;
  // CHECK's reply.
  static constexpr uint8_t kReady = 0, kNotReady = 1;

  explicit StoreState(LogFn log = nullptr) : log_(std::move(log)) {}

  // Calls the method of `request.op`. VALIDATE and unknown ops belong to the connection layer
  // (framing): passing them is a bug and answers nothing.
  [[nodiscard]] Replies Apply(ConnectionId from, const store_protocol::Request& request);

  [[nodiscard]] Replies Set(ConnectionId from, const std::string& key, std::string value);
  // Missing key: created when `expected` is empty (replies `desired`), else left missing (replies
  // `expected`). Present key: set to `desired` when it equals `expected`; replies the value after.
  [[nodiscard]] Replies CompareSet(ConnectionId from, const std::string& key,
                                   const std::string& expected, const std::string& desired);
  [[nodiscard]] Replies Get(ConnectionId from, const std::string& key);  // missing: empty
  // A missing key or one that is not a decimal number counts from 0; wraps around on overflow.
  [[nodiscard]] Replies Add(ConnectionId from, const std::string& key, int64_t delta);
  [[nodiscard]] Replies Check(ConnectionId from, const std::vector<std::string>& keys);
  // Replies STOP_WAITING at once when every key exists (a queue exists while it holds items);
  // otherwise once the last missing one appears. Replaces any wait `from` had pending.
  [[nodiscard]] Replies Wait(ConnectionId from, const std::vector<std::string>& keys);
  [[nodiscard]] Replies CancelWait(ConnectionId from);
  [[nodiscard]] Replies NumKeys(ConnectionId from);  // queues not counted
  [[nodiscard]] Replies WatchKey(ConnectionId from, const std::string& key);
  [[nodiscard]] Replies DeleteKey(ConnectionId from, const std::string& key);
  [[nodiscard]] Replies Append(ConnectionId from, const std::string& key, const std::string& value);
  [[nodiscard]] Replies MultiGet(ConnectionId from, const std::vector<std::string>& keys);
  [[nodiscard]] Replies MultiSet(ConnectionId from,
                                 std::vector<std::pair<std::string, std::string>> items);
  [[nodiscard]] Replies Ping(ConnectionId from, uint32_t nonce);
  // An item wakes only the oldest WAIT it completes: it is for one popper.
  [[nodiscard]] Replies QueuePush(ConnectionId from, const std::string& key, std::string value);
  [[nodiscard]] Replies QueuePop(ConnectionId from, const std::string& key);
  [[nodiscard]] Replies QueueLen(ConnectionId from, const std::string& key);
  [[nodiscard]] Replies List(ConnectionId from);  // the keys, sorted; queues not listed

  // Forgets `conn`'s pending WAIT without a reply: a 1.13 client that gave up waiting on a socket
  // timeout moved on without cancelling.
  void DropWait(ConnectionId conn);
  // Forgets everything about a connection that closed (its wait and its watches).
  void Disconnect(ConnectionId conn);

  // Each connection with a pending WAIT and the keys it still misses, by connection.
  [[nodiscard]] std::map<ConnectionId, std::set<std::string>> Waits() const;
  [[nodiscard]] size_t NumKeys() const { return data_.size(); }

 private:
  struct PendingWait {
    std::set<std::string> missing;
    uint64_t seq = 0;  // when it began: queue items wake the oldest
  };

  [[nodiscard]] bool Exists(const std::string& key) const;
  [[nodiscard]] const std::string* Find(const std::string& key) const;
  // Stores `value` and appends to `out` what the change wakes.
  void Store(const std::string& key, std::string value, Replies* out);
  // A key was created, changed or deleted (new_value null): finishes the WAITs it completes and
  // tells its watchers.
  void Touched(const std::string& key, const std::string* old_value, const std::string* new_value,
               bool wake_one, Replies* out);
  void Log(const std::string& line) const {
    if (log_) log_(line);
  }

  LogFn log_;
  std::map<std::string, std::string> data_;
  std::map<std::string, std::deque<std::string>> queues_;
  std::map<ConnectionId, PendingWait> waits_;
  // Key -> the connections waiting for it, by the seq of their wait (oldest first).
  std::map<std::string, std::map<uint64_t, ConnectionId>> waiters_;
  std::map<std::string, std::set<ConnectionId>> watchers_;
  std::map<ConnectionId, std::set<std::string>> watched_;  // the reverse: a closing one's keys
  uint64_t wait_counter_ = 0;
};

}  // namespace runner
