#include "runner/store_protocol.h"

namespace runner::store_protocol {

std::optional<Request> ReadRequest(Op op, Reader& reader) {
  Request request;
  request.op = op;
  switch (op) {
    case Op::kValidate:
    case Op::kPing:
      request.number = reader.Scalar<uint32_t>();
      break;
    case Op::kSet:
    case Op::kAppend:
    case Op::kQueuePush:
      request.key = reader.Key();
      request.value = reader.Value();
      break;
    case Op::kCompareSet:
      request.key = reader.Key();
      request.value = reader.Value();
      request.desired = reader.Value();
      break;
    case Op::kGet:
    case Op::kWatchKey:
    case Op::kDeleteKey:
    case Op::kQueuePop:
    case Op::kQueueLen:
      request.key = reader.Key();
      break;
    case Op::kAdd:
      request.key = reader.Key();
      request.delta = reader.Scalar<int64_t>();
      break;
    case Op::kCheck:
    case Op::kWait:
    case Op::kMultiGet:
      request.keys = reader.Keys();
      break;
    case Op::kMultiSet:
      request.items = reader.Items();
      break;
    case Op::kNumKeys:
    case Op::kCancelWait:
    case Op::kList:
    case Op::kUnknown:
      break;
  }
  if (reader.incomplete()) return std::nullopt;
  return request;
}

}  // namespace runner::store_protocol
