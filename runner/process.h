#pragma once
// Worker processes: started with posix_spawn (never a bare fork of an MPI process), each in its
// own process group, stdout and stderr merged into one pipe the agent reads, stdin /dev/null.
//
// The command runs under a shim (the runner binary itself, `runner --exec-shim PPID -- CMD...`)
// that leads the worker's process group: it sets PR_SET_PDEATHSIG (posix_spawn cannot), forks
// the worker, and when the agent dies it kills the whole group, so neither the worker nor anything
// it started outlives the agent. It exits the way the worker exited (same code or same signal).

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace runner {

struct SpawnRequest {
  std::vector<std::string> argv;           // argv[0] is searched in PATH
  std::map<std::string, std::string> env;  // the complete environment of the child
  std::string shim;                        // the runner executable; "" runs argv directly
};

class ChildProcess {
 public:
  // Throws common::Error (environment) naming the command when it cannot be started.
  [[nodiscard]] static ChildProcess Spawn(const SpawnRequest& request);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Kills the whole process group if it still runs, reaps it, closes the pipe. Never throws.
  ~ChildProcess();

  [[nodiscard]] pid_t pid() const { return pid_; }
  // Read end of the stdout+stderr pipe (non-blocking); -1 once closed.
  [[nodiscard]] int output_fd() const { return output_fd_; }
  void CloseOutput() noexcept;
  // Sends `signal` to the child's process group (no-op once reaped).
  void Signal(int signal) noexcept;
  // Non-blocking reap: true (and the raw wait status) once the child has ended.
  [[nodiscard]] bool TryReap(int* status) noexcept;
  [[nodiscard]] bool reaped() const { return reaped_; }

 private:
  ChildProcess(pid_t pid, int output_fd) : pid_(pid), output_fd_(output_fd) {}
  pid_t pid_ = -1;
  int output_fd_ = -1;
  bool reaped_ = false;
};

// The shim's entry: argv = {"--exec-shim", PPID, "--", CMD, ARGS...}. Returns the worker's exit
// code (127: command not found or not executable; 12: the agent was already gone), or ends by
// the worker's signal.
[[nodiscard]] int RunExecShim(const std::vector<std::string>& args);

// Absolute path of the running executable (/proc/self/exe).
[[nodiscard]] std::string SelfExecutable();

// "SIGTERM" for 15; the number when the signal has no name.
[[nodiscard]] std::string SignalName(int signal);

// "exited with code 3", "killed by signal 9 (SIGKILL)" for a raw wait status.
[[nodiscard]] std::string DescribeWaitStatus(int status);

}  // namespace runner
