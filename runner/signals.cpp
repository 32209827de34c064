#include "runner/signals.h"

#include <csignal>
#include <initializer_list>
#include <string>

#include "common/errors.h"
#include "runner/process.h"

namespace runner {

namespace {

volatile sig_atomic_t g_terminate = 0;
volatile sig_atomic_t g_usr1 = 0;
volatile sig_atomic_t g_usr2 = 0;
volatile sig_atomic_t g_child = 0;
sigset_t g_wait_mask;

void OnSignal(int sig) {
  switch (sig) {
    case SIGUSR1:
      g_usr1 = 1;
      break;
    case SIGUSR2:
      g_usr2 = 1;
      break;
    case SIGCHLD:
      g_child = 1;
      break;
    default:
      g_terminate = sig;
      break;
  }
}

constexpr std::initializer_list<int> kHandled = {SIGTERM, SIGINT,  SIGHUP, SIGQUIT,
                                                 SIGUSR1, SIGUSR2, SIGCHLD};

void SetHandlers() {
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int sig : kHandled) sigaction(sig, &action, nullptr);
  // A worker's closed pipe must not kill the agent.
  signal(SIGPIPE, SIG_IGN);
}

}  // namespace

void InstallStartupSignalHandlers() {
  SetHandlers();
  // A parent that blocked them (some shells and launchers do) must not make the runner deaf.
  sigset_t handled;
  sigemptyset(&handled);
  for (int sig : kHandled) sigaddset(&handled, sig);
  sigprocmask(SIG_UNBLOCK, &handled, nullptr);
}

void InstallSignalHandlers() {
  sigset_t handled;
  sigemptyset(&handled);
  for (int sig : kHandled) sigaddset(&handled, sig);
  sigset_t original;
  sigprocmask(SIG_BLOCK, &handled, &original);
  g_wait_mask = original;
  for (int sig : kHandled) sigdelset(&g_wait_mask, sig);
  SetHandlers();
}

int StopSignalReceived() {
  if (g_terminate) return g_terminate;
  // Blocked (the agent's discipline) and not yet taken by the wait loop.
  sigset_t pending;
  if (sigpending(&pending) != 0) return 0;
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT})
    if (sigismember(&pending, sig) == 1) return sig;
  return 0;
}

void StopIfRequested(const char* phase) {
  const int sig = StopSignalReceived();
  if (sig == 0) return;
  throw common::Error(common::kExitStopped,
                      "stopped by " + SignalName(sig) + " " + phase + "; no worker was started");
}

const sigset_t& WaitMask() { return g_wait_mask; }

PendingSignals TakeSignals() {
  PendingSignals out;
  // The signals are blocked here (outside ppoll), so reading and clearing cannot race.
  if (g_terminate) {
    out.terminate = true;
    out.terminate_signal = g_terminate;
    g_terminate = 0;
  }
  out.usr1 = g_usr1 != 0;
  out.usr2 = g_usr2 != 0;
  out.child = g_child != 0;
  g_usr1 = g_usr2 = g_child = 0;
  return out;
}

}  // namespace runner
