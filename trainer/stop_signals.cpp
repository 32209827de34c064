#include "trainer/stop_signals.h"

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <initializer_list>

namespace trainer {

namespace {
volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_preempt = 0;
char g_ignored_note[160];
size_t g_ignored_note_size = 0;
void OnStop(int) { g_stop = 1; }
void OnPreempt(int) { g_preempt = 1; }
// write(2) is async-signal-safe; the note was formatted at installation.
void OnIgnored(int) {
  const int saved = errno;
  [[maybe_unused]] const ssize_t n = write(STDERR_FILENO, g_ignored_note, g_ignored_note_size);
  errno = saved;
}
}  // namespace

void InstallStopHandlers(const char* preempt_signal) {
  struct sigaction stop {};
  stop.sa_handler = OnStop;
  sigemptyset(&stop.sa_mask);
  stop.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaction(sig, &stop, nullptr);
  const bool usr2 = std::strcmp(preempt_signal, "USR2") == 0;
  struct sigaction preempt {};
  preempt.sa_handler = OnPreempt;
  sigemptyset(&preempt.sa_mask);
  preempt.sa_flags = SA_RESTART;
  sigaction(usr2 ? SIGUSR2 : SIGUSR1, &preempt, nullptr);
  // The runner relays both SIGUSR1 and SIGUSR2 (other workers may use the other one); the one
  // that is not the preempt signal must not kill this worker with its default action.
  const int written = std::snprintf(
      g_ignored_note, sizeof(g_ignored_note),
      "trainer: received %s, which is not the preempt signal (launch.preempt_signal: %s): "
      "ignored, training goes on\n",
      usr2 ? "SIGUSR1" : "SIGUSR2", usr2 ? "USR2" : "USR1");
  g_ignored_note_size = written > 0 ? static_cast<size_t>(written) : 0;
  struct sigaction ignored {};
  ignored.sa_handler = OnIgnored;
  sigemptyset(&ignored.sa_mask);
  ignored.sa_flags = SA_RESTART;
  sigaction(usr2 ? SIGUSR1 : SIGUSR2, &ignored, nullptr);
  signal(SIGXFSZ, SIG_IGN);
}

StopRequests PendingStops() { return {g_stop != 0, g_preempt != 0}; }

}  // namespace trainer
