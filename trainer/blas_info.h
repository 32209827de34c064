#pragma once
// Which BLAS library this process really loaded and how many threads it uses: on CPU it decides
// the trainer's speed (Debian's reference libblas3 is ~18x slower than OpenBLAS), so the startup
// banner states it and warns when it is the reference one.

#include <string>

namespace trainer {

struct BlasInfo {
  std::string library;  // resolved path of the loaded BLAS ("" when none is loaded)
  std::string vendor;   // "OpenBLAS", "MKL", "BLIS", "reference", "unknown"
  std::string config;   // OpenBLAS's own build description, when it has one
  int threads = 0;      // the BLAS's own thread count (0 when it cannot say)
  bool slow = false;    // the reference implementation
};

[[nodiscard]] BlasInfo DetectBlas();

}  // namespace trainer
