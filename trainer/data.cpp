#include "trainer/data.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/errors.h"

namespace trainer {

namespace {

uint32_t BigEndian32(const std::vector<uint8_t>& bytes, size_t offset) {
  return (uint32_t{bytes[offset]} << 24) | (uint32_t{bytes[offset + 1]} << 16) |
         (uint32_t{bytes[offset + 2]} << 8) | uint32_t{bytes[offset + 3]};
}

bool Exists(const std::string& path) { return std::ifstream(path).good(); }

// <dir>/<stem>.gz if present, else <dir>/<stem>.
std::string Find(const std::string& dir, const std::string& stem) {
  for (const std::string& candidate : {dir + "/" + stem + ".gz", dir + "/" + stem}) {
    if (Exists(candidate)) return candidate;
  }
  throw common::ConfigError(
      "train.data_dir: neither " + dir + "/" + stem + ".gz nor " + dir + "/" + stem +
      " exists; install Debian's dataset-fashion-mnist "
      "(scripts/install-deps) or point train.data_dir at MNIST-format idx files");
}

}  // namespace

std::pair<at::Tensor, at::Tensor> Dataset::Batch(const std::vector<int64_t>& indices) const {
  at::Tensor index = at::tensor(indices, at::kLong);
  return {images.index_select(0, index), labels.index_select(0, index)};
}

std::vector<uint8_t> ReadMaybeGzip(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");  // reads plain files too
  if (file == nullptr) {
    throw common::ConfigError("cannot open '" + path + "': " + std::strerror(errno));
  }
  std::vector<uint8_t> out;
  uint8_t buffer[1 << 16];
  while (true) {
    int n = gzread(file, buffer, sizeof(buffer));
    if (n < 0) {
      int code = 0;
      std::string message = gzerror(file, &code);
      gzclose(file);
      throw common::ConfigError("'" + path + "' is corrupt: " + message);
    }
    if (n == 0) break;
    out.insert(out.end(), buffer, buffer + n);
  }
  gzclose(file);
  return out;
}

Dataset SyntheticDataset(int64_t samples, uint64_t seed, bool test_split) {
  // Class templates come from `seed` alone, so train and test share them; the samples differ.
  auto templates_gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Tensor templates = at::randn({kClasses, 1, kImageSide, kImageSide}, templates_gen);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed * 2654435761ULL + (test_split ? 2 : 1));
  at::Tensor labels = at::randint(kClasses, {samples}, gen, at::kLong);
  at::Tensor noise = at::randn({samples, 1, kImageSide, kImageSide}, gen);
  Dataset d;
  d.images = (templates.index_select(0, labels) + 1.5 * noise).contiguous();
  d.labels = labels;
  d.description = std::string("synthetic ") + (test_split ? "test" : "train") + ": " +
                  std::to_string(samples) + " samples of 10 noisy class templates";
  return d;
}

Dataset LoadIdxDataset(const std::string& dir, bool test_split, int64_t limit, double* mean,
                       double* std) {
  const std::string prefix = test_split ? "t10k" : "train";
  const std::string images_path = Find(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = Find(dir, prefix + "-labels-idx1-ubyte");
  std::vector<uint8_t> images = ReadMaybeGzip(images_path);
  std::vector<uint8_t> labels = ReadMaybeGzip(labels_path);
  if (images.size() < 16 || BigEndian32(images, 0) != 0x00000803) {
    throw common::ConfigError(
        "'" + images_path + "' is not an idx3 image file (magic " +
        (images.size() >= 4 ? std::to_string(BigEndian32(images, 0)) : "missing") +
        ", expected 2051)");
  }
  if (labels.size() < 8 || BigEndian32(labels, 0) != 0x00000801) {
    throw common::ConfigError("'" + labels_path +
                              "' is not an idx1 label file (expected magic 2049)");
  }
  const int64_t n = BigEndian32(images, 4);
  const int64_t rows = BigEndian32(images, 8);
  const int64_t cols = BigEndian32(images, 12);
  const int64_t n_labels = BigEndian32(labels, 4);
  if (rows != kImageSide || cols != kImageSide) {
    throw common::ConfigError("'" + images_path + "' holds " + std::to_string(rows) + "x" +
                              std::to_string(cols) + " images; the built-in models expect 28x28 " +
                              "(use train.model: torchscript for other sizes)");
  }
  if (n != n_labels) {
    throw common::ConfigError("'" + images_path + "' has " + std::to_string(n) + " images but '" +
                              labels_path + "' has " + std::to_string(n_labels) + " labels");
  }
  if (static_cast<int64_t>(images.size()) < 16 + n * rows * cols ||
      static_cast<int64_t>(labels.size()) < 8 + n) {
    throw common::ConfigError("'" + images_path + "' or '" + labels_path +
                              "' is truncated: the header says " + std::to_string(n) + " samples");
  }
  const int64_t keep = limit > 0 ? std::min(limit, n) : n;
  Dataset d;
  d.images = at::from_blob(images.data() + 16, {keep, 1, rows, cols}, at::kByte)
                 .to(at::kFloat)
                 .div_(255.0);
  d.labels = at::from_blob(labels.data() + 8, {keep}, at::kByte).to(at::kLong);
  for (int64_t i = 0; i < keep; ++i) {
    if (labels[static_cast<size_t>(8 + i)] >= kClasses) {
      throw common::ConfigError("'" + labels_path + "': label " +
                                std::to_string(labels[static_cast<size_t>(8 + i)]) + " of sample " +
                                std::to_string(i) + " is not a class 0..9");
    }
  }
  if (!test_split) {
    *mean = d.images.mean().item<double>();
    *std = d.images.std().item<double>();
  }
  d.images.sub_(*mean).div_(*std);
  d.description = prefix + ": " + std::to_string(keep) + " of " + std::to_string(n) +
                  " images from " + images_path;
  return d;
}

}  // namespace trainer
