#pragma once
// The small blocking collectives of the training loop (the step agreement, the timing exchange,
// evaluation's sums, the checkpoint wait): a few doubles summed over the ranks in one all-reduce,
// numbered in the heartbeat (trainer/phase_tracker.h) so a rank stuck in one is named with it.

#include <string_view>
#include <vector>

#include "common/heartbeat.h"

namespace trainer {

class Communicator;

// Element-wise sum of every rank's `values` (all ranks pass as many). Publishes collective
// `phase` (issued and waited in) before it starts and `phase` outside the collective after it;
// throws common::CommunicationError as the communicator does.
[[nodiscard]] std::vector<double> SumOverRanks(Communicator& comm,
                                               common::HeartbeatWriter& heartbeat,
                                               const std::vector<double>& values,
                                               std::string_view phase);

}  // namespace trainer
