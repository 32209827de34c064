#include "trainer/blas_info.h"

#include <dlfcn.h>
#include <link.h>

#include <climits>
#include <cstdlib>
#include <vector>

namespace trainer {

namespace {

int CollectLibrary(dl_phdr_info* info, size_t /*size*/, void* data) {
  auto* names = static_cast<std::vector<std::string>*>(data);
  if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0')
    names->emplace_back(info->dlpi_name);
  return 0;
}

std::string RealPath(const std::string& path) {
  char resolved[PATH_MAX];
  return realpath(path.c_str(), resolved) != nullptr ? std::string(resolved) : path;
}

}  // namespace

BlasInfo DetectBlas() {
  BlasInfo info;
  std::vector<std::string> libraries;
  dl_iterate_phdr(CollectLibrary, &libraries);
  for (const std::string& name : libraries) {
    const std::string real = RealPath(name);
    if (real.find("blas") == std::string::npos && real.find("mkl") == std::string::npos) continue;
    if (real.find("cublas") != std::string::npos) continue;
    info.library = real;
    if (real.find("openblas") != std::string::npos) {
      info.vendor = "OpenBLAS";
    } else if (real.find("mkl") != std::string::npos) {
      info.vendor = "MKL";
    } else if (real.find("blis") != std::string::npos) {
      info.vendor = "BLIS";
    } else if (real.find("atlas") != std::string::npos) {
      info.vendor = "ATLAS";
    } else {
      info.vendor = "reference";
      info.slow = true;
    }
    if (info.vendor != "reference") break;
  }
  // The library's own answers, when it exports them.
  using IntFn = int (*)();
  using StrFn = char* (*)();
  if (auto threads = reinterpret_cast<IntFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"))) {
    info.threads = threads();
    if (info.vendor.empty() || info.vendor == "reference") info.vendor = "OpenBLAS";
    info.slow = false;
  } else if (auto mkl_threads =
                 reinterpret_cast<IntFn>(dlsym(RTLD_DEFAULT, "mkl_get_max_threads"))) {
    info.threads = mkl_threads();
  }
  if (auto config = reinterpret_cast<StrFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    if (const char* text = config()) info.config = text;
  }
  if (info.vendor.empty()) info.vendor = "unknown";
  return info;
}

}  // namespace trainer
