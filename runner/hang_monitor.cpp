#include "runner/hang_monitor.h"

#include <cmath>

#include "common/logging.h"

namespace runner {

namespace {

constexpr double kProgressEvery = 2;  // seconds between progress files

}  // namespace

HangMonitor::HangMonitor(HangOptions options, int attempt, int agent, int agents, int node,
                         std::string host)
    : watch_(options, agent, node, host),
      attempt_(attempt),
      agent_(agent),
      agents_(agents),
      node_(node),
      host_(std::move(host)) {}

std::string HangMonitor::LocalSummary(const std::vector<RankView>& views) const {
  std::string text;
  for (const RankView& v : views) {
    if (!text.empty()) text += "; ";
    text += "rank " + std::to_string(v.rank) + " ";
    text += v.ended ? v.status
                    : (v.published ? v.Where() + " at step " + std::to_string(v.step) + ", "
                                   : std::string()) +
                          v.State();
  }
  return text;
}

void HangMonitor::Tick(WorkerProbe& probe, double steady_now, double unix_now, bool stopping,
                       const std::string& state, HangSink& sink) {
  if (steady_now < next_sample_) return;
  next_sample_ = steady_now + watch_.options().sample_s;
  watch_.Sample(probe, steady_now, unix_now);
  if (steady_now >= next_progress_) {
    next_progress_ = steady_now + kProgressEvery;
    WriteProgress(steady_now, unix_now, state, sink);
  }
  if (!enabled() || judged_) return;
  const double stall = watch_.Stall(steady_now);
  const double limit = watch_.Limit(steady_now);
  if (stall < watch_.options().warn_fraction * limit || stopping) {
    if (suspected_) {
      suspects_.erase(agent_);
      if (agent_ != 0)
        sink.SendFirst(HangMessage{HangMessage::Kind::kClear, agent_, host_, {}, {}}.Serialize());
    }
    if (warned_ || suspected_) sink.Info("the workers on this node advance again");
    warned_ = suspected_ = false;
    return;
  }
  const std::vector<RankView> views = watch_.Views(steady_now);
  if (!warned_) {
    warned_ = true;
    sink.Warn("no rank on this node has advanced for " + WholeSeconds(stall) +
              " s (hang verdict at " + WholeSeconds(limit) +
              " s if no rank of the job advances): " + LocalSummary(views));
    sink.Event("hang_warning", common::JsonObject()
                                   .Add("stalled_s", stall)
                                   .Add("limit_s", limit)
                                   .Add("ranks", LocalSummary(views)));
  }
  if (stall >= limit && !suspected_) {
    suspected_ = true;
    suspects_[agent_] = views;
    if (agents_ > 1) {
      sink.Info("no rank on this node has advanced for " + WholeSeconds(stall) + " s: " +
                (agent_ == 0 ? "waiting for the other agents to say whether theirs have"
                             : "telling agent 0, which judges when no agent's ranks advance"));
    }
    if (agent_ != 0)
      sink.SendFirst(
          HangMessage{HangMessage::Kind::kSuspect, agent_, host_, views, {}}.Serialize());
  }
  if (agent_ == 0 && static_cast<int>(suspects_.size()) == agents_) {
    std::vector<RankView> all;
    for (auto& [agent, agent_views] : suspects_)
      all.insert(all.end(), agent_views.begin(), agent_views.end());
    Judge(std::move(all), sink);
  }
}

void HangMonitor::OnMessage(const HangMessage& message, HangSink& sink) {
  if (judged_) return;
  switch (message.kind) {
    case HangMessage::Kind::kSuspect:
      suspects_[message.agent] = message.views;
      break;
    case HangMessage::Kind::kClear:
      suspects_.erase(message.agent);
      break;
    case HangMessage::Kind::kVerdict:
      sink.Info("agent " + std::to_string(message.agent) + " on " + message.host +
                " judged the job hung");
      judged_ = true;
      verdict_ = HangVerdict{};
      verdict_->lines = message.lines;  // who is named, and where the others wait
      return;
  }
  // Agent 0 reaches the verdict on its own tick, once its own suspicion is in.
}

void HangMonitor::Judge(std::vector<RankView> views, HangSink& sink) {
  judged_ = true;
  verdict_ = JudgeHang(std::move(views), watch_.options().timeout_s);
  if (agents_ > 1) {
    sink.Send(
        HangMessage{HangMessage::Kind::kVerdict, agent_, host_, {}, verdict_->lines}.Serialize());
  }
}

std::optional<HangVerdict> HangMonitor::TakeVerdict() {
  std::optional<HangVerdict> out;
  out.swap(verdict_);
  return out;
}

void HangMonitor::WriteProgress(double steady_now, double unix_now, const std::string& state,
                                HangSink& sink) const {
  std::vector<std::string> ranks;
  for (const RankView& v : watch_.Views(steady_now)) ranks.push_back(RankViewJson(v));
  common::JsonObject out;
  out.Add("time", common::Timestamp()).Add("unix", unix_now).Add("attempt", attempt_);
  out.Add("agent", agent_).Add("host", host_).Add("node", node_).Add("state", state);
  out.Add("hang_timeout_s", watch_.options().timeout_s);
  out.Add("hang_limit_s", watch_.Limit(steady_now)).Add("stalled_s", watch_.Stall(steady_now));
  out.AddRaw("ranks", common::JsonArray(ranks));
  sink.Progress(out.str() + "\n");
}

}  // namespace runner
