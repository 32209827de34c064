#pragma once
// Where a resumed run starts, as a pure function of the checkpoint's position and this run's
// shape. With the same world size the checkpoint's position is taken as it is (a bit-exact
// resume). With another world size the epoch and the global samples already consumed in it are
// kept: the step within the epoch is those samples over this run's global step, rounded down
// (then not bit-exact, and the note says so), and the step counter (with it the LR schedule)
// counts steps of this world's size. A position at or past the epoch's last step rolls into the
// next epoch.

#include <cstdint>
#include <string>

namespace trainer {

// What a checkpoint records about where it stopped (see TrainingState).
struct CheckpointPosition {
  int64_t step = 0;              // optimizer steps done
  int64_t epoch = 0;             // the epoch in progress
  int64_t step_in_epoch = 0;     // steps of that epoch done
  int64_t samples_in_epoch = 0;  // global samples of that epoch consumed
  int world_size = 1;            // the world that wrote it
};

// The run that resumes.
struct RunShape {
  int world_size = 1;
  int64_t batch_per_rank = 1;
  int64_t grad_accum_steps = 1;
  int64_t steps_per_epoch = 1;
};

struct ResumePoint {
  int64_t step = 0;           // the next step's 0-based index (steps already done)
  int64_t epoch = 0;          // 0-based epoch the next step belongs to
  int64_t step_in_epoch = 0;  // 0-based step within that epoch
  // "" for the same world size; otherwise " (written by 2 ranks; 256 samples of epoch 1 done =
  // step 8 of it with 1 ranks)", with ", rounded down: not bit-exact" before the ")" when the
  // samples are not a whole number of this run's steps.
  std::string note;

  // "resumed from <from> at step 11, epoch 1 step 11<note>"; epochs counted from 1.
  [[nodiscard]] std::string Describe(const std::string& from) const;
};

[[nodiscard]] ResumePoint ComputeResumePoint(const CheckpointPosition& checkpoint,
                                             const RunShape& run);

}  // namespace trainer
