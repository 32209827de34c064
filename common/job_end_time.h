#pragma once
// SLURM_JOB_END_TIME, the moment Slurm ends the job (the runner reports it, the trainer stops
// with a checkpoint before it), parsed in one place so both accept the same values.

#include <cstdint>
#include <optional>
#include <string_view>

namespace common {

inline constexpr char kSlurmJobEndTimeVar[] = "SLURM_JOB_END_TIME";

// The end time as Slurm writes it: whole Unix seconds, 0 or more (a strict integer, see
// ParseInt64). nullopt when `text` is anything else; the caller words the error.
[[nodiscard]] std::optional<int64_t> ParseJobEndTime(std::string_view text);

}  // namespace common
