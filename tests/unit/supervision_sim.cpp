#include "tests/unit/supervision_sim.h"

#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "runner/outcome.h"
#include "runner/process.h"
#include "runner/supervision_policy.h"

namespace runner::testing_support {

namespace {

struct FakeWorker {
  bool alive = true;
  bool ignore_term = false;
  int term_exit = -1;      // exit code on SIGTERM; -1: dies of SIGTERM
  int usr_exit = -1;       // exit code on SIGUSR1/2; -1: ignores them
  double save_after = -1;  // on SIGTERM: says its work is saved after this, exits 10 later
  double exit_after = 0;
  double handler_at = -1;  // catches SIGUSR1/2 from this time on; -1: never
};

struct Pending {
  double time = 0;
  int agent = 0;
  std::string what;  // a script line's <what> [args]
};

std::string Time(double t) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3f", t);
  return text;
}

int SignalNumber(const std::string& name) {
  static const std::map<std::string, int> kNames = {
      {"TERM", SIGTERM}, {"INT", SIGINT},   {"HUP", SIGHUP},   {"USR1", SIGUSR1},
      {"USR2", SIGUSR2}, {"KILL", SIGKILL}, {"SEGV", SIGSEGV}, {"ABRT", SIGABRT}};
  const auto it = kNames.find(name);
  if (it == kNames.end()) throw std::invalid_argument("unknown signal " + name);
  return it->second;
}

int WorkerIndex(const std::string& word) { return std::stoi(word.substr(1)); }

class Simulation {
 public:
  Simulation(const SimOptions& options) : options_(options) {
    for (int a = 0; a < options.agents; ++a) {
      std::vector<WorkerSlot> slots;
      for (int w = 0; w < options.workers; ++w) {
        slots.push_back({a * options.workers + w, "rank-" + std::to_string(w) + ".log"});
      }
      PolicyOptions p;
      p.grace_period_s = options.grace_period_s;
      p.host = "a" + std::to_string(a);
      p.node = a;
      p.agents = options.agents;
      if (options.probe_handlers) {
        p.catches = [this, a](int pid, int) {
          const FakeWorker& w = Worker(a, pid - 100);
          return w.handler_at >= 0 && now_ >= w.handler_at;
        };
      }
      policies_.push_back(std::make_unique<SupervisionPolicy>(p, std::move(slots)));
      workers_.emplace_back(static_cast<size_t>(options.workers));
    }
  }

  std::vector<std::string> Run(const std::vector<std::string>& script) {
    bool started_by_script = false;
    for (const std::string& line : script) started_by_script |= Setup(line);
    if (!started_by_script) {
      for (int a = 0; a < options_.agents; ++a) {
        for (int w = 0; w < options_.workers; ++w) Queue(0, a, "start w" + std::to_string(w));
      }
    }
    for (long tick = 0;; ++tick) {
      const double now = static_cast<double>(tick) / 20.0;  // exact at whole seconds
      now_ = now;
      if (now > options_.end) break;
      while (!pending_.empty() && pending_.begin()->first.first <= now + 1e-9) {
        const Pending p = pending_.begin()->second;
        pending_.erase(pending_.begin());
        Apply(p);
      }
      bool all_done = true;
      for (int a = 0; a < options_.agents; ++a) {
        policies_[static_cast<size_t>(a)]->OnTick({now, 1000 + now});
        Collect(a, now);
        all_done = all_done && policies_[static_cast<size_t>(a)]->entered_done();
      }
      if (all_done && pending_.empty()) break;
    }
    Outcomes();
    return trace_;
  }

 private:
  // Worker behaviours and scripted events; true for a "start" line.
  bool Setup(const std::string& line) {
    std::istringstream in(line);
    std::string first, agent, worker;
    in >> first >> agent >> worker;
    const int a = std::stoi(agent.substr(1));
    if (first == "ignore-term") {
      Worker(a, WorkerIndex(worker)).ignore_term = true;
    } else if (first == "term-exit") {
      in >> Worker(a, WorkerIndex(worker)).term_exit;
    } else if (first == "usr-exit") {
      in >> Worker(a, WorkerIndex(worker)).usr_exit;
    } else if (first == "handler") {
      in >> Worker(a, WorkerIndex(worker)).handler_at;
    } else if (first == "term-save") {
      FakeWorker& w = Worker(a, WorkerIndex(worker));
      in >> w.save_after >> w.exit_after;
    } else {
      std::string rest;
      std::getline(in, rest);
      Queue(std::stod(first), a, worker + rest);
      return worker == "start" || worker == "startfail";
    }
    return false;
  }

  FakeWorker& Worker(int agent, int worker) {
    return workers_.at(static_cast<size_t>(agent)).at(static_cast<size_t>(worker));
  }

  void Queue(double time, int agent, const std::string& what) {
    pending_.emplace(std::make_pair(time, sequence_++), Pending{time, agent, what});
  }

  void Apply(const Pending& p) {
    SupervisionPolicy& policy = *policies_[static_cast<size_t>(p.agent)];
    const Moment now{p.time, 1000 + p.time};
    std::istringstream in(p.what);
    std::string verb, arg;
    in >> verb >> arg;
    if (verb == "start") {
      policy.OnStarted(WorkerIndex(arg), 100 + WorkerIndex(arg), now);
    } else if (verb == "startfail") {
      policy.OnStartFailed(WorkerIndex(arg), "no such file: ./missing", now);
    } else if (verb == "exit" || verb == "killed") {
      std::string code;
      in >> code;
      FakeWorker& w = Worker(p.agent, WorkerIndex(arg));
      if (!w.alive) return;
      w.alive = false;
      const int status = verb == "exit" ? std::stoi(code) << 8 : SignalNumber(code);
      policy.OnExit(WorkerIndex(arg), status, {"last words of " + arg}, now);
    } else if (verb == "signal") {
      policy.OnSignal(SignalNumber(arg), now);
    } else if (verb == "saved") {
      if (Worker(p.agent, WorkerIndex(arg)).alive) {
        trace_.push_back(Time(p.time) + " a" + std::to_string(p.agent) + " " + arg + " saved");
        policy.OnWorkSaved(WorkerIndex(arg));
      }
    } else if (verb == "hang") {
      policy.OnHang("HANG at step 7", {"HANG at step 7", "detail"}, now);
    } else if (verb == "deliver") {
      policy.OnNotice(Notice::Parse(p.what.substr(p.what.find('\n') + 1)), now);
    } else if (verb == "notice") {
      Notice n{arg == "stop" ? Notice::Kind::kStop : Notice::Kind::kFailure, -1, "",
               arg == "stop" ? "received SIGTERM" : "exited with code 1", 1};
      if (n.kind == Notice::Kind::kFailure) in >> n.rank;
      in >> n.host;
      policy.OnNotice(n, now);
    }
    Collect(p.agent, p.time);
  }

  void React(int agent, int worker, int signal, double now) {
    FakeWorker& w = Worker(agent, worker);
    if (!w.alive) return;
    const std::string who = "w" + std::to_string(worker);
    if (signal == SIGKILL) {
      Queue(now + 0.001, agent, "killed " + who + " KILL");
    } else if (signal == SIGTERM && w.save_after >= 0) {
      Queue(now + w.save_after, agent, "saved " + who);
      Queue(now + w.save_after + w.exit_after, agent, "exit " + who + " 10");
    } else if (signal == SIGTERM && !w.ignore_term) {
      Queue(now + 0.01, agent,
            w.term_exit >= 0 ? "exit " + who + " " + std::to_string(w.term_exit)
                             : "killed " + who + " TERM");
    } else if ((signal == SIGUSR1 || signal == SIGUSR2) && w.usr_exit >= 0) {
      Queue(now + 0.1, agent, "exit " + who + " " + std::to_string(w.usr_exit));
    }
  }

  void Collect(int agent, double now) {
    const std::string prefix = Time(now) + " a" + std::to_string(agent) + " ";
    for (const PolicyAction& action : policies_[static_cast<size_t>(agent)]->TakeActions()) {
      switch (action.kind) {
        case PolicyAction::Kind::kSignal:
          trace_.push_back(prefix + SignalName(action.signal) + " w" +
                           std::to_string(action.worker));
          React(agent, action.worker, action.signal, now);
          break;
        case PolicyAction::Kind::kNotify:
          trace_.push_back(prefix + "notify " + action.notice.Describe());
          for (int other = 0; other < options_.agents; ++other) {
            if (other != agent) {
              Queue(now + options_.notice_latency, other, "deliver\n" + action.notice.Serialize());
            }
          }
          break;
        case PolicyAction::Kind::kEnterDone:
          trace_.push_back(prefix + "done");
          break;
        case PolicyAction::Kind::kLog:
          trace_.push_back(prefix + "log " + action.text);
          break;
        case PolicyAction::Kind::kEvent:
          break;
      }
    }
  }

  void Outcomes() {
    std::vector<AgentView> views;
    int job_code = 0;
    for (int a = 0; a < options_.agents; ++a) {
      const AttemptOutcome o = policies_[static_cast<size_t>(a)]->Finish();
      std::string line = "a" + std::to_string(a) + " outcome " + std::to_string(o.code);
      if (o.failure) {
        line += " failure rank " + std::to_string(o.failure->rank) + " time " +
                Time(o.failure->time - 1000) + " " +
                (o.failure->exit_code ? "exit " + std::to_string(*o.failure->exit_code)
                 : o.failure->signal  ? o.failure->signal_name
                                      : "-");
      }
      trace_.push_back(line + ": " + o.reason);
      views.push_back({a, "a" + std::to_string(a), a, o, {}});
      job_code = std::max(job_code, o.code);
    }
    const std::optional<WorkerFailure> first = FirstFailure(views);
    trace_.push_back("job " + std::to_string(job_code) +
                     (first ? " first rank " + std::to_string(first->rank) + " on " + first->host
                            : std::string(" no failure")));
  }

  SimOptions options_;
  double now_ = 0;
  std::vector<std::unique_ptr<SupervisionPolicy>> policies_;
  std::vector<std::vector<FakeWorker>> workers_;
  std::map<std::pair<double, long>, Pending> pending_;
  long sequence_ = 0;
  std::vector<std::string> trace_;
};

}  // namespace

std::vector<std::string> Simulate(const SimOptions& options,
                                  const std::vector<std::string>& script) {
  Simulation simulation(options);
  return simulation.Run(script);
}

}  // namespace runner::testing_support
