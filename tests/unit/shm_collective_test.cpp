// The shared-memory collectives of one machine (common/shm_collective.h): ranks as threads for
// the sums, real processes (fork) for a peer killed by SIGKILL.

#include "common/shm_collective.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "common/errors.h"

namespace common {
namespace {

using namespace std::chrono_literals;

std::string UniqueName() {
  static int counter = 0;
  return "/runner-test-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
}

bool InDevShm(const std::string& name) {
  struct stat st {};
  return stat(("/dev/shm" + name).c_str(), &st) == 0;
}

// Runs body(group) on `ranks` threads, each with its own mapping; rethrows the first error.
void OnRanks(int ranks, const ShmGroupOptions& base, const std::function<void(ShmGroup&)>& body) {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      try {
        ShmGroupOptions o = base;
        o.rank = r;
        o.size = ranks;
        std::unique_ptr<ShmGroup> group = ShmGroup::Open(o);
        body(*group);
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

template <typename T>
std::vector<T> Values(int rank, size_t count) {
  std::mt19937_64 gen(static_cast<uint64_t>(rank) * 7919 + count);
  std::uniform_real_distribution<double> mantissa(-1, 1);
  std::uniform_int_distribution<int> exponent(-20, 20);
  std::vector<T> v(count);
  for (T& x : v) x = static_cast<T>(std::ldexp(mantissa(gen), exponent(gen)));
  return v;
}

template <typename T>
void CheckSum(int ranks, size_t count, size_t chunk) {
  SCOPED_TRACE(std::to_string(ranks) + " ranks, " + std::to_string(count) + " values of " +
               std::to_string(sizeof(T)) + " bytes, chunk " + std::to_string(chunk));
  std::vector<std::vector<T>> data(static_cast<size_t>(ranks));
  std::vector<T> expected(count, T(0));
  for (int r = 0; r < ranks; ++r) {
    data[static_cast<size_t>(r)] = Values<T>(r, count);
    for (size_t j = 0; j < count; ++j) {
      expected[j] = r == 0 ? data[0][j] : expected[j] + data[static_cast<size_t>(r)][j];
    }
  }
  ShmGroupOptions o;
  o.name = UniqueName();
  o.chunk_bytes = chunk;
  o.timeout = 60s;
  OnRanks(ranks, o,
          [&](ShmGroup& g) { g.AllReduceSum(data[static_cast<size_t>(g.rank())].data(), count); });
  for (int r = 0; r < ranks; ++r) {
    // Bit-identical to the sum in rank order 0..n-1, hence across ranks.
    EXPECT_EQ(0,
              std::memcmp(data[static_cast<size_t>(r)].data(), expected.data(), count * sizeof(T)))
        << "rank " << r;
  }
  EXPECT_FALSE(InDevShm(o.name));
}

TEST(ShmCollective, SumsAreExactAndBitIdenticalForManySizes) {
  struct Row {
    int ranks;
    size_t count;
    size_t chunk;
  };
  const std::vector<Row> rows = {
      {2, 1, 256 << 10},
      {2, 15, 256 << 10},
      {2, 17, 64},
      {3, 1, 256 << 10},
      {3, 1001, 256},
      {4, 65536 + 3, 4096},
      {2, 65536, 256 << 10},
      {3, (1 << 20) + 7, 256 << 10},
      {2, (16 << 20), 256 << 10},  // 64 MiB of floats
      {5, 12345, 1024},
  };
  for (const Row& row : rows) CheckSum<float>(row.ranks, row.count, row.chunk);
  for (const Row& row : rows) {
    if (row.count < (4 << 20)) CheckSum<double>(row.ranks, row.count, row.chunk);
  }
  CheckSum<double>(2, (8 << 20) + 1, 256 << 10);  // 64 MiB of doubles, odd count
  CheckSum<float>(1, 100, 256 << 10);             // a group of one leaves data alone
}

TEST(ShmCollective, RepeatedSumsBroadcastsAndBarriersInterleave) {
  ShmGroupOptions o;
  o.name = UniqueName();
  o.chunk_bytes = 512;
  o.timeout = 60s;
  OnRanks(3, o, [](ShmGroup& g) {
    for (int i = 0; i < 300; ++i) {
      const size_t n = static_cast<size_t>(1 + (i * 37) % 700);
      std::vector<double> v(n, g.rank() + 1.0);
      g.AllReduceSum(v.data(), n);
      for (double x : v) ASSERT_EQ(x, 6.0) << "round " << i;
      std::vector<char> bytes(static_cast<size_t>(i * 13 % 2000), static_cast<char>(g.rank()));
      const int root = i % 3;
      g.Broadcast(bytes.data(), bytes.size(), root);
      for (char c : bytes) ASSERT_EQ(c, static_cast<char>(root)) << "round " << i;
      if (i % 7 == 0) g.Barrier();
    }
  });
}

TEST(ShmCollective, TimeoutNamesTheMissingRankAndThePeerFailsFastAfterwards) {
  ShmGroupOptions o;
  o.name = UniqueName();
  o.timeout = 300ms;
  std::string first, second;
  std::mutex mutex;
  std::condition_variable changed;
  bool rank0_done = false;
  OnRanks(2, o, [&](ShmGroup& g) {
    float x = 1;
    if (g.rank() == 0) {
      try {
        g.AllReduceSum(&x, 1);
      } catch (const CommunicationError& e) {
        first = e.what();
      }
      std::lock_guard<std::mutex> lock(mutex);
      rank0_done = true;
      changed.notify_all();
    } else {
      std::unique_lock<std::mutex> lock(mutex);
      changed.wait(lock, [&] { return rank0_done; });  // late: rank 0 has given up by now
      try {
        g.AllReduceSum(&x, 1);
      } catch (const CommunicationError& e) {
        second = e.what();
      }
    }
  });
  EXPECT_NE(first.find("all-reduce #1 of 1 float values"), std::string::npos) << first;
  EXPECT_NE(first.find("timed out after 0.3 s"), std::string::npos) << first;
  EXPECT_NE(first.find("waiting for local rank(s) 1 (pid"), std::string::npos) << first;
  EXPECT_NE(second.find("local rank 0 gave up"), std::string::npos) << second;
}

TEST(ShmCollective, APeerKilledMidCollectiveEndsTheWaitAndLeavesNothingInDevShm) {
  ShmGroupOptions o;
  o.name = UniqueName();
  o.timeout = 120s;
  int ready[2];
  ASSERT_EQ(0, pipe(ready));
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    o.rank = 1;
    o.size = 2;
    std::unique_ptr<ShmGroup> group = ShmGroup::Open(o);
    (void)!write(ready[1], "x", 1);
    pause();
    _exit(0);
  }
  o.rank = 0;
  o.size = 2;
  std::unique_ptr<ShmGroup> group = ShmGroup::Open(o);
  EXPECT_FALSE(InDevShm(o.name)) << "unlinked once every rank has it mapped";
  char c;
  ASSERT_EQ(1, read(ready[0], &c, 1));
  std::thread killer([&] { kill(child, SIGKILL); });  // not reaped until the end: a zombie
  const auto start = std::chrono::steady_clock::now();
  std::vector<float> data(1 << 20, 1.0f);
  std::string error;
  try {
    group->AllReduceSum(data.data(), data.size());
  } catch (const CommunicationError& e) {
    error = e.what();
  }
  killer.join();
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(error.find("local rank 1 (pid " + std::to_string(child) + ") exited or was killed"),
            std::string::npos)
      << error;
  EXPECT_LT(waited, 60.0) << "the dead peer was found long before the 120 s timeout";
  int status = 0;
  ASSERT_EQ(child, waitpid(child, &status, 0));
  EXPECT_TRUE(WIFSIGNALED(status));
  group.reset();
  EXPECT_FALSE(InDevShm(o.name));
  close(ready[0]);
  close(ready[1]);
}

TEST(ShmCollective, SetUpFailuresAreClear) {
  ShmGroupOptions o;
  o.name = "/no/such/dir";
  EXPECT_THROW((void)ShmGroup::Create(o), ShmUnavailable);
  o.name = UniqueName();
  o.rank = 1;
  o.size = 2;
  o.timeout = 200ms;
  try {
    (void)ShmGroup::Join(o);
    ADD_FAILURE() << "joined a segment nobody made";
  } catch (const CommunicationError& e) {
    EXPECT_NE(std::string(e.what()).find("was not ready within 0.2 s"), std::string::npos)
        << e.what();
  }
  o.rank = 0;
  std::unique_ptr<ShmGroup> alone = ShmGroup::Create(o);
  try {
    alone->WaitForAll();
    ADD_FAILURE() << "met a rank that never came";
  } catch (const CommunicationError& e) {
    EXPECT_NE(std::string(e.what()).find("local rank(s) 1 did not attach"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(InDevShm(o.name));
}

}  // namespace
}  // namespace common
