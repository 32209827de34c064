#pragma once
// A simulated job for runner/supervision_policy.h: one SupervisionPolicy per agent, fake workers
// that react to the signals the policies send, notices delivered between agents after a latency,
// and the supervisor's 50 ms tick, all on one invented timeline. A case is a script of lines
//
//   "<time> <agent> <what> [args]"     e.g. "1.000 a0 exit w1 3"
//
// with <what> one of: exit wN CODE | killed wN SIG | startfail wN | signal SIG (to the agent) |
// notice stop HOST | notice failure RANK HOST, and worker behaviours given before the events:
//   "ignore-term a0 w1"        the worker ignores SIGTERM
//   "term-exit a0 w1 10"       on SIGTERM the worker exits with code 10 (an agreed stop)
//   "usr-exit a0 w1 11"        on SIGUSR1/SIGUSR2 the worker exits with code 11 (preempted)
//   "term-save a0 w1 0.1 0.2"  on SIGTERM the worker says its work is saved 0.1 s later (the
//                              trainer's heartbeat phase "exiting"), and exits 10 0.2 s after
//   "handler a0 w1 2.5"        the worker has its SIGUSR1/2 handler from 2.5 s on (with
//                              SimOptions::probe_handlers)
// By default every worker starts at 0, dies of SIGTERM 10 ms after one, of SIGKILL 1 ms after,
// and ignores SIGUSR1/SIGUSR2. The trace the simulation returns has one line per decision:
//   "1.050 a0 SIGTERM w1", "1.000 a0 notify failure rank 1", "2.000 a1 done",
// then per agent "a0 outcome 20 failure rank 1 time 1.000 exit 3: <reason>" and for the job
// "job 20 first rank 1 on a0".

#include <string>
#include <vector>

namespace runner::testing_support {

struct SimOptions {
  int agents = 1;
  int workers = 2;  // per agent; agent k's worker i has rank k * workers + i
  double notice_latency = 0.002;
  double grace_period_s = 15;
  double end = 60;  // give up after this time
  // The shell's probe of signal handlers (PolicyOptions::catches): a worker catches SIGUSR1/2
  // from the time its "handler a0 w1 T" line gives (never without one).
  bool probe_handlers = false;
};

// Runs `script` and returns the trace (decisions, then each agent's outcome, then the job's).
[[nodiscard]] std::vector<std::string> Simulate(const SimOptions& options,
                                                const std::vector<std::string>& script);

}  // namespace runner::testing_support
