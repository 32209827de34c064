#pragma once
// The hang watchdog's agreement across agents (README.md, "When a job hangs"). Each agent samples
// its workers (runner/hang_watch.h); when none of them has advanced for half the limit it warns,
// at the limit it tells agent 0 so, with its ranks' views (a suspect message), and takes it back
// if they advance again (clear). When every agent of the job suspects a hang at once, the job is
// hung: agent 0 judges every rank's view (runner/hang_verdict.h) and sends the verdict's lines to
// every agent. Agent 0 alone receives views: what moves is O(agents), never every agent's views
// to every agent.
//
// No sockets, clocks or processes here: times come in, messages and log lines go out through a
// HangSink. The supervisor captures the stacks and stops the workers.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "runner/hang_verdict.h"
#include "runner/hang_watch.h"

namespace runner {

class HangSink {
 public:
  virtual ~HangSink() = default;
  virtual void Warn(const std::string& line) = 0;
  virtual void Info(const std::string& line) = 0;
  virtual void Event(const std::string& name, const common::JsonObject& fields) = 0;
  virtual void Send(const std::string& message) = 0;       // to every other agent
  virtual void SendFirst(const std::string& message) = 0;  // to agent 0 (never called there)
  virtual void Progress(const std::string& json) = 0;      // progress/agent-<A>.json
};

class HangMonitor {
 public:
  HangMonitor(HangOptions options, int attempt, int agent, int agents, int node, std::string host);

  [[nodiscard]] HangWatch& watch() { return watch_; }
  [[nodiscard]] const HangWatch& watch() const { return watch_; }
  [[nodiscard]] bool enabled() const { return watch_.options().timeout_s > 0; }

  // Samples the workers when a sample is due. `stopping`: the attempt is already ending, so no
  // new suspicion is raised. `state` names the attempt's state for the progress file.
  void Tick(WorkerProbe& probe, double steady_now, double unix_now, bool stopping,
            const std::string& state, HangSink& sink);
  void OnMessage(const HangMessage& message, HangSink& sink);
  // Writes the progress file now (at the end of the attempt).
  void WriteProgress(double steady_now, double unix_now, const std::string& state,
                     HangSink& sink) const;

  // The verdict, once reached; taken once. On agents other than 0 it holds the lines only.
  [[nodiscard]] std::optional<HangVerdict> TakeVerdict();
  [[nodiscard]] bool judged() const { return judged_; }

 private:
  // Agent 0: the verdict from every rank's view, sent to the others.
  void Judge(std::vector<RankView> views, HangSink& sink);
  [[nodiscard]] std::string LocalSummary(const std::vector<RankView>& views) const;

  HangWatch watch_;
  int attempt_;
  int agent_;
  int agents_;
  int node_;
  std::string host_;
  double next_sample_ = -1;
  double next_progress_ = -1;
  bool warned_ = false;
  bool suspected_ = false;
  bool judged_ = false;
  std::map<int, std::vector<RankView>> suspects_;  // agent 0: by agent, its own included
  std::optional<HangVerdict> verdict_;
};

}  // namespace runner
