// LibTorch 1.13's own c10d::TCPStore client (and ProcessGroupGloo on top of it) against
// runner::StoreServer: what the trainer's workers will do.

// ProcessGroupGloo.hpp declares its class only under this macro; Debian's libtorch is built with
// it.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <vector>

#include "runner/store_server.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::vector<uint8_t> B(const std::string& s) { return {s.begin(), s.end()}; }
std::string S(const std::vector<uint8_t>& v) { return {v.begin(), v.end()}; }

c10::intrusive_ptr<c10d::TCPStore> Connect(uint16_t port, std::chrono::milliseconds timeout = 10s,
                                           c10::optional<std::size_t> workers = c10::nullopt) {
  c10d::TCPStoreOptions opts;
  opts.port = port;
  opts.isServer = false;
  opts.numWorkers = workers;
  opts.waitWorkers = true;  // a client only ADDs itself to "init/" (when numWorkers is set)
  opts.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>("127.0.0.1", opts);
}

class LibTorchTCPStore : public ::testing::Test {
 protected:
  runner::StoreServer server_{"127.0.0.1", 0};
};

TEST_F(LibTorchTCPStore, EveryClientOp) {
  auto store = Connect(server_.port());
  store->set("k", B("value"));
  EXPECT_EQ(S(store->get("k")), "value");
  store->set("k", B(""));
  EXPECT_EQ(S(store->get("k")), "");
  store->set("k", B("v2"));

  EXPECT_EQ(store->add("n", 5), 5);
  EXPECT_EQ(store->add("n", -7), -2);
  EXPECT_EQ(S(store->get("n")), "-2");

  EXPECT_TRUE(store->check({"k", "n"}));
  EXPECT_FALSE(store->check({"k", "missing"}));
  store->wait({"k", "n"});
  store->wait({"k"}, 1s);

  EXPECT_EQ(S(store->compareSet("cs", B(""), B("a"))), "a");
  EXPECT_EQ(S(store->compareSet("cs", B("a"), B("b"))), "b");
  EXPECT_EQ(S(store->compareSet("cs", B("zzz"), B("c"))), "b");
  EXPECT_EQ(S(store->compareSet("absent", B("x"), B("y"))), "x");
  EXPECT_FALSE(store->check({"absent"}));

  EXPECT_EQ(store->getNumKeys(), 3);
  EXPECT_TRUE(store->deleteKey("k"));
  EXPECT_FALSE(store->deleteKey("k"));
  EXPECT_FALSE(store->check({"k"}));
  EXPECT_EQ(store->getNumKeys(), 2);
  EXPECT_EQ(server_.NumKeys(), 2u);
}

TEST_F(LibTorchTCPStore, WaitTimesOutAndTheConnectionStaysUsable) {
  auto store = Connect(server_.port());
  auto other = Connect(server_.port());
  store->set("present", B("p"));
  const auto start = Clock::now();
  EXPECT_ANY_THROW(store->wait({"late"}, 300ms));
  const auto waited = Clock::now() - start;
  EXPECT_GE(waited, 250ms);
  EXPECT_LT(waited, 5s);
  // 1.13 gives up its WAIT without telling the server, which drops it when the connection's next
  // request comes: the key turning up afterwards must not confuse the connection's replies.
  // (Were it set between the timeout and the next request, no server could tell; see
  // python_clients_test.py.)
  EXPECT_EQ(S(store->get("present")), "p");
  other->set("late", B("l"));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(store->add("n", 1), 1);
  EXPECT_EQ(S(store->get("late")), "l");

  // get() of a missing key waits for it, up to the store's timeout.
  store->setTimeout(300ms);
  EXPECT_ANY_THROW(store->get("never"));
  EXPECT_EQ(S(store->get("present")), "p");
}

TEST_F(LibTorchTCPStore, WaitReturnsWhenAnotherClientSets) {
  auto waiter = Connect(server_.port());
  auto setter = Connect(server_.port());
  auto result = std::async(std::launch::async, [&] {
    waiter->wait({"a", "b"}, 5s);
    return S(waiter->get("b"));
  });
  std::this_thread::sleep_for(100ms);
  setter->set("a", B("1"));
  EXPECT_EQ(result.wait_for(100ms), std::future_status::timeout) << "returned with b missing";
  setter->set("b", B("2"));
  ASSERT_EQ(result.wait_for(6s), std::future_status::ready);
  EXPECT_EQ(result.get(), "2");
}

TEST_F(LibTorchTCPStore, TwoClientsAddCounting) {
  constexpr int kAdds = 200;
  auto count = [&] {
    auto store = Connect(server_.port(), 10s, 2);  // numWorkers: each ADDs itself to "init/"
    int64_t last = 0;
    for (int i = 0; i < kAdds; ++i) last = store->add("counter", 1);
    return last;
  };
  auto a = std::async(std::launch::async, count);
  auto b = std::async(std::launch::async, count);
  ASSERT_EQ(a.wait_for(20s), std::future_status::ready);
  ASSERT_EQ(b.wait_for(20s), std::future_status::ready);
  const int64_t last_a = a.get();
  const int64_t last_b = b.get();
  EXPECT_EQ(std::max(last_a, last_b), 2 * kAdds);
  auto store = Connect(server_.port());
  EXPECT_EQ(S(store->get("counter")), std::to_string(2 * kAdds));
  // Both also ADDed themselves to "init/" (sent without the client's "/" key prefix).
  EXPECT_EQ(server_.NumKeys(), 2u);
}

TEST_F(LibTorchTCPStore, WatchKeyCallbacks) {
  auto watcher = Connect(server_.port());
  auto writer = Connect(server_.port());
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> events;
  auto record = [&](c10::optional<std::string> old_value, c10::optional<std::string> new_value) {
    std::lock_guard<std::mutex> lock(mutex);
    events.push_back((old_value ? *old_value : "<none>") + "->" +
                     (new_value ? *new_value : "<none>"));
    changed.notify_all();
  };
  auto registered = std::async(std::launch::async, [&] { watcher->watchKey("w", record); });
  ASSERT_EQ(registered.wait_for(5s), std::future_status::ready) << "watchKey did not return";
  registered.get();
  writer->set("w", B("1"));
  writer->set("w", B("2"));
  std::unique_lock<std::mutex> lock(mutex);
  ASSERT_TRUE(changed.wait_for(lock, 5s, [&] { return events.size() >= 2; }))
      << events.size() << " callbacks";
  EXPECT_EQ(events[0], "<none>->1");
  EXPECT_EQ(events[1], "1->2");
}

TEST(LibTorchGloo, TwoRanksAllreduceThroughOurStore) {
  runner::StoreServer server("127.0.0.1", 0);
  constexpr int kWorld = 2;
  std::vector<std::string> errors(kWorld);
  std::vector<std::vector<float>> results(kWorld);
  auto rank_main = [&](int rank) {
    try {
      auto tcp = Connect(server.port(), 20s, kWorld);
      auto store = c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_0", tcp);
      auto options = c10d::ProcessGroupGloo::Options::create(20s);
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      c10d::ProcessGroupGloo pg(store, rank, kWorld, options);
      std::vector<at::Tensor> tensors = {at::full({4}, static_cast<float>(rank + 1))};
      if (!pg.allreduce(tensors)->wait(20s)) throw std::runtime_error("allreduce timed out");
      const at::Tensor sum = tensors[0].contiguous();
      results[rank].assign(sum.data_ptr<float>(), sum.data_ptr<float>() + sum.numel());
      if (!pg.barrier()->wait(20s)) throw std::runtime_error("barrier timed out");
    } catch (const std::exception& e) {
      errors[rank] = e.what();
    }
  };
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < kWorld; ++rank) ranks.emplace_back(rank_main, rank);
  for (auto& t : ranks) t.join();
  for (int rank = 0; rank < kWorld; ++rank) {
    EXPECT_EQ(errors[rank], "") << "rank " << rank;
    EXPECT_EQ(results[rank], std::vector<float>(4, 3.0F)) << "rank " << rank;
  }
  EXPECT_TRUE(server.DescribeWaits().empty());
}

}  // namespace
