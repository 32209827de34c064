#pragma once
// The one line every trainer process announces itself with: versions, host, pid, rank/world,
// device, BLAS and threads.

#include <string>

#include "common/environment.h"

namespace trainer {

// Warnings (reference BLAS, spinning OpenMP threads) follow on their own lines.
[[nodiscard]] std::string StartupBanner(const common::Environment& env,
                                        const std::string& threads_source);

// Intra-op threads for this worker: the config's train.num_threads, else OMP_NUM_THREADS, else
// the online CPUs divided by LOCAL_WORLD_SIZE (at least 1). Returns the count and its source.
[[nodiscard]] std::pair<int, std::string> ChooseThreads(const common::Environment& env,
                                                        std::optional<int64_t> configured);

// Applies the thread count to LibTorch (and through it to OpenMP/OpenBLAS).
void ApplyThreads(int threads);

}  // namespace trainer
