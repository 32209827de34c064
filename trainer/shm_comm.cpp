// The hierarchical communicator: shared memory within a machine, Gloo between machines
// (trainer/comm_detail.h).

#include <ATen/ATen.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>

#include "common/errors.h"
#include "common/heartbeat.h"
#include "common/shm_collective.h"
#include "trainer/comm_detail.h"

namespace trainer::detail {

namespace {

class ShmCommunicator final : public Communicator {
 public:
  ShmCommunicator(const ShmSetup& setup, std::unique_ptr<common::ShmGroup> local,
                  c10::intrusive_ptr<c10d::ProcessGroupGloo> leaders)
      : setup_(setup),
        wire_(WireType(setup.compression)),
        local_(std::move(local)),
        leaders_(std::move(leaders)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~ShmCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  class Task final : public Pending {
   public:
    explicit Task(std::future<void> done) : done_(std::move(done)) {}
    void Wait() override { done_.get(); }

   private:
    std::future<void> done_;
  };

  int rank() const override { return setup_.rank; }
  int size() const override { return setup_.size; }
  std::string backend() const override {
    // "shm": shared memory only; "shm+gloo": and gloo between the machines' leaders; "gloo":
    // one flat group. "/bf16", "/fp16": gradients travel over gloo compressed.
    const std::string road = setup_.flat ? "gloo" : setup_.nodes > 1 ? "shm+gloo" : "shm";
    return wire_ == at::kFloat ? road : road + "/" + setup_.compression;
  }

  std::unique_ptr<Pending> AllReduceAsync(at::Tensor& tensor) override {
    return Submit([this, tensor]() mutable { AllReduceNow(tensor, /*gradients=*/true); });
  }
  void AllReduceSum(std::vector<at::Tensor>& tensors) override {
    Submit([this, &tensors] {
      for (at::Tensor& t : tensors) AllReduceNow(t);
    })->Wait();
  }
  void Broadcast(std::vector<at::Tensor>& tensors, int root) override {
    Submit([this, &tensors, root] {
      for (at::Tensor& t : tensors) BroadcastNow(t, root);
    })->Wait();
  }
  void Barrier() override {
    Submit([this] {
      LocalBarrier();
      if (leaders_) Gloo(leaders_->barrier(), [] { return std::string("barrier"); });
      if (setup_.nodes > 1) LocalBarrier();
    })->Wait();
  }

 private:
  std::unique_ptr<Pending> Submit(std::function<void()> work) {
    std::packaged_task<void()> task(std::move(work));
    auto done = task.get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(task));
    }
    wake_.notify_one();
    return std::make_unique<Task>(std::move(done));
  }

  // The collectives, one after the other in the order they were submitted.
  void Loop() {
    for (;;) {
      std::packaged_task<void()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (stop_) return;  // what is still queued is abandoned: nobody waits for it
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  // Within the machine; nothing to do where this rank is its only worker.
  void LocalSum(float* data, size_t n) {
    if (local_) local_->AllReduceSum(data, n);
  }
  void LocalSum(double* data, size_t n) {
    if (local_) local_->AllReduceSum(data, n);
  }
  void LocalBroadcast(at::Tensor& t, int root) {
    if (local_) local_->Broadcast(t.data_ptr(), t.nbytes(), root);
  }
  void LocalBarrier() {
    if (local_) local_->Barrier();
  }

  // `what()` names the collective; called only when it failed.
  template <typename What>
  void Gloo(const c10::intrusive_ptr<c10d::Work>& work, const What& what) {
    try {
      work->wait();
    } catch (const std::exception& e) {
      throw common::CommunicationError(what() + " " + Between() + " failed: " + e.what());
    }
  }

  std::string Between() const {
    if (setup_.flat) {
      return "between " + std::to_string(setup_.size) + " ranks (this is rank " +
             std::to_string(setup_.rank) + ")";
    }
    return "between the leaders of " + std::to_string(setup_.nodes) + " machines (this one is " +
           std::to_string(setup_.node) + ")";
  }

  void AllReduceNow(at::Tensor& tensor, bool gradients = false) {
    at::Tensor t = tensor.is_contiguous() ? tensor : tensor.contiguous();
    const auto n = static_cast<size_t>(t.numel());
    if (t.scalar_type() == at::kFloat) {
      LocalSum(t.data_ptr<float>(), n);
    } else if (t.scalar_type() == at::kDouble) {
      LocalSum(t.data_ptr<double>(), n);
    } else {
      throw common::CommunicationError(
          "the shared-memory all-reduce sums float and double tensors, not " +
          std::string(c10::toString(t.scalar_type())) + "; set train.allreduce=gloo");
    }
    if (leaders_ && gradients && wire_ != at::kFloat && t.scalar_type() == at::kFloat) {
      WireAllReduce(*leaders_, t, wire_, scratch_, [&] {
        return "all-reduce of " + std::to_string(n) + " gradients as " + setup_.compression + " " +
               Between();
      });
    } else if (leaders_) {
      std::vector<at::Tensor> one = {t};
      Gloo(leaders_->allreduce(one),
           [n] { return "all-reduce of " + std::to_string(n) + " values"; });
    }
    if (setup_.nodes > 1) LocalBroadcast(t, 0);
    if (!t.is_same(tensor)) tensor.copy_(t);
  }

  // From global rank `root`: within its machine first, then between the leaders, then within
  // every other machine. Where root is is found with two small sums.
  void BroadcastNow(at::Tensor& tensor, int root) {
    at::Tensor t = tensor.is_contiguous() ? tensor : tensor.contiguous();
    double here = setup_.rank == root ? setup_.local_rank + 1 : 0;
    LocalSum(&here, 1);
    const int root_local = static_cast<int>(here) - 1;  // -1: not on this machine
    if (root_local >= 0) LocalBroadcast(t, root_local);
    if (setup_.nodes > 1) {
      if (leaders_) {
        at::Tensor node = at::full({1}, root_local >= 0 ? setup_.node + 1.0 : 0.0, at::kDouble);
        std::vector<at::Tensor> one = {node};
        Gloo(leaders_->allreduce(one),
             [root] { return "finding the machine of broadcast root " + std::to_string(root); });
        c10d::BroadcastOptions options;
        options.rootRank = static_cast<int>(node.item<double>()) - 1;
        std::vector<at::Tensor> data = {t};
        Gloo(leaders_->broadcast(data, options),
             [root] { return "broadcast from rank " + std::to_string(root); });
      }
      if (root_local < 0) LocalBroadcast(t, 0);
    }
    if (!t.is_same(tensor)) tensor.copy_(t);
  }

  ShmSetup setup_;
  at::ScalarType wire_;                      // kFloat: gradients go over gloo as they are
  WireScratch scratch_;                      // used on the queue's thread only
  std::unique_ptr<common::ShmGroup> local_;  // null where this rank is alone on its machine
  c10::intrusive_ptr<c10d::ProcessGroupGloo> leaders_;  // null on non-leaders and on one machine
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::packaged_task<void()>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

std::string Text(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }
std::vector<uint8_t> Bytes(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

std::string NodeKey(int node) { return "shm/node_" + std::to_string(node); }
constexpr char kDecisionKey[] = "shm/decision";
constexpr char kUnavailable[] = "unavailable";

std::string HostName() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return host;
}

// Local rank 0's status of its machine: "shm" (segment made: set in `segment`), "solo" (one
// worker here, none needed) or "unavailable on machine <k> (host <h>, rank <r>): why".
std::string MakeSegment(const ShmSetup& s, std::unique_ptr<common::ShmGroup>& segment) {
  if (s.local_size < 2) return "solo";
  common::ShmGroupOptions o;
  o.name = s.segment;
  o.rank = 0;
  o.size = s.local_size;
  o.timeout = s.timeout;
  try {
    segment = common::ShmGroup::Create(o);
    return "shm";
  } catch (const common::ShmUnavailable& e) {
    if (s.mode == "auto") {
      std::cerr << "trainer: warning: machine " << s.node
                << ": shared memory unavailable: " << e.what()
                << "; every rank all-reduces over gloo instead (train.allreduce=" << s.mode
                << "). Fix: give /dev/shm room (docker --shm-size, mount -o "
                << "remount,size=...), or set train.allreduce=gloo" << std::endl;
    }
    return std::string(kUnavailable) + " on machine " + std::to_string(s.node) + " (host " +
           HostName() + ", rank " + std::to_string(s.rank) + "): " + e.what();
  }
}

// train.fault_inject's comm-setup phase (tests): this rank holds where the segment exists but
// not every local rank has opened it.
void Hold(const ShmSetup& s) {
  if (s.setup_fault_s <= 0) return;
  common::ProcessHeartbeat().Phase("comm-setup");
  std::this_thread::sleep_for(std::chrono::duration<double>(s.setup_fault_s));
}

// The machine's local ranks meet: local rank 0 makes the segment and publishes its status, the
// others open it at once (so that its name leaves /dev/shm before anyone waits for the other
// machines). Null where this machine has no segment.
std::unique_ptr<common::ShmGroup> MeetLocally(const ShmSetup& s, c10d::Store& store) {
  std::unique_ptr<common::ShmGroup> local;
  if (s.local_rank == 0) {
    const std::string status = MakeSegment(s, local);
    if (local) Hold(s);
    store.set(NodeKey(s.node), Bytes(status));
  } else if (s.local_size > 1 && Text(store.get(NodeKey(s.node))) == "shm") {
    Hold(s);
    common::ShmGroupOptions o;
    o.name = s.segment;
    o.rank = s.local_rank;
    o.size = s.local_size;
    o.timeout = s.timeout;
    local = common::ShmGroup::Join(o);
  }
  if (local) local->WaitForAll();
  return local;
}

// Rank 0 reads every machine's status once and publishes the decision; the others read that.
std::string Decide(const ShmSetup& s, c10d::Store& store) {
  if (s.rank != 0) return Text(store.get(kDecisionKey));
  std::vector<std::string> statuses;
  for (int k = 0; k < s.nodes; ++k) statuses.push_back(Text(store.get(NodeKey(k))));
  const std::string decision = DecideAllReduce(s.mode, statuses);
  store.set(kDecisionKey, Bytes(decision));
  return decision;
}

}  // namespace

std::unique_ptr<Communicator> MakeQueuedGloo(ShmSetup setup,
                                             c10::intrusive_ptr<c10d::ProcessGroupGloo> group) {
  setup.flat = true;
  setup.node = setup.rank;
  setup.nodes = setup.size;
  setup.local_rank = 0;
  setup.local_size = 1;
  return std::make_unique<ShmCommunicator>(setup, nullptr, std::move(group));
}

std::string DecideAllReduce(const std::string& mode, const std::vector<std::string>& statuses) {
  bool any_shm = false;
  for (const std::string& status : statuses) {
    if (status.rfind(kUnavailable, 0) == 0) {
      if (mode != "shm") return "gloo";
      return "error: train.allreduce=shm, but shared memory is " + status +
             ". Fix: give /dev/shm room (docker --shm-size, mount -o remount,size=...), or set "
             "train.allreduce=auto (gloo where shared memory is unusable) or gloo";
    }
    any_shm = any_shm || status == "shm";
  }
  return any_shm ? "shm" : "gloo";  // no machine with two workers: nothing to share
}

std::unique_ptr<Communicator> MakeShmCommunicator(const ShmSetup& s,
                                                  const c10::intrusive_ptr<c10d::Store>& store) {
  try {
    std::unique_ptr<common::ShmGroup> local = MeetLocally(s, *store);
    const std::string decision = Decide(s, *store);
    if (decision.rfind("error: ", 0) == 0) throw common::EnvironmentError(decision.substr(7));
    if (decision != "shm") return nullptr;  // `local` goes, and its name with it
    c10::intrusive_ptr<c10d::ProcessGroupGloo> leaders;
    if (s.nodes > 1 && s.local_rank == 0) {
      auto prefixed = c10::make_intrusive<c10d::PrefixStore>("leaders", store);
      leaders = MakeGloo(prefixed, s.node, s.nodes, s.timeout, s.address);
    }
    return std::make_unique<ShmCommunicator>(s, std::move(local), std::move(leaders));
  } catch (const common::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw common::CommunicationError(
        "rank " + std::to_string(s.rank) + " (local rank " + std::to_string(s.local_rank) +
        " on machine " + std::to_string(s.node) + "): the shared-memory group and the gloo " +
        "group of the machines' leaders did not form within " +
        std::to_string(s.timeout.count() / 1000) + " s: " + e.what());
  }
}

}  // namespace trainer::detail
