#include "runner/store_connection.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>

namespace runner {

namespace {

using namespace store_protocol;  // NOLINT: the codec is this file's vocabulary
using LogFn = std::function<void(const std::string&)>;

void Log(const LogFn& log, const std::string& line) {
  if (log) log(line);
}

constexpr char kOldPyTorchHint[] =
    "; is the worker's PyTorch 2.0 or 2.1? Those send no handshake, as 1.13 does, but number the "
    "queries differently from 7 on, and are not supported: use PyTorch 1.13 or >= 2.2";

// The line for a request with an unknown query type, `byte`, at `offset` in the connection's input.
std::string UnknownQuery(const StoreConnection& conn, uint8_t byte, size_t offset) {
  const std::string dialect = conn.dialect == Dialect::kV2 ? "PyTorch >= 2.2" : "PyTorch 1.13";
  const std::string what = "query type " + std::to_string(byte) + " is unknown in the " + dialect +
                           " dialect (first bytes: " + HexPrefix(conn.in.substr(offset)) + ")";
  if (LooksLikePyTorch20Or21(conn, byte)) {
    return "store: client " + conn.peer +
           " sent a request that is not PyTorch 1.13's after query " + "type " +
           std::to_string(conn.last_query) + ": " + what + kOldPyTorchHint + "; closed";
  }
  return "store: unrecognised request from " + conn.peer + ": " + what + "; closed";
}

// Decides the dialect from the connection's first bytes. False when more bytes are needed or the
// connection is to be closed.
bool DecideDialect(StoreConnection& conn, const LogFn& log) {
  // 2.2+ clients open with VALIDATE (byte 0) and the magic; 1.13 never sends 0 then the magic.
  if (static_cast<uint8_t>(conn.in[0]) != 0) {
    conn.dialect = Dialect::kV1;
    return true;
  }
  if (conn.in.size() < 5) return false;
  uint32_t magic = 0;
  std::memcpy(&magic, conn.in.data() + 1, 4);
  if (magic == kValidationMagic) {
    conn.dialect = Dialect::kV2;
  } else if (magic > kMaxKeyBytes) {
    // Not a 1.13 SET either: those four bytes would be part of its key's length (the low half on
    // little-endian hosts, the high half, 0, on big-endian ones).
    char hex[16];
    std::snprintf(hex, sizeof(hex), "0x%08X", static_cast<unsigned>(magic));
    Log(log, "store: client " + conn.peer + " opened with a wrong validation number " + hex +
                 " (expected 0x3C85F7CE); closed");
    conn.closing = true;
    return false;
  } else {
    conn.dialect = Dialect::kV1;
  }
  return true;
}

// Answers the request at `*offset` in `conn.in` and moves `*offset` past it (the caller erases the
// answered bytes once: erasing each small request from the front would cost a chunk's length per
// request). False when no complete request is there or the connection is to be closed.
bool ServeOne(StoreConnection& conn, StoreState& state, const ServeLimits& limits, const LogFn& log,
              size_t* offset, StoreState::Replies* out) {
  if (conn.in.size() == *offset) return false;
  // Only a connection's first request decides: nothing is answered before it, so *offset is 0.
  if (conn.dialect == Dialect::kUndecided && !DecideDialect(conn, log)) return false;
  Reader reader(conn.in, limits.max_key_bytes, limits.max_value_bytes, *offset);
  const uint8_t byte = reader.Scalar<uint8_t>();
  const Op op = DecodeOp(conn.dialect, byte);
  // A 1.13 client that timed out in WAIT moves on without cancelling: its next request, from its
  // first byte on, drops the stale wait.
  if (op != Op::kCancelWait) state.DropWait(conn.id);
  if (op == Op::kUnknown) {
    Log(log, UnknownQuery(conn, byte, *offset));
    conn.closing = true;
    return false;
  }
  std::optional<Request> request = ReadRequest(op, reader);
  if (!request) return false;
  *offset += reader.consumed();
  conn.last_query = byte;
  if (op == Op::kValidate) {
    if (request->number == kValidationMagic) return true;
    Log(log, "store: client " + conn.peer + " sent a wrong validation number; closed");
    conn.closing = true;
    return false;
  }
  StoreState::Replies replies = state.Apply(conn.id, *request);
  out->insert(out->end(), std::make_move_iterator(replies.begin()),
              std::make_move_iterator(replies.end()));
  return true;
}

}  // namespace

StoreState::Replies ServeRequests(StoreConnection& conn, StoreState& state,
                                  const ServeLimits& limits, const LogFn& log) {
  StoreState::Replies out;
  size_t for_conn = conn.out.size();  // reply bytes waiting for conn, sent or not
  size_t answered = 0;                // bytes of conn.in answered
  try {
    while (!conn.closing && for_conn < limits.pause_reading_bytes) {
      const size_t before = out.size();
      if (!ServeOne(conn, state, limits, log, &answered, &out)) break;
      for (size_t i = before; i < out.size(); ++i) {
        if (out[i].to == conn.id) for_conn += out[i].bytes.size();
      }
    }
  } catch (const Malformed& e) {
    // The failing request starts where the answered ones end.
    const std::string failing = conn.in.substr(std::min(answered, conn.in.size()));
    const auto query = static_cast<uint8_t>(failing.empty() ? 0 : failing[0]);
    Log(log, "store: client " + conn.peer + " sent a request with " + e.what() +
                 " (first bytes: " + HexPrefix(failing) + ")" +
                 (LooksLikePyTorch20Or21(conn, query) ? kOldPyTorchHint : "") + "; closed");
    conn.closing = true;
  }
  conn.in.erase(0, answered);
  return out;
}

bool LooksLikePyTorch20Or21(const StoreConnection& conn, uint8_t query) {
  const auto renumbered = [](int q) { return q >= 7 && q <= 11; };
  return conn.dialect == Dialect::kV1 && (renumbered(query) || renumbered(conn.last_query));
}

std::string HexPrefix(const std::string& bytes, size_t max) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    out += (i ? " " : "") + std::string{kHex[c >> 4], kHex[c & 15]};
  }
  if (bytes.size() > max) out += " ...";
  return out.empty() ? "none" : out;
}

}  // namespace runner
