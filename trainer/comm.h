#pragma once
// The trainer's one seam to c10d: collectives on tensors, whatever the backend and the LibTorch
// version. Gloo on CPU (built everywhere); NCCL only where a CUDA LibTorch is found. No c10d
// header leaks out of comm.cpp.

#include <ATen/core/Tensor.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/worker_contract.h"

namespace trainer {

class Communicator {
 public:
  // An all-reduce in flight.
  class Pending {
   public:
    virtual ~Pending() = default;
    // Blocks until done. Throws common::CommunicationError naming the operation on failure or
    // timeout.
    virtual void Wait() = 0;
  };

  virtual ~Communicator() = default;
  [[nodiscard]] virtual int rank() const = 0;
  [[nodiscard]] virtual int size() const = 0;
  [[nodiscard]] virtual std::string backend() const = 0;

  // Sums `tensor` over all ranks, in place, without blocking.
  [[nodiscard]] virtual std::unique_ptr<Pending> AllReduceAsync(at::Tensor& tensor) = 0;
  // Blocking helpers built on the same process group.
  virtual void AllReduceSum(std::vector<at::Tensor>& tensors) = 0;
  virtual void Broadcast(std::vector<at::Tensor>& tensors, int root) = 0;
  virtual void Barrier() = 0;
};

// The process group for this worker: connects to the agent's store (MASTER_ADDR:MASTER_PORT,
// keys under /worker/attempt_<TORCHELASTIC_RESTART_COUNT>, like torch.distributed) and builds
// ProcessGroupGloo ("gloo") or ProcessGroupNCCL ("nccl"). A standalone contract gets a world of
// one with no process group. `allreduce` is train.allreduce: "gloo" (one flat Gloo group), "shm"
// or "auto" (shm when two or more workers share a machine): sums in shared memory within each
// machine and over Gloo between one leader per machine (trainer/comm_detail.h), or flat Gloo
// with a warning when shared memory is unavailable (auto), or an error (shm: exit 4, naming the
// machine and the reason). Throws common::CommunicationError (store unreachable, peers missing
// within `timeout`), common::EnvironmentError (shm and a machine cannot share memory) or
// common::ConfigError (nccl without a CUDA build). `compression` is train.gradient_compression:
// "none", or "bf16"/"fp16" for the gradients' all-reduces wherever they go over Gloo (between the
// machines' leaders; every rank in a flat group), summed in fp32 (detail::WireAllReduce); never
// within shared memory. `setup_fault_s`: tests only, the seconds this rank holds in the
// shared-memory set-up (train.fault_inject's comm-setup phase).
[[nodiscard]] std::unique_ptr<Communicator> MakeCommunicator(
    const common::WorkerContract& contract, const std::string& backend,
    std::chrono::milliseconds timeout, const std::string& allreduce = "gloo",
    const std::string& compression = "none", double setup_fault_s = 0);

// For tests: ranks as threads of one process over an in-memory store (real ProcessGroupGloo, or
// with `allreduce` "shm" the ranks as the local ranks of machines of `per_machine` ranks each,
// rank r on machine r / per_machine; 0: all on one machine).
class InProcessStore;
[[nodiscard]] std::shared_ptr<InProcessStore> MakeInProcessStore();
[[nodiscard]] std::unique_ptr<Communicator> MakeInProcessCommunicator(
    const std::shared_ptr<InProcessStore>& store, int rank, int size,
    std::chrono::milliseconds timeout, const std::string& allreduce = "gloo", int per_machine = 0,
    const std::string& compression = "none");

// True when this build can use NCCL.
[[nodiscard]] bool HaveNccl();

}  // namespace trainer
