#pragma once
// The TCPStore wire codec the store server speaks (runner/store_server.h): the two dialects'
// query numbering mapped onto one set of operations, and readers/writers for the framing (raw
// host-order integers, u64-length-prefixed byte strings, u64-counted key lists), and a request's
// decoded arguments. Internal to the server: the connection layer (runner/store_connection.h)
// reads requests with it, and the state machine (runner/store_state.h) writes its replies with it.

#include <cstdint>
#include <cstring>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace runner::store_protocol {

constexpr uint32_t kValidationMagic = 0x3C85F7CE;
// Sizes no real client sends; a request claiming more is garbage, and its connection is closed
// rather than buffered for ever. Keys are c10d paths of a few dozen bytes. The server's own caps
// (StoreServerOptions) are at most these; the dialect check relies on kMaxKeyBytes.
constexpr uint64_t kMaxKeyBytes = uint64_t{1} << 20;
constexpr uint64_t kMaxValueBytes = uint64_t{1} << 30;
constexpr uint64_t kMaxKeyCount = uint64_t{1} << 20;
// Canonical operations; each dialect maps its query bytes onto these.
enum class Op {
  kValidate,
  kSet,
  kCompareSet,
  kGet,
  kAdd,
  kCheck,
  kWait,
  kNumKeys,
  kWatchKey,
  kDeleteKey,
  kAppend,
  kMultiGet,
  kMultiSet,
  kCancelWait,
  kPing,
  kQueuePush,
  kQueuePop,
  kQueueLen,
  kList,
  kUnknown,
};
enum class Dialect { kUndecided, kV1, kV2 };

inline Op DecodeOp(Dialect dialect, uint8_t byte) {
  static const Op v1[] = {Op::kSet,       Op::kCompareSet, Op::kGet,      Op::kAdd,
                          Op::kCheck,     Op::kWait,       Op::kNumKeys,  Op::kWatchKey,
                          Op::kDeleteKey, Op::kAppend,     Op::kMultiGet, Op::kMultiSet,
                          Op::kCancelWait};
  static const Op v2[] = {
      Op::kValidate,   Op::kSet,     Op::kCompareSet, Op::kGet,      Op::kAdd,      Op::kCheck,
      Op::kWait,       Op::kNumKeys, Op::kDeleteKey,  Op::kAppend,   Op::kMultiGet, Op::kMultiSet,
      Op::kCancelWait, Op::kPing,    Op::kQueuePush,  Op::kQueuePop, Op::kQueueLen, Op::kList};
  if (dialect == Dialect::kV1 && byte < std::size(v1)) return v1[byte];
  if (dialect == Dialect::kV2 && byte < std::size(v2)) return v2[byte];
  return Op::kUnknown;
}

// A request no client would send (absurd sizes): the connection is closed.
struct Malformed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Reads fields from a connection's input buffer, from byte `start` on (the requests before it are
// answered); any read past the end marks it incomplete.
class Reader {
 public:
  explicit Reader(const std::string& buffer, uint64_t max_key_bytes = kMaxKeyBytes,
                  uint64_t max_value_bytes = kMaxValueBytes, size_t start = 0)
      : buffer_(buffer),
        max_key_bytes_(max_key_bytes),
        max_value_bytes_(max_value_bytes),
        start_(start),
        pos_(start) {}
  template <typename T>
  T Scalar() {
    T value{};
    if (pos_ + sizeof(T) > buffer_.size()) {
      incomplete_ = true;
      return value;
    }
    std::memcpy(&value, buffer_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string Key() { return Bytes(max_key_bytes_, "key"); }
  std::string Value() { return Bytes(max_value_bytes_, "value"); }
  std::vector<std::string> Keys() {
    const uint64_t n = Count();
    std::vector<std::string> keys;
    for (uint64_t i = 0; i < n && !incomplete_; ++i) keys.push_back(Key());
    return keys;
  }
  // MULTI_SET's u64-counted key/value pairs.
  std::vector<std::pair<std::string, std::string>> Items() {
    const uint64_t n = Count();
    std::vector<std::pair<std::string, std::string>> items;
    for (uint64_t i = 0; i < n && !incomplete_; ++i) {
      std::string key = Key();
      std::string value = Value();
      items.emplace_back(std::move(key), std::move(value));
    }
    return items;
  }
  [[nodiscard]] bool incomplete() const { return incomplete_; }
  [[nodiscard]] size_t consumed() const { return pos_ - start_; }

 private:
  uint64_t Count() {
    const uint64_t n = Scalar<uint64_t>();
    if (!incomplete_ && n > kMaxKeyCount) {
      throw Malformed("a key count of " + std::to_string(n) + " (at most " +
                      std::to_string(kMaxKeyCount) + ")");
    }
    return n;
  }
  std::string Bytes(uint64_t limit, const char* what) {
    const uint64_t size = Scalar<uint64_t>();
    if (incomplete_) return {};
    if (size > limit) {
      throw Malformed(std::string("a ") + what + " of " + std::to_string(size) +
                      " bytes (at most " + std::to_string(limit) + ")");
    }
    // Compared without adding: pos_ + size could wrap around.
    if (size > buffer_.size() - pos_) {
      incomplete_ = true;
      return {};
    }
    std::string value = buffer_.substr(pos_, size);
    pos_ += size;
    return value;
  }

  const std::string& buffer_;
  uint64_t max_key_bytes_;
  uint64_t max_value_bytes_;
  size_t start_;
  size_t pos_;
  bool incomplete_ = false;
};

class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}
  template <typename T>
  void Scalar(T value) {
    out_->append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  void Bytes(const std::string& value) {
    Scalar<uint64_t>(value.size());
    out_->append(value);
  }

 private:
  std::string* out_;
};

// One request's arguments; which fields are set depends on `op` (see ReadRequest).
struct Request {
  Op op = Op::kUnknown;
  std::string key;
  std::string value;              // SET, APPEND, QUEUE_PUSH; COMPARE_SET's expected value
  std::string desired;            // COMPARE_SET
  int64_t delta = 0;              // ADD
  uint32_t number = 0;            // VALIDATE's magic, PING's nonce
  std::vector<std::string> keys;  // CHECK, WAIT, MULTI_GET
  std::vector<std::pair<std::string, std::string>> items;  // MULTI_SET
};

// Reads the arguments of `op`, whose query byte `reader` has already consumed. Empty when the
// buffer does not hold all of them yet; throws Malformed on absurd sizes. `op` is not kUnknown.
[[nodiscard]] std::optional<Request> ReadRequest(Op op, Reader& reader);

}  // namespace runner::store_protocol
