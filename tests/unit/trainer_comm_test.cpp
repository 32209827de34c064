// The communicator's shared-memory road (trainer/comm.h, train.allreduce=shm) with ranks as
// threads, against flat Gloo; and the reducer's gradients as views of its buckets.

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/sgd.h>
#include <unistd.h>

#include <atomic>
#include <exception>
#include <functional>
#include <thread>
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <vector>

#include "common/errors.h"
#include "common/heartbeat.h"
#include "trainer/comm.h"
#include "trainer/comm_detail.h"
#include "trainer/reducer.h"

namespace trainer {
namespace {

using namespace std::chrono_literals;

void OnRanks(int world, const std::string& allreduce,
             const std::function<void(Communicator&)>& body, int per_machine = 0,
             const std::string& compression = "none") {
  auto store = MakeInProcessStore();
  std::vector<std::exception_ptr> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        auto comm =
            MakeInProcessCommunicator(store, r, world, 60s, allreduce, per_machine, compression);
        body(*comm);
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

TEST(ShmCommunicator, AsyncSumsBroadcastsAndBarriersKeepTheirOrder) {
  for (const char* allreduce : {"shm", "gloo"}) {
    SCOPED_TRACE(allreduce);
    OnRanks(3, allreduce, [&](Communicator& comm) {
      EXPECT_EQ(comm.backend(), allreduce);
      const double r = comm.rank();
      // Several in flight at once, waited in reverse.
      std::vector<at::Tensor> sums;
      std::vector<std::unique_ptr<Communicator::Pending>> pending;
      for (int i = 0; i < 8; ++i) {
        sums.push_back(at::full({1000 * i + 1}, r + i, at::kFloat));
        pending.push_back(comm.AllReduceAsync(sums.back()));
      }
      for (int i = 7; i >= 0; --i) pending[static_cast<size_t>(i)]->Wait();
      for (int i = 0; i < 8; ++i) EXPECT_TRUE(at::all(sums[i] == 3.0 + 3 * i).item<bool>());
      // A strided tensor, doubles, blocking.
      at::Tensor wide = at::full({4, 6}, r, at::kDouble);
      std::vector<at::Tensor> columns = {wide.narrow(1, 1, 2)};
      comm.AllReduceSum(columns);
      EXPECT_EQ(wide.sum().item<double>(), 4 * 4 * r + 4 * 2 * 3.0);
      // Broadcast from rank 1: floats and integers (BatchNorm's counters are int64).
      std::vector<at::Tensor> state = {at::full({5}, r, at::kFloat),
                                       at::full({3}, static_cast<int64_t>(r) + 10, at::kLong)};
      comm.Broadcast(state, 1);
      EXPECT_TRUE(at::all(state[0] == 1.0).item<bool>());
      EXPECT_TRUE(at::all(state[1] == 11).item<bool>());
      comm.Barrier();
    });
  }
}

// Machines of 2 and 3 ranks (and one of 1): shared memory within, gloo between the leaders.
TEST(ShmCommunicator, MachinesSumInSharedMemoryAndBetweenLeadersOverGloo) {
  struct Row {
    int world, per_machine;
  };
  for (const Row row : {Row{4, 2}, Row{6, 3}, Row{5, 2}}) {
    SCOPED_TRACE(std::to_string(row.world) + " ranks, " + std::to_string(row.per_machine) +
                 " per machine");
    const int world = row.world;
    OnRanks(
        world, "shm",
        [&](Communicator& comm) {
          EXPECT_EQ(comm.backend(), "shm+gloo");
          const double r = comm.rank();
          at::Tensor big = at::full({300001}, r + 1, at::kFloat);
          at::Tensor small = at::full({3}, r, at::kDouble);
          auto first = comm.AllReduceAsync(big);
          auto second = comm.AllReduceAsync(small);
          second->Wait();
          first->Wait();
          EXPECT_TRUE(at::all(big == world * (world + 1) / 2.0).item<bool>());
          EXPECT_TRUE(at::all(small == world * (world - 1) / 2.0).item<bool>());
          for (int root : {0, world - 1, 1}) {  // a leader, and ranks that are not
            std::vector<at::Tensor> state = {at::full({7}, r, at::kFloat),
                                             at::full({2}, static_cast<int64_t>(r), at::kLong)};
            comm.Broadcast(state, root);
            EXPECT_TRUE(at::all(state[0] == root).item<bool>()) << "root " << root;
            EXPECT_TRUE(at::all(state[1] == root).item<bool>()) << "root " << root;
          }
          comm.Barrier();
        },
        row.per_machine);
  }
}

TEST(ShmCommunicator, IntegerSumsAreRefusedWithTheWayOut) {
  OnRanks(2, "shm", [](Communicator& comm) {
    std::vector<at::Tensor> ints = {at::ones({4}, at::kLong)};
    try {
      comm.AllReduceSum(ints);
      ADD_FAILURE() << "summed integers in shared memory";
    } catch (const common::CommunicationError& e) {
      EXPECT_NE(std::string(e.what()).find("set train.allreduce=gloo"), std::string::npos)
          << e.what();
    }
  });
}

TEST(ShmCommunicator, TheMachinesStatusesDecideTheRoad) {
  const std::string bad =
      "unavailable on machine 1 (host b, rank 2): cannot reserve 1536 KiB for shared-memory "
      "segment /dev/shm/runner-x: No space left on device";
  const std::string strict = "error: train.allreduce=shm, but shared memory is " + bad +
                             ". Fix: give /dev/shm room (docker --shm-size, mount -o "
                             "remount,size=...), or set train.allreduce=auto (gloo where shared "
                             "memory is unusable) or gloo";
  struct Row {
    std::string mode;
    std::vector<std::string> statuses;
    std::string want;
  };
  const Row rows[] = {
      {"auto", {"shm"}, "shm"},
      {"auto", {"solo", "shm"}, "shm"},
      {"auto", {"solo", "solo"}, "gloo"},
      {"auto", {"shm", bad}, "gloo"},
      {"shm", {"shm", "shm"}, "shm"},
      {"shm", {"solo", "solo"}, "gloo"},  // nothing to share anywhere
      {"shm", {"shm", bad}, strict},
      {"shm", {"solo", bad}, strict},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.mode + " " + row.statuses.back());
    EXPECT_EQ(detail::DecideAllReduce(row.mode, row.statuses), row.want);
  }
}

// A rank's view of the job's store that counts its reads of the machines' agreement ("shm/...").
class CountingStore final : public c10d::Store {
 public:
  explicit CountingStore(c10::intrusive_ptr<c10d::Store> inner) : inner_(std::move(inner)) {}
  void set(const std::string& key, const std::vector<uint8_t>& value) override {
    inner_->set(key, value);
  }
  std::vector<uint8_t> get(const std::string& key) override {
    if (key.rfind("shm/", 0) == 0) ++shm_reads;
    return inner_->get(key);
  }
  int64_t add(const std::string& key, int64_t value) override { return inner_->add(key, value); }
  bool deleteKey(const std::string& key) override { return inner_->deleteKey(key); }
  bool check(const std::vector<std::string>& keys) override { return inner_->check(keys); }
  int64_t getNumKeys() override { return inner_->getNumKeys(); }
  void wait(const std::vector<std::string>& keys) override { inner_->wait(keys); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& t) override {
    inner_->wait(keys, t);
  }
  std::atomic<int> shm_reads{0};

 private:
  c10::intrusive_ptr<c10d::Store> inner_;
};

// Rank 0 reads every machine's status; each other rank reads at most its own machine's and the
// decision, however many machines there are (not world x machines reads in all).
TEST(ShmCommunicator, RanksReadOneDecisionNotEveryMachinesStatus) {
  const int world = 8, per_machine = 2, nodes = world / per_machine;
  auto shared = c10::make_intrusive<c10d::HashStore>();
  std::vector<c10::intrusive_ptr<CountingStore>> stores;
  for (int r = 0; r < world; ++r) stores.push_back(c10::make_intrusive<CountingStore>(shared));
  std::vector<std::thread> threads;
  std::vector<std::string> backends(world);
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      detail::ShmSetup s;
      s.mode = "auto";
      s.rank = r;
      s.size = world;
      s.local_rank = r % per_machine;
      s.local_size = per_machine;
      s.node = r / per_machine;
      s.nodes = nodes;
      s.segment = "/runner-test-reads-" + std::to_string(getpid()) + "-n" + std::to_string(s.node);
      s.timeout = 60s;
      s.address = "127.0.0.1";
      auto comm = detail::MakeShmCommunicator(s, stores[static_cast<size_t>(r)]);
      backends[static_cast<size_t>(r)] = comm ? comm->backend() : "none";
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < world; ++r) {
    SCOPED_TRACE("rank " + std::to_string(r));
    EXPECT_EQ(backends[static_cast<size_t>(r)], "shm+gloo");
    const int reads = stores[static_cast<size_t>(r)]->shm_reads;
    if (r == 0) {
      EXPECT_EQ(reads, nodes);
    } else {
      EXPECT_LE(reads, 2);
    }
  }
}

TEST(Reducer, GradientsAreViewsOfTheBucketAndSurviveZeroGrad) {
  for (const char* allreduce : {"shm", "gloo"}) {
    SCOPED_TRACE(allreduce);
    OnRanks(2, allreduce, [](Communicator& comm) {
      common::HeartbeatWriter heartbeat;
      std::vector<at::Tensor> params = {at::ones({3, 4}).requires_grad_(),
                                        at::ones({5}).requires_grad_()};
      Reducer reducer(params, comm, heartbeat, /*bucket_bytes=*/1 << 20, /*overlap=*/true);
      ASSERT_EQ(reducer.num_buckets(), 1u);
      EXPECT_TRUE(params[0].grad().storage().is_alias_of(params[1].grad().storage()));
      torch::optim::SGD sgd(params, torch::optim::SGDOptions(0.1));
      for (int step = 0; step < 2; ++step) {
        reducer.Prepare(true);
        const double scale = comm.rank() + 1;  // mean over the 2 ranks: 1.5
        ((params[0] * scale).sum() + (params[1] * 2 * scale).sum()).backward();
        (void)reducer.Finish("optimizer");
        EXPECT_TRUE(at::all(params[0].grad() == 1.5).item<bool>()) << params[0].grad();
        EXPECT_TRUE(at::all(params[1].grad() == 3.0).item<bool>()) << params[1].grad();
        sgd.step();
        sgd.zero_grad();
        EXPECT_TRUE(params[0].grad().storage().is_alias_of(params[1].grad().storage()));
      }
    });
  }
}

// What every rank must hold after a compressed all-reduce of `inputs` (one per machine: already
// summed within it): each value sent as `wire` (fp16: a share of the mean), summed in fp32 in
// machine order, rounded to `wire` once more.
at::Tensor CompressedReference(const std::vector<at::Tensor>& inputs, at::ScalarType wire) {
  const double p = static_cast<double>(inputs.size());
  const double scale = wire == at::kHalf ? p : 1.0;
  at::Tensor sum = (inputs[0] * (1.0 / scale)).to(wire).to(at::kFloat);
  for (size_t i = 1; i < inputs.size(); ++i)
    sum.add_((inputs[i] * (1.0 / scale)).to(wire).to(at::kFloat));
  return sum.to(wire).to(at::kFloat) * scale;
}

// Gradients over gloo as bf16/fp16: between ranks of a flat group and between machines' leaders;
// the same bits on every rank, the expected rounding, odd sizes; other sums stay exact.
TEST(GradientCompression, SumsIn32BitsAndEveryRankHoldsTheSameBits) {
  struct Row {
    const char* allreduce;
    int world, per_machine;
    const char* compression;
    const char* backend;
  };
  for (const Row row :
       {Row{"gloo", 3, 0, "bf16", "gloo/bf16"}, Row{"gloo", 2, 0, "fp16", "gloo/fp16"},
        Row{"shm", 4, 2, "bf16", "shm+gloo/bf16"}, Row{"shm", 5, 2, "fp16", "shm+gloo/fp16"}}) {
    SCOPED_TRACE(std::string(row.allreduce) + " " + std::to_string(row.world) + " ranks " +
                 row.compression);
    const at::ScalarType wire = std::string(row.compression) == "bf16" ? at::kBFloat16 : at::kHalf;
    const int machines =
        row.per_machine ? (row.world + row.per_machine - 1) / row.per_machine : row.world;
    for (const int64_t n : {int64_t{1}, int64_t{7}, int64_t{100003}}) {
      at::manual_seed(n);
      std::vector<at::Tensor> values;  // rank r's gradients: exact in fp32 when summed per machine
      for (int r = 0; r < row.world; ++r)
        values.push_back((at::randn({n}) * 256).round() / 64 + 1.0 / 3);
      std::vector<at::Tensor> per_machine(static_cast<size_t>(machines), at::zeros({n}));
      for (int r = 0; r < row.world; ++r) {
        const int m = row.per_machine ? r / row.per_machine : r;
        per_machine[static_cast<size_t>(m)] = per_machine[static_cast<size_t>(m)] + values[r];
      }
      const at::Tensor expected = CompressedReference(per_machine, wire);
      const at::Tensor exact = at::stack(values).sum(0);
      // Two roundings of at most half a unit in the last place each, relative to what is rounded.
      const double unit = wire == at::kBFloat16 ? 1.0 / 256 : 1.0 / 2048;
      const at::Tensor bound = at::stack(per_machine).abs().sum(0) * 2 * unit + 1e-6;
      OnRanks(
          row.world, row.allreduce,
          [&](Communicator& comm) {
            EXPECT_EQ(comm.backend(), row.backend);
            at::Tensor grad = values[comm.rank()].clone();
            comm.AllReduceAsync(grad)->Wait();
            EXPECT_TRUE(at::equal(grad, expected)) << "rank " << comm.rank() << " n " << n;
            EXPECT_TRUE(at::all((grad - exact).abs() <= bound).item<bool>())
                << "rank " << comm.rank();
            std::vector<at::Tensor> metric = {values[comm.rank()].clone()};
            comm.AllReduceSum(metric);  // not a gradient: exact
            EXPECT_TRUE(at::allclose(metric[0], exact, 1e-6, 1e-5));
          },
          row.per_machine, row.compression);
    }
  }
}

// LibTorch 2.x's zero_grad() sets gradients to none, and backward then makes a fresh tensor that
// is not the bucket's: the reducer copies it back in before the all-reduce, so the sum is right.
TEST(Reducer, AGradientSetToNoneOrReplacedIsStillReduced) {
  for (const char* allreduce : {"shm", "gloo"}) {
    SCOPED_TRACE(allreduce);
    OnRanks(2, allreduce, [](Communicator& comm) {
      common::HeartbeatWriter heartbeat;
      std::vector<at::Tensor> params = {at::ones({3, 4}).requires_grad_(),
                                        at::ones({5}).requires_grad_()};
      Reducer reducer(params, comm, heartbeat, /*bucket_bytes=*/1 << 20, /*overlap=*/true);
      ASSERT_EQ(reducer.num_buckets(), 1u);
      for (int step = 1; step <= 3; ++step) {
        SCOPED_TRACE("step " + std::to_string(step));
        if (step == 2) params[0].mutable_grad() = at::Tensor();    // set to none
        if (step == 3) params[1].mutable_grad() = at::zeros({5});  // a tensor of its own
        reducer.Prepare(true);
        const double scale = (comm.rank() + 1) * step;  // mean over the 2 ranks: 1.5 x step
        ((params[0] * scale).sum() + (params[1] * 2 * scale).sum()).backward();
        (void)reducer.Finish("optimizer");
        EXPECT_TRUE(at::all(params[0].grad() == 1.5 * step).item<bool>()) << params[0].grad();
        EXPECT_TRUE(at::all(params[1].grad() == 3.0 * step).item<bool>()) << params[1].grad();
        EXPECT_TRUE(params[0].grad().storage().is_alias_of(params[1].grad().storage()));
        for (at::Tensor& p : params) p.mutable_grad().zero_();
      }
    });
  }
}

}  // namespace
}  // namespace trainer
