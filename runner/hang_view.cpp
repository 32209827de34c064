#include "runner/hang_view.h"

#include <cmath>

#include "common/heartbeat.h"
#include "common/json.h"
#include "common/record.h"
#include "runner/proc_probe.h"

namespace runner {

std::string RankView::Where() const {
  if (!published) return "no heartbeat";
  common::Heartbeat h;
  h.phase = phase;
  h.collective = collective;
  h.in_collective = in_collective;
  h.bucket = bucket;
  h.buckets = buckets;
  return h.DescribePhase();
}

std::string RankView::State() const {
  std::string text = DescribeProcState(proc_state);
  if (!wchan.empty() && proc_state != 'R') text += " in " + wchan;
  return text;
}

std::string SerializeRankView(const RankView& v) {
  common::RecordWriter out;
  out.Add("rank", v.rank).Add("local_rank", v.local_rank).Add("agent", v.agent);
  out.Add("node", v.node).Add("host", v.host).Add("pid", v.pid).Add("published", v.published);
  out.Add("step", v.step).Add("phase", v.phase).Add("collective", v.collective);
  out.Add("in_collective", v.in_collective).Add("bucket", v.bucket).Add("buckets", v.buckets);
  out.Add("stalled_s", v.stalled_s).Add("heartbeat_age_s", v.heartbeat_age_s);
  out.Add("output_age_s", v.output_age_s).Add("proc_state", std::string(1, v.proc_state));
  out.Add("wchan", v.wchan).Add("cpu_s", v.cpu_s).Add("cpu_window_s", v.cpu_window_s);
  out.Add("ended", v.ended).Add("status", v.status);
  return out.str();
}

RankView ParseRankView(const std::string& text, const std::string& what) {
  common::RecordReader in(text, what);
  RankView v;
  v.rank = in.Int32("rank", 0);
  v.local_rank = in.Int32("local_rank", 0);
  v.agent = in.Int32("agent", 0);
  v.node = in.Int32("node", 0);
  v.host = in.String("host");
  v.pid = in.Int32("pid", 0);
  v.published = in.Bool("published");
  v.step = in.Int("step");
  v.phase = in.String("phase");
  v.collective = in.Int("collective");
  v.in_collective = in.Bool("in_collective");
  v.bucket = in.Int32("bucket");
  v.buckets = in.Int32("buckets");
  v.stalled_s = in.Double("stalled_s");
  v.heartbeat_age_s = in.Double("heartbeat_age_s");
  v.output_age_s = in.Double("output_age_s");
  const std::string& state = in.String("proc_state");
  if (state.size() != 1) in.Fail("proc_state", "is not one character");
  v.proc_state = state[0];
  v.wchan = in.String("wchan");
  v.cpu_s = in.Double("cpu_s");
  v.cpu_window_s = in.Double("cpu_window_s");
  v.ended = in.Bool("ended");
  v.status = in.String("status");
  return v;
}

std::string RankViewJson(const RankView& v) {
  common::JsonObject out;
  out.Add("rank", v.rank).Add("local_rank", v.local_rank).Add("host", v.host).Add("node", v.node);
  out.Add("agent", v.agent).Add("pid", v.pid).Add("published", v.published);
  if (v.published) {
    out.Add("step", v.step).Add("phase", v.phase).Add("collective", v.collective);
    out.Add("in_collective", v.in_collective).Add("bucket", v.bucket).Add("buckets", v.buckets);
    out.Add("heartbeat_age_s", v.heartbeat_age_s);
  }
  out.Add("where", v.Where()).Add("progress_age_s", v.stalled_s);
  out.Add("proc_state", std::string(1, v.proc_state)).Add("wchan", v.wchan);
  out.Add("cpu_s", v.cpu_s).Add("cpu_window_s", v.cpu_window_s);
  if (v.output_age_s >= 0) out.Add("output_age_s", v.output_age_s);
  out.Add("status", v.ended ? v.status : std::string("running"));
  return out.str();
}

namespace {
constexpr const char* kKinds[] = {"hang-suspect", "hang-clear", "hang-verdict"};
}  // namespace

std::string HangMessage::Serialize() const {
  common::RecordWriter out;
  out.Add("kind", kKinds[static_cast<int>(kind)]).Add("agent", agent).Add("host", host);
  out.Add("views", static_cast<int>(views.size()));
  for (size_t i = 0; i < views.size(); ++i)
    out.Add("view." + std::to_string(i), SerializeRankView(views[i]));
  out.Add("lines", static_cast<int>(lines.size()));
  for (size_t i = 0; i < lines.size(); ++i) out.Add("line." + std::to_string(i), lines[i]);
  return out.str();
}

std::optional<HangMessage> HangMessage::Parse(const std::string& text) {
  common::RecordReader in(text, "message from another agent");
  const std::string& kind = in.String("kind");
  HangMessage message;
  if (kind == kKinds[0]) {
    message.kind = Kind::kSuspect;
  } else if (kind == kKinds[1]) {
    message.kind = Kind::kClear;
  } else if (kind == kKinds[2]) {
    message.kind = Kind::kVerdict;
  } else {
    return std::nullopt;
  }
  message.agent = in.Int32("agent", 0);
  message.host = in.String("host");
  const int count = in.Int32("views", 0, 1 << 20);
  for (int i = 0; i < count; ++i) {
    const std::string key = "view." + std::to_string(i);
    message.views.push_back(ParseRankView(
        in.String(key),
        "rank view " + std::to_string(i) + " from agent " + std::to_string(message.agent)));
  }
  const int lines = in.Int32("lines", message.kind == Kind::kVerdict ? 1 : 0, 1 << 20);
  for (int i = 0; i < lines; ++i) message.lines.push_back(in.String("line." + std::to_string(i)));
  return message;
}

std::string WholeSeconds(double seconds) { return std::to_string(std::llround(seconds)); }

std::string FormatRanks(const std::vector<int>& ranks) {
  std::string out;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(ranks[i]);
    if (j > i) out += "-" + std::to_string(ranks[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace runner
