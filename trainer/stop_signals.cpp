#include "trainer/stop_signals.h"

#include <csignal>
#include <cstring>
#include <initializer_list>

namespace trainer {

namespace {
volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_preempt = 0;
void OnStop(int) { g_stop = 1; }
void OnPreempt(int) { g_preempt = 1; }
}  // namespace

void InstallStopHandlers(const char* preempt_signal) {
  struct sigaction stop {};
  stop.sa_handler = OnStop;
  sigemptyset(&stop.sa_mask);
  stop.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaction(sig, &stop, nullptr);
  struct sigaction preempt {};
  preempt.sa_handler = OnPreempt;
  sigemptyset(&preempt.sa_mask);
  preempt.sa_flags = SA_RESTART;
  sigaction(std::strcmp(preempt_signal, "USR2") == 0 ? SIGUSR2 : SIGUSR1, &preempt, nullptr);
  signal(SIGXFSZ, SIG_IGN);
}

StopRequests PendingStops() { return {g_stop != 0, g_preempt != 0}; }

}  // namespace trainer
