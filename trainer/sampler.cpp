#include "trainer/sampler.h"

#include <numeric>
#include <stdexcept>

namespace trainer {

namespace {

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Uniform in [0, bound) without modulo bias.
uint64_t Below(uint64_t bound, uint64_t* state) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t x;
  do {
    x = SplitMix64(state);
  } while (x >= limit);
  return x % bound;
}

}  // namespace

std::vector<int64_t> Permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> out(static_cast<size_t>(n));
  std::iota(out.begin(), out.end(), 0);
  uint64_t state = seed;
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(Below(static_cast<uint64_t>(i + 1), &state));
    std::swap(out[static_cast<size_t>(i)], out[static_cast<size_t>(j)]);
  }
  return out;
}

DistributedSampler::DistributedSampler(int64_t dataset_size, int rank, int world, uint64_t seed,
                                       bool shuffle, bool drop_last)
    : size_(dataset_size),
      rank_(rank),
      world_(world),
      seed_(seed),
      shuffle_(shuffle),
      drop_last_(drop_last) {
  if (world < 1 || rank < 0 || rank >= world)
    throw std::invalid_argument("sampler: bad rank/world");
  per_rank_ = drop_last ? size_ / world : (size_ + world - 1) / world;
}

std::vector<int64_t> DistributedSampler::Indices(int64_t epoch) const {
  std::vector<int64_t> all;
  if (shuffle_) {
    all = Permutation(size_, seed_ + static_cast<uint64_t>(epoch) * 0x100000001B3ULL);
  } else {
    all.resize(static_cast<size_t>(size_));
    std::iota(all.begin(), all.end(), 0);
  }
  const int64_t total = per_rank_ * world_;
  if (total < size_) {
    all.resize(static_cast<size_t>(total));
  } else {
    for (int64_t i = size_; i < total; ++i)
      all.push_back(all[static_cast<size_t>((i - size_) % size_)]);
  }
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(per_rank_));
  for (int64_t i = rank_; i < total; i += world_) mine.push_back(all[static_cast<size_t>(i)]);
  return mine;
}

}  // namespace trainer
