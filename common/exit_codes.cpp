#include "common/exit_codes.h"

namespace common {

const char* ExitCodeName(int code) {
  switch (code) {
    case kExitOk:
      return "success";
    case kExitLogsIncomplete:
      return "succeeded, but the logs are incomplete (a log write failed)";
    case kExitUsage:
      return "usage error";
    case kExitConfig:
      return "config error";
    case kExitEnvironment:
      return "environment error";
    case kExitRendezvous:
      return "rendezvous error";
    case kExitDiverged:
      return "training diverged";
    case kExitStopped:
      return "stopped on request";
    case kExitRequeued:
      return "requeued";
    case kExitCollateral:
      return "stopped because of a failure elsewhere";
    case kExitHung:
      return "hung: no rank advanced for the hang timeout";
    case kExitWorkerFailed:
      return "worker failed";
    case kExitWorkerSignaled:
      return "worker killed by a signal";
    case kExitInternal:
      return "internal error";
    default:
      return "unknown exit code";
  }
}

}  // namespace common
