#include "runner/notice.h"

#include "common/record.h"

namespace runner {

std::string Notice::Serialize() const {
  common::RecordWriter out;
  out.Add("kind", kind == Kind::kStop ? "stop" : "failure").Add("agent", agent);
  out.Add("host", host).Add("status", status);
  if (kind == Kind::kFailure) out.Add("rank", rank);
  return out.str();
}

Notice Notice::Parse(const std::string& text) {
  common::RecordReader in(text, "notice from another agent");
  Notice notice;
  const std::string& kind = in.String("kind");
  if (kind != "stop" && kind != "failure") in.Fail("kind", "is not 'stop' or 'failure'");
  notice.kind = kind == "stop" ? Kind::kStop : Kind::kFailure;
  notice.agent = in.Int32("agent", 0);
  notice.host = in.String("host");
  notice.status = in.String("status");
  if (notice.kind == Kind::kFailure) notice.rank = in.Int32("rank", 0);
  return notice;
}

std::string Notice::Describe() const {
  return kind == Kind::kFailure
             ? "worker rank " + std::to_string(rank) + " on " + host + " " + status
             : "agent on " + host + " " + status;
}

}  // namespace runner
