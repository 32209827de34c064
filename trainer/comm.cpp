#include "trainer/comm.h"

#include <unistd.h>

#include <cstdlib>
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "common/errors.h"
#include "common/shm_name.h"
#include "trainer/comm_detail.h"

namespace trainer {

class InProcessStore {
 public:
  c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::HashStore>();
};

namespace {

class SoloCommunicator final : public Communicator {
 public:
  class Done final : public Pending {
   public:
    void Wait() override {}
  };
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "none (world of one)"; }
  std::unique_ptr<Pending> AllReduceAsync(at::Tensor&) override { return std::make_unique<Done>(); }
  void AllReduceSum(std::vector<at::Tensor>&) override {}
  void Broadcast(std::vector<at::Tensor>&, int) override {}
  void Barrier() override {}
};

// Over the concrete group type: in LibTorch 1.13 ProcessGroupGloo/NCCL derive from
// c10d::ProcessGroup, in 2.x from c10d::Backend; both have the calls used here.
template <typename Group>
class C10dCommunicator final : public Communicator {
 public:
  C10dCommunicator(c10::intrusive_ptr<Group> group, std::string backend)
      : group_(std::move(group)), backend_(std::move(backend)) {}

  class Work final : public Pending {
   public:
    // `what` names the collective; with `values` >= 0 the failure message adds how many values
    // of which type (built only then: an all-reduce per bucket and step allocates nothing).
    Work(c10::intrusive_ptr<c10d::Work> work, std::string what, int64_t values = -1,
         c10::ScalarType type = c10::ScalarType::Undefined)
        : work_(std::move(work)), what_(std::move(what)), values_(values), type_(type) {}
    void Wait() override {
      try {
        work_->wait();
      } catch (const std::exception& e) {
        std::string what = what_;
        if (values_ >= 0)
          what += " of " + std::to_string(values_) + " " + c10::toString(type_) + " values";
        throw common::CommunicationError(what + " failed: " + e.what());
      }
    }

   private:
    c10::intrusive_ptr<c10d::Work> work_;
    std::string what_;  // short: no allocation
    int64_t values_;
    c10::ScalarType type_;
  };

  int rank() const override { return group_->getRank(); }
  int size() const override { return group_->getSize(); }
  std::string backend() const override { return backend_; }

  std::unique_ptr<Pending> AllReduceAsync(at::Tensor& tensor) override {
    std::vector<at::Tensor> tensors = {tensor};
    return std::make_unique<Work>(group_->allreduce(tensors), "all-reduce", tensor.numel(),
                                  tensor.scalar_type());
  }

  void AllReduceSum(std::vector<at::Tensor>& tensors) override {
    Work(group_->allreduce(tensors),
         "all-reduce of " + std::to_string(tensors.size()) + " tensor(s)")
        .Wait();
  }

  void Broadcast(std::vector<at::Tensor>& tensors, int root) override {
    // One tensor per call: Gloo broadcasts a list as replicas of one tensor.
    for (at::Tensor& t : tensors) {
      std::vector<at::Tensor> one = {t};
      c10d::BroadcastOptions options;
      options.rootRank = root;
      Work(group_->broadcast(one, options), "broadcast from rank " + std::to_string(root)).Wait();
    }
  }

  void Barrier() override { Work(group_->barrier(), "barrier").Wait(); }

 private:
  c10::intrusive_ptr<Group> group_;
  std::string backend_;
};

}  // namespace

namespace detail {

c10::intrusive_ptr<c10d::ProcessGroupGloo> MakeGloo(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int size,
                                                    std::chrono::milliseconds timeout,
                                                    const std::string& address) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  // Gloo's own connections: the interface GLOO_SOCKET_IFNAME names, else the address the store
  // was reached by when that is loopback (one host), else this host's name.
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      ifname != nullptr && *ifname != '\0') {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  } else if (address.rfind("127.", 0) == 0 || address == "localhost") {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
}

}  // namespace detail

using detail::MakeGloo;

namespace {

// One flat Gloo group; behind the ordered queue when gradients travel compressed.
std::unique_ptr<Communicator> FlatGloo(c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo, int rank,
                                       int size, std::chrono::milliseconds timeout,
                                       const std::string& compression) {
  if (detail::WireType(compression) == at::kFloat) {
    return std::make_unique<C10dCommunicator<c10d::ProcessGroupGloo>>(std::move(gloo), "gloo");
  }
  detail::ShmSetup s;
  s.rank = rank;
  s.size = size;
  s.timeout = timeout;
  s.compression = compression;
  return detail::MakeQueuedGloo(s, std::move(gloo));
}

}  // namespace

bool HaveNccl() { return false; }

std::unique_ptr<Communicator> MakeCommunicator(const common::WorkerContract& contract,
                                               const std::string& backend,
                                               std::chrono::milliseconds timeout,
                                               const std::string& allreduce,
                                               const std::string& compression,
                                               double setup_fault_s) {
  if (contract.standalone || contract.world_size == 1) {
    if (backend == "nccl" && !HaveNccl()) {
      throw common::ConfigError(
          "launch.backend=nccl, but this trainer was built with a CPU-only "
          "LibTorch; build against a CUDA LibTorch (README, GPU build) or use gloo");
    }
    return std::make_unique<SoloCommunicator>();
  }
  if (backend == "nccl") {
    throw common::ConfigError(
        "launch.backend=nccl, but this trainer was built with a CPU-only "
        "LibTorch; build against a CUDA LibTorch (README, GPU build) or use gloo");
  }
  c10::intrusive_ptr<c10d::Store> tcp;
  const std::string where = contract.master_addr + ":" + std::to_string(contract.master_port);
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(contract.master_port);
    options.isServer = false;
    options.timeout = timeout;
    tcp = c10::make_intrusive<c10d::TCPStore>(contract.master_addr, options);
  } catch (const std::exception& e) {
    throw common::CommunicationError(
        "rank " + std::to_string(contract.rank) + ": cannot reach the job's store at " + where +
        " (MASTER_ADDR:MASTER_PORT): " + e.what() + "; is the node-0 runner alive?");
  }
  auto store = c10::make_intrusive<c10d::PrefixStore>(
      "/worker/attempt_" + std::to_string(contract.restart_count), tcp);
  if (allreduce != "gloo") {
    detail::ShmSetup s;
    s.mode = allreduce;
    s.rank = contract.rank;
    s.size = contract.world_size;
    s.local_rank = contract.local_rank;
    s.local_size = contract.local_world_size;
    s.node = contract.node_rank;
    s.nodes = contract.node_count;
    s.segment = common::ShmSegmentName(contract);  // as the runner's agent names it
    s.timeout = timeout;
    s.address = contract.master_addr;
    s.compression = compression;
    s.setup_fault_s = setup_fault_s;
    if (std::unique_ptr<Communicator> comm = detail::MakeShmCommunicator(s, store)) return comm;
  }
  try {
    auto gloo = MakeGloo(store, contract.rank, contract.world_size, timeout, contract.master_addr);
    return FlatGloo(std::move(gloo), contract.rank, contract.world_size, timeout, compression);
  } catch (const std::exception& e) {
    throw common::CommunicationError(
        "rank " + std::to_string(contract.rank) + " of " + std::to_string(contract.world_size) +
        ": the gloo process group did not form through the store at " + where + " within " +
        std::to_string(timeout.count() / 1000) + " s: " + e.what());
  }
}

std::shared_ptr<InProcessStore> MakeInProcessStore() { return std::make_shared<InProcessStore>(); }

std::unique_ptr<Communicator> MakeInProcessCommunicator(
    const std::shared_ptr<InProcessStore>& store, int rank, int size,
    std::chrono::milliseconds timeout, const std::string& allreduce, int per_machine,
    const std::string& compression) {
  if (size == 1) return std::make_unique<SoloCommunicator>();
  if (allreduce != "gloo") {
    if (per_machine <= 0) per_machine = size;
    detail::ShmSetup s;
    s.mode = allreduce;
    s.rank = rank;
    s.size = size;
    s.local_rank = rank % per_machine;
    s.local_size = std::min(per_machine, size - rank / per_machine * per_machine);
    s.node = rank / per_machine;
    s.nodes = (size + per_machine - 1) / per_machine;
    s.segment = "/runner-test-" + std::to_string(getpid()) + "-" +
                std::to_string(reinterpret_cast<uintptr_t>(store.get())) + "-n" +
                std::to_string(s.node);
    s.timeout = timeout;
    s.address = "127.0.0.1";
    s.compression = compression;
    if (std::unique_ptr<Communicator> comm = detail::MakeShmCommunicator(s, store->store))
      return comm;
  }
  return FlatGloo(MakeGloo(store->store, rank, size, timeout, "127.0.0.1"), rank, size, timeout,
                  compression);
}

}  // namespace trainer
