#include "trainer/resume_point.h"

namespace trainer {

ResumePoint ComputeResumePoint(const CheckpointPosition& checkpoint, const RunShape& run) {
  ResumePoint point;
  point.step = checkpoint.step;
  point.epoch = checkpoint.epoch;
  point.step_in_epoch = checkpoint.step_in_epoch;
  const bool other_world = checkpoint.world_size != run.world_size;
  if (other_world) {
    const int64_t global_step = run.batch_per_rank * run.grad_accum_steps * run.world_size;
    point.step_in_epoch = checkpoint.samples_in_epoch / global_step;
    point.note =
        " (written by " + std::to_string(checkpoint.world_size) + " ranks; " +
        std::to_string(checkpoint.samples_in_epoch) + " samples of epoch " +
        std::to_string(checkpoint.epoch + 1) + " done = step " +
        std::to_string(point.step_in_epoch) + " of it with " + std::to_string(run.world_size) +
        " ranks" +
        (checkpoint.samples_in_epoch % global_step != 0 ? ", rounded down: not bit-exact" : "") +
        ")";
  }
  if (point.step_in_epoch >= run.steps_per_epoch) {
    ++point.epoch;
    point.step_in_epoch = 0;
  }
  if (other_world) point.step = point.epoch * run.steps_per_epoch + point.step_in_epoch;
  return point;
}

std::string ResumePoint::Describe(const std::string& from) const {
  return "resumed from " + from + " at step " + std::to_string(step) + ", epoch " +
         std::to_string(epoch + 1) + " step " + std::to_string(step_in_epoch) + note;
}

}  // namespace trainer
