#pragma once
// Datasets held in memory as tensors: images [N, 1, 28, 28] (float, normalised) and labels [N]
// (int64). Two sources: a synthetic classification set that needs no files (deterministic from the
// seed), and MNIST-format idx files, plain or .gz (Debian's dataset-fashion-mnist puts
// Fashion-MNIST under /usr/share/datasets/fashion-mnist).

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace trainer {

struct Dataset {
  at::Tensor images;        // [N, 1, 28, 28] float32
  at::Tensor labels;        // [N] int64
  std::string description;  // "fashion-mnist train: 60000 images from ..."
  [[nodiscard]] int64_t size() const { return labels.size(0); }
  // The samples at `indices`, as one batch.
  [[nodiscard]] std::pair<at::Tensor, at::Tensor> Batch(const std::vector<int64_t>& indices) const;
};

inline constexpr int kImageSide = 28;
inline constexpr int kClasses = 10;

// `samples` training (or test) images from class templates plus noise; same on every rank.
[[nodiscard]] Dataset SyntheticDataset(int64_t samples, uint64_t seed, bool test_split);

// Reads <dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. `limit` > 0 keeps only the first
// `limit` samples. Normalises with the training set's mean and standard deviation (`mean`/`std`
// are filled for the train split and used for the test split). Throws common::ConfigError naming
// the file and what is wrong (missing, truncated, bad magic, counts that disagree, images not
// 28x28).
[[nodiscard]] Dataset LoadIdxDataset(const std::string& dir, bool test_split, int64_t limit,
                                     double* mean, double* std);

// Reads one idx file (plain or gzip) fully. Throws common::ConfigError.
[[nodiscard]] std::vector<uint8_t> ReadMaybeGzip(const std::string& path);

}  // namespace trainer
