#include "trainer/banner.h"

#include <ATen/Parallel.h>
#include <torch/version.h>
#include <unistd.h>

#include <sstream>

#include "common/errors.h"
#include "common/version.h"
#include "trainer/blas_info.h"

namespace trainer {

std::string StartupBanner(const common::Environment& env, const std::string& threads_source) {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  const BlasInfo blas = DetectBlas();
  std::ostringstream out;
  out << "trainer " << common::kProjectVersion << " host=" << host << " pid=" << getpid()
      << " rank=" << env.Get("RANK").value_or("-")
      << " world_size=" << env.Get("WORLD_SIZE").value_or("-")
      << " local_rank=" << env.Get("LOCAL_RANK").value_or("-")
      << " device=cpu libtorch=" << TORCH_VERSION << " intra_op_threads=" << at::get_num_threads()
      << " blas=" << blas.vendor << " blas_threads=" << blas.threads
      << " blas_library=" << (blas.library.empty() ? "(none loaded)" : blas.library)
      << " (threads from " << threads_source << ")";
  if (at::get_num_threads() > 1 && !env.Get("OMP_WAIT_POLICY")) {
    out << "\nwarning: OMP_WAIT_POLICY is not set and intra_op_threads=" << at::get_num_threads()
        << ": spinning OpenMP threads can slow training many times over (measured 10x on 2 cores); "
           "export OMP_WAIT_POLICY=PASSIVE (the runner sets it for its workers)";
  }
  if (blas.slow) {
    out << "\nwarning: the BLAS is the slow reference implementation (" << blas.library
        << "); matrix products run ~18x slower. Fix: scripts/install-deps (installs OpenBLAS and "
           "selects it with update-alternatives)";
  }
  return out.str();
}

std::pair<int, std::string> ChooseThreads(const common::Environment& env,
                                          std::optional<int64_t> configured) {
  if (configured) return {static_cast<int>(*configured), "train.num_threads"};
  if (std::optional<std::string> omp = env.Get("OMP_NUM_THREADS")) {
    try {
      size_t used = 0;
      int n = std::stoi(*omp, &used);
      if (used == omp->size() && n >= 1) return {n, "OMP_NUM_THREADS"};
    } catch (const std::exception&) {
    }
    throw common::EnvironmentError("OMP_NUM_THREADS='" + *omp + "' is not a positive integer; " +
                                   "unset it or set a thread count like 4");
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int workers = 1;
  if (std::optional<std::string> lws = env.Get("LOCAL_WORLD_SIZE")) {
    size_t used = 0;
    try {
      workers = std::stoi(*lws, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != lws->size() || workers < 1) {
      throw common::EnvironmentError("LOCAL_WORLD_SIZE='" + *lws +
                                     "' is not a positive integer; the runner " +
                                     "sets it to the number of workers on this host");
    }
  }
  int threads = std::max(1, static_cast<int>(cpus) / workers);
  return {threads, "online CPUs (" + std::to_string(cpus) + ") / LOCAL_WORLD_SIZE (" +
                       std::to_string(workers) + ")"};
}

void ApplyThreads(int threads) { at::set_num_threads(threads); }

}  // namespace trainer
