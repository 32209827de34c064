#include "runner/supervisor.h"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <sstream>

#include "common/errors.h"
#include "common/exit_codes.h"
#include "common/json.h"
#include "common/logging.h"
#include "common/version.h"
#include "runner/process.h"
#include "runner/signals.h"

namespace runner {

namespace {

using Clock = std::chrono::steady_clock;

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct Worker {
  WorkerLaunch launch;
  ChildProcess process;
  RankLog log;
  bool ended = false;
  int status = 0;
  bool deferred = false;  // ended by a stop signal; judged when kStopSignalWindow has passed
  double ended_at = 0;
  std::chrono::steady_clock::time_point started{};
  std::vector<int> held_signals{};  // relayed signals waiting until the worker is old enough
};

// Notices between agents: key=value lines.
std::string MakeNotice(const std::string& kind, const std::map<std::string, std::string>& fields) {
  std::string text = "kind=" + kind + "\n";
  for (const auto& [key, value] : fields) text += key + "=" + value + "\n";
  return text;
}

std::map<std::string, std::string> ParseNotice(const std::string& text) {
  std::map<std::string, std::string> fields;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) fields[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return fields;
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : std::to_string(sig);
}

// A worker that died of a stop signal (or exited 128+signal, as shells do) that its agent did not
// send.
bool EndedByStopSignal(int status) {
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    if ((WIFSIGNALED(status) && WTERMSIG(status) == sig) ||
        (WIFEXITED(status) && WEXITSTATUS(status) == 128 + sig)) {
      return true;
    }
  }
  return false;
}

// Slurm (scancel, a time limit, a requeue) signals every process of the step, the workers
// included, in no set order: a worker can die of SIGTERM a moment before its agent's own SIGTERM
// (or another agent's stop notice) arrives. Such a death is the root cause only if no stop
// follows within this window.
constexpr auto kStopSignalWindow = std::chrono::milliseconds(1000);

// A relayed SIGUSR1/SIGUSR2 kills a worker that has not installed its handler yet (the default
// action), and loading LibTorch alone takes seconds. Younger workers get the signal when they
// reach this age instead. (Ignoring it in the worker is no answer: a shell started with a signal
// ignored can never trap it.)
constexpr auto kRelayAge = std::chrono::seconds(5);

}  // namespace

AttemptOutcome Supervisor::RunAttempt(int attempt, const std::vector<WorkerLaunch>& launches,
                                      const std::map<std::string, std::string>& agent_env) {
  AttemptOutcome outcome;
  control_.BeginAttempt(attempt);
  std::vector<Worker> workers;
  workers.reserve(launches.size());
  bool stopping = false;
  Clock::time_point kill_at{};
  bool killed = false;

  auto event = [&](const std::string& name) {
    common::JsonObject e;
    e.Add("time", common::Timestamp())
        .Add("event", name)
        .Add("attempt", attempt)
        .Add("agent", options_.agent)
        .Add("host", options_.host)
        .Add("node", options_.node);
    return e;
  };
  auto begin_stop = [&](int code, const std::string& reason) {
    if (stopping) return;
    stopping = true;
    outcome.code = code;
    outcome.reason = reason;
    log_.warn("stopping this node's workers: {} (SIGTERM now, SIGKILL after {} s)", reason,
              options_.grace_period_s);
    job_dir_.AppendEvent(event("stopping").Add("reason", reason));
    for (Worker& w : workers) {
      if (!w.ended) w.process.Signal(SIGTERM);
    }
    kill_at = Clock::now() +
              std::chrono::milliseconds(static_cast<int64_t>(options_.grace_period_s * 1000));
  };

  // Start every worker. A start failure is this node's root cause.
  for (const WorkerLaunch& launch : launches) {
    SpawnRequest request{launch.argv, BuildWorkerEnv(agent_env, launch.contract), options_.shim};
    // Global rank 0's output also reaches this agent's console (and Slurm's .out file).
    RankLog log(launch.log_path, 20, launch.contract.rank == 0 ? "rank 0 | " : "");
    try {
      ChildProcess process = ChildProcess::Spawn(request);
      log_.info(
          "started worker rank {} (local rank {}, pid {}{}): {}", launch.contract.rank,
          launch.contract.local_rank, process.pid(),
          launch.contract.device.empty() ? "" : ", CUDA_VISIBLE_DEVICES=" + launch.contract.device,
          launch.argv.front());
      // The rank's own banner, so its log makes sense alone.
      std::string command;
      for (const std::string& arg : launch.argv) command += (command.empty() ? "" : " ") + arg;
      log.Note("rank " + std::to_string(launch.contract.rank) + "/" +
               std::to_string(launch.contract.world_size) + " local_rank " +
               std::to_string(launch.contract.local_rank) + " node " +
               std::to_string(launch.contract.node_rank) + " host " + options_.host + " pid " +
               std::to_string(process.pid()) + " device " +
               (launch.contract.device.empty()
                    ? std::string("cpu")
                    : "cuda (CUDA_VISIBLE_DEVICES=" + launch.contract.device + ")") +
               " attempt " + std::to_string(attempt) + " runner " + common::kProjectVersion + ": " +
               command);
      job_dir_.AppendEvent(event("worker_started")
                               .Add("rank", launch.contract.rank)
                               .Add("pid", static_cast<int>(process.pid())));
      workers.push_back({launch, std::move(process), std::move(log)});
      workers.back().started = Clock::now();
    } catch (const common::Error& e) {
      log.Note(std::string("could not start: ") + e.what());
      log_.error("rank {}: {}", launch.contract.rank, e.what());
      common::JsonObject failure;
      failure.Add("rank", launch.contract.rank)
          .Add("host", options_.host)
          .Add("node", options_.node)
          .Add("status", std::string("could not start: ") + e.what())
          .Add("exit_code", 127)
          .Add("time", UnixNow());
      outcome.failure_json = failure.str();
      outcome.failure_time = UnixNow();
      control_.Notify(MakeNotice("failure", {{"rank", std::to_string(launch.contract.rank)},
                                             {"host", options_.host},
                                             {"status", "could not start"}}));
      begin_stop(common::kExitWorkerFailed,
                 "rank " + std::to_string(launch.contract.rank) + " could not start");
      break;
    }
  }

  std::vector<Worker*> deferred;  // died of a stop signal before any stop (kStopSignalWindow)
  Clock::time_point deferred_until{};
  auto handle_exit = [&](Worker& w) {
    const int rank = w.launch.contract.rank;
    const std::string how = DescribeWaitStatus(w.status);
    const int exit_code = WIFEXITED(w.status) ? WEXITSTATUS(w.status) : -1;
    // 10 and 11 are the trainer's agreed stops (checkpoint written): stopped, or preempted.
    const bool agreed_stop =
        exit_code == common::kExitStopped || exit_code == common::kExitRequeued;
    const bool failed = exit_code != 0 && !agreed_stop;
    if (!w.ended) {
      w.ended = true;
      w.log.Finish();
      w.log.Note("worker " + how);
      job_dir_.AppendEvent(
          event("worker_exited").Add("rank", rank).Add("status", how).Add("failed", failed));
    }
    std::vector<std::string> last(w.log.tail().begin(), w.log.tail().end());
    if (!failed) {
      log_.info("worker rank {} {}{}", rank, how,
                agreed_stop ? (exit_code == common::kExitRequeued ? " (checkpointed for a requeue)"
                                                                  : " (stopped, checkpointed)")
                            : "");
      if (agreed_stop && outcome.code < exit_code && outcome.code != common::kExitCollateral) {
        outcome.code = exit_code;
        outcome.reason = exit_code == common::kExitRequeued
                             ? "workers checkpointed after the preemption signal"
                             : "workers stopped and checkpointed";
      }
      return;
    }
    if (stopping) {
      // A stop that a worker did not finish cleanly (it crashed, or was killed after the grace
      // period) may have lost its checkpoint: that is a failure, not "stopped, work saved".
      const bool stop_intended =
          outcome.code == common::kExitStopped || outcome.code == common::kExitRequeued;
      if (stop_intended && !EndedByStopSignal(w.status)) {
        log_.error(
            "worker rank {} {} while stopping: the stop did not complete cleanly, so its work may "
            "not be saved",
            rank, how);
        outcome.code =
            WIFEXITED(w.status) ? common::kExitWorkerFailed : common::kExitWorkerSignaled;
        outcome.reason = "worker rank " + std::to_string(rank) + " " + how + " while stopping";
        common::JsonObject failure;
        failure.Add("rank", rank)
            .Add("host", options_.host)
            .Add("node", options_.node)
            .Add("status", how + " while stopping")
            .Add("time", UnixNow())
            .Add("log", w.launch.log_path)
            .Add("last_lines", last);
        if (!outcome.failure_json) {
          outcome.failure_json = failure.str();
          outcome.failure_time = UnixNow();
        }
        return;
      }
      log_.info("worker rank {} {} (while stopping)", rank, how);
      return;
    }
    // A communication error (exit 5) is usually the echo of another rank's failure: its peers see
    // the connection drop within milliseconds. Like a stop signal nobody sent, it waits a moment
    // for the real root cause before it is taken for one.
    const bool echo = exit_code == common::kExitRendezvous;
    if (!w.deferred && (EndedByStopSignal(w.status) || echo)) {
      w.deferred = true;
      w.ended_at = UnixNow();
      if (deferred.empty()) deferred_until = Clock::now() + kStopSignalWindow;
      deferred.push_back(&w);
      log_.warn("worker rank {} {}{}: waiting {} ms for {} before taking it for the root cause",
                rank, how, echo ? " (a communication error)" : ", a signal this agent did not send",
                kStopSignalWindow.count(), echo ? "another rank's failure" : "a stop");
      return;
    }
    // The root cause: first abnormal end on this node before anyone asked it to stop.
    log_.error("worker rank {} {}: it is the root cause; stopping the job on every node", rank,
               how);
    for (const std::string& line : last) log_.error("  rank {} | {}", rank, line);
    common::JsonObject failure;
    failure.Add("rank", rank)
        .Add("host", options_.host)
        .Add("node", options_.node)
        .Add("pid", static_cast<int>(w.process.pid()))
        .Add("status", how);
    if (WIFEXITED(w.status)) {
      failure.Add("exit_code", WEXITSTATUS(w.status));
    } else {
      failure.Add("signal", WTERMSIG(w.status)).Add("signal_name", SignalName(WTERMSIG(w.status)));
    }
    outcome.failure_time = w.deferred ? w.ended_at : UnixNow();
    failure.Add("time", outcome.failure_time).Add("log", w.launch.log_path).Add("last_lines", last);
    outcome.failure_json = failure.str();
    control_.Notify(MakeNotice(
        "failure", {{"rank", std::to_string(rank)}, {"host", options_.host}, {"status", how}}));
    begin_stop(WIFEXITED(w.status) ? common::kExitWorkerFailed : common::kExitWorkerSignaled,
               "worker rank " + std::to_string(rank) + " " + how);
  };

  auto handle_notice = [&](const std::string& text) {
    auto fields = ParseNotice(text);
    const std::string who =
        fields["kind"] == "failure"
            ? "worker rank " + fields["rank"] + " on " + fields["host"] + " " + fields["status"]
            : "agent on " + fields["host"] + " " + fields["status"];
    log_.warn("notice from another agent: {}", who);
    job_dir_.AppendEvent(event("notice").Add("from", who));
    // A stop asked for on any node is the job's stop (10), not a failure elsewhere (12).
    begin_stop(fields["kind"] == "stop" ? common::kExitStopped : common::kExitCollateral,
               "stopped because " + who);
  };

  bool all_ended = workers.empty();
  bool entered_done = false;
  int own_terminates = 0;
  while (true) {
    // Sleep until output, a signal, or the next poll of the other agents.
    std::vector<pollfd> fds;
    std::vector<Worker*> owners;
    for (Worker& w : workers) {
      if (w.process.output_fd() >= 0) {
        fds.push_back({w.process.output_fd(), POLLIN, 0});
        owners.push_back(&w);
      }
    }
    timespec timeout{0, 50 * 1000 * 1000};
    int ready = ppoll(fds.data(), fds.size(), &timeout, &WaitMask());
    if (ready > 0) {
      for (size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        char buffer[65536];
        while (true) {
          ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
          if (n > 0) {
            owners[i]->log.Feed(buffer, static_cast<size_t>(n));
            continue;
          }
          if (n == 0) owners[i]->process.CloseOutput();
          break;
        }
      }
    }
    PendingSignals signals = TakeSignals();
    if (signals.terminate) {
      const std::string name = SignalName(signals.terminate_signal);
      job_dir_.AppendEvent(event("signal").Add("signal", name));
      ++own_terminates;
      if (!stopping) {
        control_.Notify(
            MakeNotice("stop", {{"host", options_.host}, {"status", "received " + name}}));
        begin_stop(common::kExitStopped, "this agent received " + name);
      } else if (own_terminates == 1) {
        // Already stopping (another agent's notice, or a failure): this is the same stop
        // reaching this agent too, not an impatient second request.
        log_.info("received {} while already stopping", name);
      } else if (!killed) {
        log_.warn("received {} again while stopping: killing the workers now", name);
        kill_at = Clock::now();
      }
    }
    for (auto [flag, sig] : {std::pair{signals.usr1, SIGUSR1}, std::pair{signals.usr2, SIGUSR2}}) {
      if (!flag) continue;
      log_.info("relaying {} to the workers", SignalName(sig));
      job_dir_.AppendEvent(event("signal").Add("signal", SignalName(sig)).Add("relayed", true));
      for (Worker& w : workers) {
        if (w.ended) continue;
        if (Clock::now() - w.started >= kRelayAge) {
          w.process.Signal(sig);
        } else {
          w.held_signals.push_back(sig);
          log_.info("worker rank {} started less than {} s ago: {} held until then",
                    w.launch.contract.rank, kRelayAge.count(), SignalName(sig));
        }
      }
    }
    for (Worker& w : workers) {
      if (w.ended || w.held_signals.empty() || Clock::now() - w.started < kRelayAge) continue;
      for (int sig : w.held_signals) w.process.Signal(sig);
      w.held_signals.clear();
    }
    // Reap every ended worker (SIGCHLD may coalesce, so always look).
    for (Worker& w : workers) {
      if (!w.ended && w.process.TryReap(&w.status)) {
        // Collect the output written just before the end.
        char buffer[65536];
        ssize_t n;
        while (w.process.output_fd() >= 0 &&
               (n = read(w.process.output_fd(), buffer, sizeof(buffer))) > 0) {
          w.log.Feed(buffer, static_cast<size_t>(n));
        }
        w.process.CloseOutput();
        // Whatever the worker left in its process group goes now, while the group id is still
        // held by its members (never later, when the number could belong to someone else).
        w.process.Signal(SIGKILL);
        handle_exit(w);
      }
    }
    while (std::optional<std::string> notice = control_.PollNotice()) handle_notice(*notice);
    if (!deferred.empty() && (stopping || Clock::now() >= deferred_until)) {
      std::vector<Worker*> late;
      late.swap(deferred);
      for (Worker* w : late)
        handle_exit(*w);  // while stopping: part of the stop; else the first is the root cause
    }
    if (stopping && !killed && Clock::now() >= kill_at) {
      killed = true;
      for (Worker& w : workers) {
        if (!w.ended) {
          log_.warn("worker rank {} still running after the grace period: SIGKILL",
                    w.launch.contract.rank);
          w.process.Signal(SIGKILL);
        }
      }
    }
    all_ended = deferred.empty();
    for (const Worker& w : workers) all_ended = all_ended && w.ended;
    if (all_ended && !entered_done) {
      control_.EnterDone();
      entered_done = true;
      if (control_.size() > 1)
        log_.info("this node's workers have ended; waiting for the other agents");
    }
    if (entered_done && control_.PollDone()) break;
  }
  for (const std::string& notice : control_.EndAttempt()) {
    auto fields = ParseNotice(notice);
    log_.info("late notice from another agent: {} on {} {}", fields["kind"], fields["host"],
              fields["status"]);
  }
  std::vector<std::string> summaries;
  for (const Worker& w : workers) {
    common::JsonObject item;
    item.Add("rank", w.launch.contract.rank)
        .Add("pid", static_cast<int>(w.process.pid()))
        .Add("status", DescribeWaitStatus(w.status));
    summaries.push_back(item.str());
  }
  outcome.workers_json = common::JsonArray(summaries);
  if (outcome.reason.empty()) outcome.reason = "all workers of this node exited with code 0";
  return outcome;
}

}  // namespace runner
