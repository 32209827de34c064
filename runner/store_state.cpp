#include "runner/store_state.h"

#include <exception>

namespace runner {

namespace {

using store_protocol::Op;
using store_protocol::Writer;
using Replies = StoreState::Replies;

template <typename T>
std::string Scalar(T value) {
  std::string out;
  Writer(&out).Scalar<T>(value);
  return out;
}

std::string Bytes(const std::string& value) {
  std::string out;
  Writer(&out).Bytes(value);
  return out;
}

// `replies` with `bytes` for `to` appended; an empty reply is none (SET, APPEND, ... answer
// nothing).
Replies With(Replies replies, ConnectionId to, std::string bytes) {
  if (!bytes.empty()) replies.push_back({to, std::move(bytes)});
  return replies;
}

}  // namespace

Replies StoreState::Apply(ConnectionId from, const store_protocol::Request& r) {
  switch (r.op) {
    case Op::kSet:
      return Set(from, r.key, r.value);
    case Op::kCompareSet:
      return CompareSet(from, r.key, r.value, r.desired);
    case Op::kGet:
      return Get(from, r.key);
    case Op::kAdd:
      return Add(from, r.key, r.delta);
    case Op::kCheck:
      return Check(from, r.keys);
    case Op::kWait:
      return Wait(from, r.keys);
    case Op::kCancelWait:
      return CancelWait(from);
    case Op::kNumKeys:
      return NumKeys(from);
    case Op::kWatchKey:
      return WatchKey(from, r.key);
    case Op::kDeleteKey:
      return DeleteKey(from, r.key);
    case Op::kAppend:
      return Append(from, r.key, r.value);
    case Op::kMultiGet:
      return MultiGet(from, r.keys);
    case Op::kMultiSet:
      return MultiSet(from, r.items);
    case Op::kPing:
      return Ping(from, r.number);
    case Op::kQueuePush:
      return QueuePush(from, r.key, r.value);
    case Op::kQueuePop:
      return QueuePop(from, r.key);
    case Op::kQueueLen:
      return QueueLen(from, r.key);
    case Op::kList:
      return List(from);
    case Op::kValidate:
    case Op::kUnknown:
      break;
  }
  return {};
}

Replies StoreState::Set(ConnectionId, const std::string& key, std::string value) {
  Replies out;
  Store(key, std::move(value), &out);
  return out;
}

Replies StoreState::CompareSet(ConnectionId from, const std::string& key,
                               const std::string& expected, const std::string& desired) {
  Replies out;
  const std::string* current = Find(key);
  if (current == nullptr) {
    if (!expected.empty()) return With(std::move(out), from, Bytes(expected));
    Store(key, desired, &out);
  } else if (*current == expected) {
    Store(key, desired, &out);
  }
  return With(std::move(out), from, Bytes(data_[key]));
}

Replies StoreState::Get(ConnectionId from, const std::string& key) {
  const std::string* value = Find(key);
  return With({}, from, Bytes(value ? *value : std::string()));
}

Replies StoreState::Add(ConnectionId from, const std::string& key, int64_t delta) {
  int64_t value = delta;
  if (const std::string* current = Find(key)) {
    try {
      // Wraps around on overflow (as PyTorch's server does in practice) instead of UB.
      value = static_cast<int64_t>(static_cast<uint64_t>(std::stoll(*current)) +
                                   static_cast<uint64_t>(delta));
    } catch (const std::exception&) {
      Log("store: ADD to key '" + key + "' whose value is not a number; treated as 0");
    }
  }
  Replies out;
  Store(key, std::to_string(value), &out);
  return With(std::move(out), from, Scalar<int64_t>(value));
}

Replies StoreState::Check(ConnectionId from, const std::vector<std::string>& keys) {
  bool ready = true;
  for (const std::string& key : keys) ready = ready && Exists(key);
  return With({}, from, Scalar<uint8_t>(ready ? kReady : kNotReady));
}

Replies StoreState::Wait(ConnectionId from, const std::vector<std::string>& keys) {
  DropWait(from);
  PendingWait wait;
  for (const std::string& key : keys) {
    if (!Exists(key)) wait.missing.insert(key);
  }
  if (wait.missing.empty()) return With({}, from, Scalar<uint8_t>(kStopWaiting));
  wait.seq = ++wait_counter_;
  for (const std::string& key : wait.missing) waiters_[key][wait.seq] = from;
  waits_[from] = std::move(wait);
  return {};
}

Replies StoreState::CancelWait(ConnectionId from) {
  DropWait(from);
  return With({}, from, Scalar<uint8_t>(kWaitCanceled));
}

Replies StoreState::NumKeys(ConnectionId from) {
  return With({}, from, Scalar<int64_t>(static_cast<int64_t>(data_.size())));
}

Replies StoreState::WatchKey(ConnectionId from, const std::string& key) {
  watchers_[key].insert(from);
  watched_[from].insert(key);
  return With({}, from, Scalar<uint8_t>(kCallbackRegistered));
}

Replies StoreState::DeleteKey(ConnectionId from, const std::string& key) {
  Replies out;
  auto it = data_.find(key);
  if (it == data_.end()) return With(std::move(out), from, Scalar<int64_t>(0));
  const std::string old = std::move(it->second);
  data_.erase(it);
  Touched(key, &old, nullptr, /*wake_one=*/false, &out);
  return With(std::move(out), from, Scalar<int64_t>(1));
}

Replies StoreState::Append(ConnectionId, const std::string& key, const std::string& value) {
  const std::string* current = Find(key);
  Replies out;
  Store(key, (current ? *current : std::string()) + value, &out);
  return out;
}

Replies StoreState::MultiGet(ConnectionId from, const std::vector<std::string>& keys) {
  std::string reply;
  for (const std::string& key : keys) {
    const std::string* value = Find(key);
    Writer(&reply).Bytes(value ? *value : std::string());
  }
  return With({}, from, std::move(reply));
}

Replies StoreState::MultiSet(ConnectionId, std::vector<std::pair<std::string, std::string>> items) {
  Replies out;
  for (auto& [key, value] : items) Store(key, std::move(value), &out);
  return out;
}

Replies StoreState::Ping(ConnectionId from, uint32_t nonce) {
  return With({}, from, Scalar<uint32_t>(nonce));
}

Replies StoreState::QueuePush(ConnectionId, const std::string& key, std::string value) {
  std::deque<std::string>& queue = queues_[key];
  queue.push_back(std::move(value));
  Replies out;
  Touched(key, nullptr, &queue.back(), /*wake_one=*/true, &out);
  return out;
}

Replies StoreState::QueuePop(ConnectionId from, const std::string& key) {
  std::deque<std::string>& queue = queues_[key];
  std::string reply = Scalar<int64_t>(static_cast<int64_t>(queue.size()));
  if (!queue.empty()) {
    Writer(&reply).Bytes(queue.front());
    queue.pop_front();
  }
  return With({}, from, std::move(reply));
}

Replies StoreState::QueueLen(ConnectionId from, const std::string& key) {
  return With({}, from, Scalar<int64_t>(static_cast<int64_t>(queues_[key].size())));
}

Replies StoreState::List(ConnectionId from) {
  std::string reply = Scalar<int64_t>(static_cast<int64_t>(data_.size()));
  for (const auto& [key, value] : data_) Writer(&reply).Bytes(key);
  return With({}, from, std::move(reply));
}

void StoreState::DropWait(ConnectionId conn) {
  auto it = waits_.find(conn);
  if (it == waits_.end()) return;
  for (const std::string& key : it->second.missing) {
    auto waiting = waiters_.find(key);
    if (waiting == waiters_.end()) continue;
    waiting->second.erase(it->second.seq);
    if (waiting->second.empty()) waiters_.erase(waiting);
  }
  waits_.erase(it);
}

void StoreState::Disconnect(ConnectionId conn) {
  DropWait(conn);
  auto watched = watched_.find(conn);
  if (watched == watched_.end()) return;
  for (const std::string& key : watched->second) {
    auto it = watchers_.find(key);
    if (it == watchers_.end()) continue;
    it->second.erase(conn);
    if (it->second.empty()) watchers_.erase(it);
  }
  watched_.erase(watched);
}

std::map<ConnectionId, std::set<std::string>> StoreState::Waits() const {
  std::map<ConnectionId, std::set<std::string>> out;
  for (const auto& [conn, wait] : waits_) out[conn] = wait.missing;
  return out;
}

bool StoreState::Exists(const std::string& key) const {
  if (data_.count(key)) return true;
  auto q = queues_.find(key);
  return q != queues_.end() && !q->second.empty();
}

const std::string* StoreState::Find(const std::string& key) const {
  auto it = data_.find(key);
  return it == data_.end() ? nullptr : &it->second;
}

void StoreState::Store(const std::string& key, std::string value, Replies* out) {
  auto [it, created] = data_.try_emplace(key);
  const std::string old = created ? std::string() : std::move(it->second);
  it->second = std::move(value);
  Touched(key, created ? nullptr : &old, &it->second, /*wake_one=*/false, out);
}

void StoreState::Touched(const std::string& key, const std::string* old_value,
                         const std::string* new_value, bool wake_one, Replies* out) {
  auto waiting = waiters_.find(key);
  if (waiting != waiters_.end()) {
    // Oldest first; each waiter stops missing the key, and one that misses nothing more is woken.
    std::map<uint64_t, ConnectionId>& by_seq = waiting->second;
    for (auto it = by_seq.begin(); it != by_seq.end();) {
      const ConnectionId conn = it->second;
      it = by_seq.erase(it);
      auto wait = waits_.find(conn);
      wait->second.missing.erase(key);
      if (!wait->second.missing.empty()) continue;
      waits_.erase(wait);
      out->push_back({conn, Scalar<uint8_t>(kStopWaiting)});
      if (wake_one) break;
    }
    if (by_seq.empty()) waiters_.erase(waiting);
  }
  auto watching = watchers_.find(key);
  if (watching == watchers_.end()) return;
  std::string event = Scalar<uint8_t>(new_value == nullptr   ? kKeyDeleted
                                      : old_value == nullptr ? kKeyCreated
                                                             : kKeyUpdated);
  Writer w(&event);
  w.Bytes(key);
  w.Bytes(old_value ? *old_value : "");
  w.Bytes(new_value ? *new_value : "");
  for (ConnectionId conn : watching->second) out->push_back({conn, event});
}

}  // namespace runner
