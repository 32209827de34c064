#pragma once
// The hang verdict, a pure function of every rank's view (runner/hang_view.h) when no rank of the
// job has advanced for the hang timeout. Agent 0 computes it from every agent's views and sends
// its lines to the others (runner/hang_monitor.h).
//
// Who is named (the "laggards"):
// - every rank whose process is stopped (T, t), uninterruptible (D), a zombie, or has ended; when
//   there is one, the ranks inside a collective are waiting for it (a rank stopped mid-all-reduce
//   leaves its ring neighbours in that collective too), and only ranks behind outside any
//   collective are named beside it; otherwise:
// - among ranks that publish heartbeats, those furthest behind by (step, collective), unless
//   every one of them is at the same point; then those not inside that collective (a rank that
//   never entered it); when all wait in the collective of the same number but under different
//   names (all-reduce here, barrier there: one was skipped or added), those outside the largest
//   group; when all wait in the very same collective, nobody is behind and the verdict says so
//   (suspect the network or a device);
// - with no heartbeat from any rank, the ranks whose output and CPU time stood still.
// Everyone else is "waiting", grouped by where: "ranks 0-2 waiting in all-reduce #4812 (bucket
// 2/3)".

#include <string>
#include <vector>

#include "runner/hang_view.h"

namespace runner {

struct HangVerdict {
  int64_t step = -1;               // the lowest step among publishing ranks; -1 when unknown
  double stalled_s = 0;            // how long the job stood still (the shortest rank stall)
  std::vector<RankView> laggards;  // named, in rank order
  std::vector<RankView> waiting;   // the others, in rank order
  std::vector<std::string> lines;  // for people: the first is the headline
  bool weak_evidence = false;      // no heartbeat from any named rank: output and /proc only
};

[[nodiscard]] HangVerdict JudgeHang(std::vector<RankView> views, double timeout_s);

// diagnosis.json: the verdict with every rank's view and the stack files' names.
[[nodiscard]] std::string HangVerdictJson(const HangVerdict& verdict, double timeout_s,
                                          const std::vector<std::string>& stack_files);

}  // namespace runner
