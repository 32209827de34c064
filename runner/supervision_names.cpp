#include "runner/supervision_policy.h"

namespace runner {

const char* WorkerStateName(WorkerState state) {
  switch (state) {
    case WorkerState::kNotStarted:
      return "not started";
    case WorkerState::kRunning:
      return "running";
    case WorkerState::kStopRequested:
      return "stop requested";
    case WorkerState::kKillSent:
      return "kill sent";
    case WorkerState::kEndedUnjudged:
      return "ended, judged after the window";
    case WorkerState::kExited:
      return "exited";
    case WorkerState::kSignalled:
      return "signalled";
    case WorkerState::kFailedToStart:
      return "failed to start";
  }
  return "?";
}

const char* AttemptStateName(AttemptState state) {
  switch (state) {
    case AttemptState::kRunning:
      return "running";
    case AttemptState::kStopping:
      return "stopping";
    case AttemptState::kKilling:
      return "killing";
    case AttemptState::kDraining:
      return "draining";
  }
  return "?";
}

}  // namespace runner
