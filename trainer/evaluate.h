#pragma once
// Distributed evaluation on the test split: each rank scores its shard (no shuffle, padding not
// counted), and the loss sum, correct count and sample count are all-reduced, so every rank
// returns the same numbers. Runs in fp32 with the model in eval mode; leaves it in training mode.
// Publishes phase "evaluation", then the all-reduce as collective "evaluation".

#include <cstdint>

#include "trainer/comm.h"
#include "trainer/data.h"
#include "trainer/phase_tracker.h"

namespace trainer {

class Model;

struct Evaluation {
  double loss = 0;      // mean cross-entropy over the test samples
  double accuracy = 0;  // fraction classified correctly
  int64_t samples = 0;  // test samples counted, over all ranks
};

[[nodiscard]] Evaluation Evaluate(Model& model, const Dataset& test, Communicator& comm,
                                  PhaseTracker& phases, int64_t batch);

}  // namespace trainer
