#pragma once
// The hang watchdog's agreement across agents (README.md, "When a job hangs"). Each agent samples
// its workers (runner/hang_watch.h); when none of them has advanced for half the limit it warns,
// at the limit it tells the other agents so, with its ranks' views (a suspect message), and takes
// it back if they advance again (clear). When every agent of the job suspects a hang at once, the
// job is hung: each agent judges the same views the same way (runner/hang_verdict.h) and the
// first to do so sends its verdict, with the views, to any agent not there yet.
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
  virtual void Send(const std::string& message) = 0;   // to every other agent
  virtual void Progress(const std::string& json) = 0;  // progress/agent-<A>.json
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

  // The verdict, once reached; taken once.
  [[nodiscard]] std::optional<HangVerdict> TakeVerdict();
  [[nodiscard]] bool judged() const { return judged_; }

 private:
  void Judge(std::vector<RankView> views, HangSink& sink, bool tell_others);
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
  std::map<int, std::vector<RankView>> suspects_;  // by agent, this one included
  std::optional<HangVerdict> verdict_;
};

}  // namespace runner
