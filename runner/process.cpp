#include "runner/process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <initializer_list>
#include <string>

#include "common/errors.h"
#include "common/exit_codes.h"

extern char** environ;

namespace runner {

namespace {

// Signals the agent handles; a child must start with their default action and none blocked.
constexpr int kHandledSignals[] = {SIGTERM, SIGINT,  SIGHUP,  SIGQUIT,
                                   SIGUSR1, SIGUSR2, SIGCHLD, SIGPIPE};

std::vector<char*> CStrings(std::vector<std::string>& items) {
  std::vector<char*> out;
  for (std::string& item : items) out.push_back(item.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

ChildProcess ChildProcess::Spawn(const SpawnRequest& request) {
  if (request.argv.empty()) throw std::logic_error("Spawn: empty argv");
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    throw common::EnvironmentError(std::string("cannot create a pipe for a worker: ") +
                                   std::strerror(errno));
  }
  std::vector<std::string> argv;
  if (!request.shim.empty()) {
    argv = {request.shim, "--exec-shim", std::to_string(getpid()), "--"};
  }
  argv.insert(argv.end(), request.argv.begin(), request.argv.end());
  std::vector<std::string> env;
  for (const auto& [name, value] : request.env) env.push_back(name + "=" + value);
  std::vector<char*> c_argv = CStrings(argv);
  std::vector<char*> c_env = CStrings(env);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : kHandledSignals) sigaddset(&defaults, sig);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, c_argv[0], &actions, &attr, c_argv.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    throw common::EnvironmentError("cannot start '" + argv[0] + "': " + std::strerror(rc) +
                                   "; check the command and PATH");
  }
  fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  return ChildProcess(pid, fds[0]);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), output_fd_(other.output_fd_), reaped_(other.reaped_) {
  other.pid_ = -1;
  other.output_fd_ = -1;
  other.reaped_ = true;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    this->~ChildProcess();
    pid_ = other.pid_;
    output_fd_ = other.output_fd_;
    reaped_ = other.reaped_;
    other.pid_ = -1;
    other.output_fd_ = -1;
    other.reaped_ = true;
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  CloseOutput();
}

void ChildProcess::CloseOutput() noexcept {
  if (output_fd_ >= 0) close(output_fd_);
  output_fd_ = -1;
}

void ChildProcess::Signal(int signal) noexcept {
  if (pid_ <= 0) return;
  // The group catches the worker's own children; after the leader is reaped its group may
  // still hold them, so signal the group even then.
  if (kill(-pid_, signal) != 0 && !reaped_) kill(pid_, signal);
}

bool ChildProcess::TryReap(int* status) noexcept {
  if (reaped_) return true;
  pid_t rc = waitpid(pid_, status, WNOHANG);
  if (rc == pid_) {
    reaped_ = true;
    return true;
  }
  return false;
}

int RunExecShim(const std::vector<std::string>& args) {
  // args: --exec-shim PPID -- CMD ARGS...
  if (args.size() < 4 || args[0] != "--exec-shim" || args[2] != "--") {
    std::fprintf(stderr, "runner --exec-shim: internal use only\n");
    return common::kExitUsage;
  }
  const pid_t agent = static_cast<pid_t>(std::stol(args[1]));
  // The shim stays between the agent and the worker: PR_SET_PDEATHSIG reaches only a direct
  // child, so the shim catches it and takes the whole process group (the worker and anything it
  // started) down with it. SIGTERM is catchable, unlike SIGKILL.
  sigset_t wanted;
  sigemptyset(&wanted);
  for (int sig : {SIGTERM, SIGCHLD}) sigaddset(&wanted, sig);
  sigprocmask(SIG_BLOCK, &wanted, nullptr);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  // The agent may have died between spawn and prctl: then nobody would tell us.
  if (getppid() != agent) return common::kExitCollateral;
  std::vector<std::string> command(args.begin() + 3, args.end());
  const pid_t worker = fork();
  if (worker < 0) {
    std::fprintf(stderr, "runner: cannot fork the worker: %s\n", std::strerror(errno));
    return 127;
  }
  if (worker == 0) {
    sigprocmask(SIG_UNBLOCK, &wanted, nullptr);
    // The hang watchdog's stack tool is the agent's child, not the worker's ancestor: under
    // Yama's ptrace_scope 1 the worker must name the agent as its tracer (EINVAL without Yama).
    prctl(PR_SET_PTRACER, static_cast<unsigned long>(agent), 0, 0, 0);
    std::vector<char*> c_argv = CStrings(command);
    execvp(c_argv[0], c_argv.data());
    const int err = errno;
    std::fprintf(stderr, "runner: cannot execute worker command '%s': %s%s\n", command[0].c_str(),
                 std::strerror(err),
                 err == ENOENT ? " (not found in PATH; give a path or fix PATH)" : "");
    _exit(127);
  }
  // The agent signals the whole group, so the worker gets its SIGTERM directly; the shim only
  // acts when the agent itself is gone. Other signals (SIGUSR1, SIGINT, ...) keep their default
  // action in the worker and are ignored here.
  for (int sig : {SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT}) signal(sig, SIG_IGN);
  while (true) {
    siginfo_t info{};
    if (sigwaitinfo(&wanted, &info) < 0) continue;
    if (info.si_signo == SIGTERM && getppid() != agent) {
      kill(0, SIGKILL);  // the agent died: the whole group goes, this shim included
    }
    int status = 0;
    if (waitpid(worker, &status, WNOHANG) != worker) continue;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    // Die the way the worker died, so the agent sees the real signal.
    const int sig = WTERMSIG(status);
    signal(sig, SIG_DFL);
    sigset_t just;
    sigemptyset(&just);
    sigaddset(&just, sig);
    sigprocmask(SIG_UNBLOCK, &just, nullptr);
    prctl(PR_SET_DUMPABLE, 0);  // the worker dumped core already, if it was going to
    kill(getpid(), sig);
    return 128 + sig;
  }
}

std::string SelfExecutable() {
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return "";
  return std::string(path, static_cast<size_t>(n));
}

std::string SignalName(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  return abbrev ? std::string("SIG") + abbrev : std::to_string(signal);
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return "killed by signal " + std::to_string(sig) +
           (name ? " (SIG" + std::string(name) + ")" : "") +
           (WCOREDUMP(status) ? ", core dumped" : "");
  }
  return "ended with wait status " + std::to_string(status);
}

}  // namespace runner
