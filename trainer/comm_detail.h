#pragma once
// Inside the communicator (trainer/comm.cpp, trainer/shm_comm.cpp): the c10d pieces they share.
// Included by those source files only: it brings c10d's headers.

// ProcessGroupGloo.hpp declares its class only under this macro; Debian's LibTorch has Gloo.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <vector>

#include "trainer/comm.h"

namespace trainer::detail {

// A Gloo group of `size` ranks meeting through `store`; its connections use GLOO_SOCKET_IFNAME,
// else loopback when the store was reached by a loopback `address`, else this host's name.
[[nodiscard]] c10::intrusive_ptr<c10d::ProcessGroupGloo> MakeGloo(
    const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
    std::chrono::milliseconds timeout, const std::string& address);

// Where a rank sits and how it wants its all-reduce (train.allreduce).
struct ShmSetup {
  std::string mode;  // "auto" or "shm"
  int rank = 0;
  int size = 1;
  int local_rank = 0;
  int local_size = 1;
  int node = 0;
  int nodes = 1;
  std::string segment;  // common::ShmSegmentName
  std::chrono::milliseconds timeout{0};
  std::string address;               // the store's, for the leaders' Gloo group
  std::string compression = "none";  // train.gradient_compression, for the Gloo hop
  bool flat = false;         // every rank its own "machine": one flat Gloo group (MakeQueuedGloo)
  double setup_fault_s = 0;  // tests: train.fault_inject's comm-setup delay for this rank
};

// What the job does from every machine's status (MakeShmCommunicator): "shm", "gloo" (one flat
// Gloo group: in auto a machine cannot share memory, or no machine has two workers) or
// "error: <message>" (train.allreduce=shm and a machine cannot share memory).
[[nodiscard]] std::string DecideAllReduce(const std::string& mode,
                                          const std::vector<std::string>& statuses);

// The hierarchical communicator: sums within each machine in shared memory
// (common/shm_collective.h), between one leader per machine (local rank 0) over a Gloo group of
// the leaders (a PrefixStore "leaders" on `store`; rank = node, size = nodes), and back within
// the machine. Its collectives run in order on a thread of their own, so AllReduceAsync does not
// block. Each machine's local rank 0 makes the segment and publishes under `store` whether its
// machine can share memory ("shm/node_<k>"); its other local ranks open the segment at once
// (its name leaves /dev/shm then); rank 0 reads every machine's status and publishes one
// decision ("shm/decision", DecideAllReduce) that every other rank reads. Returns nullptr when
// the job goes on with one flat Gloo group: no machine has two workers, or (mode auto) shared
// memory is unavailable on one of them (a warning on stderr from that machine's local rank 0,
// naming the reason). Throws common::EnvironmentError on every rank when mode is shm and a
// machine cannot share memory (naming the machine, host, rank and reason), and
// common::CommunicationError when the machines do not meet.
[[nodiscard]] std::unique_ptr<Communicator> MakeShmCommunicator(
    const ShmSetup& setup, const c10::intrusive_ptr<c10d::Store>& store);

// The flat Gloo group `group` (rank = setup.rank) behind the same ordered queue, for a gradient
// compression between ranks that share no memory: setup.flat, one rank per "machine".
[[nodiscard]] std::unique_ptr<Communicator> MakeQueuedGloo(
    ShmSetup setup, c10::intrusive_ptr<c10d::ProcessGroupGloo> group);

// train.gradient_compression as the type gradients travel in over Gloo: kFloat (none),
// kBFloat16 or kHalf. Throws common::ConfigError for anything else.
[[nodiscard]] at::ScalarType WireType(const std::string& compression);

// Buffers reused from one all-reduce to the next (no allocation per step once grown).
class WireScratch {
 public:
  at::Tensor Get(size_t slot, int64_t n, at::ScalarType type);

 private:
  std::vector<at::Tensor> buffers_;
};

// Sums the float tensor `tensor` over `group`, in place, sending `wire` (kBFloat16 or kHalf)
// values: a reduce-scatter (all-to-all) whose chunks each owner sums in fp32 in rank order, then
// an all-gather of the summed chunks, so every rank ends with the same bits and half the bytes
// of a float all-reduce cross the network. kHalf sends each rank's value divided by the group's
// size (the sum is multiplied back), as PyTorch's fp16 hook does, so that sums stay below 65504.
// Throws common::CommunicationError starting with what().
void WireAllReduce(c10d::ProcessGroupGloo& group, at::Tensor& tensor, at::ScalarType wire,
                   WireScratch& scratch, const std::function<std::string()>& what);

}  // namespace trainer::detail
