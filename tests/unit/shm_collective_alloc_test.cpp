// The shared-memory collectives allocate nothing when they succeed: their messages are put into
// words only when one fails (common/shm_collective.h). Counted by replacing operator new in this
// test binary, per thread (each rank is a thread).

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <new>
#include <thread>
#include <vector>

#include "common/shm_collective.h"

namespace {
thread_local long allocations = 0;
}  // namespace

void* operator new(std::size_t bytes) {
  ++allocations;
  if (void* p = std::malloc(bytes == 0 ? 1 : bytes)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace common {
namespace {

TEST(ShmCollectiveAllocations, ASuccessfulCollectiveAllocatesNothing) {
  ShmGroupOptions base;
  base.name = "/runner-test-alloc-" + std::to_string(getpid());
  base.chunk_bytes = 4096;  // several chunks per sum
  base.timeout = std::chrono::seconds(60);
  constexpr int kRanks = 3;
  std::vector<long> counted(kRanks, -1);
  std::vector<std::exception_ptr> errors(kRanks);
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r) {
    threads.emplace_back([&, r] {
      try {
        ShmGroupOptions o = base;
        o.rank = r;
        o.size = kRanks;
        std::unique_ptr<ShmGroup> group = ShmGroup::Open(o);
        std::vector<float> floats(10000, 1.0f);
        std::vector<double> doubles(3000, 1.0);
        const long before = allocations;
        for (int i = 0; i < 20; ++i) {
          group->AllReduceSum(floats.data(), floats.size());
          group->AllReduceSum(doubles.data(), doubles.size());
          group->Broadcast(doubles.data(), doubles.size() * sizeof(double), i % kRanks);
          group->Barrier();
        }
        counted[static_cast<size_t>(r)] = allocations - before;
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  for (int r = 0; r < kRanks; ++r) EXPECT_EQ(counted[static_cast<size_t>(r)], 0) << "rank " << r;
}

}  // namespace
}  // namespace common
