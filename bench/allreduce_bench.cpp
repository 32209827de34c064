// All-reduce bandwidth of the trainer's communicator (trainer/comm.h), run as a worker under the
// runner: `runner --nproc-per-node 2 -- allreduce_bench --allreduce shm --out FILE`. For each
// size, a few untimed rounds, then rounds until about `--seconds` have passed (at least 5);
// rank 0 writes one line per size: bytes, rounds, median and minimum seconds per all-reduce, and
// the bandwidth (bytes / median time, GB/s = 1e9 bytes/s), as bench/allreduce.sh reads it.
// `--compression bf16|fp16` sends the floats over gloo as 16-bit values (the bytes counted are
// still the floats'); each all-reduce goes through AllReduceAsync, the gradients' road.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "common/environment.h"
#include "common/errors.h"
#include "common/worker_contract.h"
#include "trainer/comm.h"

namespace {

struct Args {
  std::string allreduce = "shm";
  std::string compression = "none";
  std::string out;
  double seconds = 0.5;
  std::vector<int64_t> sizes;  // bytes
};

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const std::string value = argv[i + 1];
    if (key == "--allreduce")
      a.allreduce = value;
    else if (key == "--compression")
      a.compression = value;
    else if (key == "--out")
      a.out = value;
    else if (key == "--seconds")
      a.seconds = std::stod(value);
    else if (key == "--size")
      a.sizes.push_back(std::stoll(value));
    else
      throw std::invalid_argument("unknown argument " + key);
  }
  if (a.sizes.empty()) {
    for (int64_t b = 1024; b <= (64 << 20); b *= 4) a.sizes.push_back(b);
    a.sizes.push_back(25 << 20);
    std::sort(a.sizes.begin(), a.sizes.end());
  }
  return a;
}

// Seconds per all-reduce of `bytes` bytes of floats, one entry per timed round.
std::vector<double> Measure(trainer::Communicator& comm, int64_t bytes, double budget) {
  at::Tensor t = at::ones({bytes / 4}, at::kFloat);
  for (int i = 0; i < 3; ++i) comm.AllReduceAsync(t)->Wait();
  std::vector<double> times;
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    // Every rank decides together whether to go on: the one rank 0 measured.
    std::vector<at::Tensor> go = {at::zeros({1}, at::kDouble)};
    if (comm.rank() == 0) {
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      go[0].fill_(times.size() < 5 || (elapsed < budget && times.size() < 2000) ? 1.0 : 0.0);
    }
    comm.AllReduceSum(go);
    if (go[0].item<double>() == 0) break;
    const auto t0 = std::chrono::steady_clock::now();
    comm.AllReduceAsync(t)->Wait();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return times;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args args = Parse(argc, argv);
    at::set_num_threads(1);
    const common::WorkerContract contract = common::ReadContract(common::ProcessEnvironment());
    auto comm = trainer::MakeCommunicator(contract, "gloo", std::chrono::minutes(5), args.allreduce,
                                          args.compression);
    std::ofstream out;
    if (comm->rank() == 0 && !args.out.empty()) out.open(args.out);
    std::ostream& report = out.is_open() ? out : std::cout;
    if (comm->rank() == 0)
      report << "# backend " << comm->backend() << ", " << comm->size() << " ranks\n";
    for (int64_t bytes : args.sizes) {
      std::vector<double> times = Measure(*comm, bytes, args.seconds);
      std::sort(times.begin(), times.end());
      const double median = times[times.size() / 2];
      if (comm->rank() == 0) {
        report << bytes << " " << times.size() << " " << median << " " << times.front() << " "
               << static_cast<double>(bytes) / median / 1e9 << "\n"
               << std::flush;
      }
    }
    return 0;
  } catch (const common::Error& e) {
    std::cerr << "allreduce_bench: " << e.what() << "\n";
    return e.code();
  } catch (const std::exception& e) {
    std::cerr << "allreduce_bench: " << e.what() << "\n";
    return 1;
  }
}
