#pragma once
// Which samples each rank sees, like torch.utils.data.DistributedSampler: a permutation of the
// dataset from seed + epoch (identical on every rank), padded by wrapping around (or truncated
// with drop_last) to a multiple of the world size, then dealt out rank, rank + world, ...
// Shards are disjoint (except for the padding) and equally long, so every rank takes the same
// number of steps. Pure and deterministic across platforms (its own shuffle and RNG).

#include <cstdint>
#include <vector>

namespace trainer {

class DistributedSampler {
 public:
  DistributedSampler(int64_t dataset_size, int rank, int world, uint64_t seed, bool shuffle,
                     bool drop_last);
  [[nodiscard]] std::vector<int64_t> Indices(int64_t epoch) const;
  [[nodiscard]] int64_t per_rank() const { return per_rank_; }

 private:
  int64_t size_;
  int rank_;
  int world_;
  uint64_t seed_;
  bool shuffle_;
  bool drop_last_;
  int64_t per_rank_;
};

// A seeded permutation of 0..n-1 (Fisher-Yates over splitmix64), the same everywhere.
[[nodiscard]] std::vector<int64_t> Permutation(int64_t n, uint64_t seed);

}  // namespace trainer
