#pragma once
// The models the trainer can train, behind one small interface: built-in MLP, CNN and a small
// transformer (all for 1x28x28 inputs and 10 classes), or a TorchScript module saved from Python.

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/config.h"

namespace trainer {

class Model {
 public:
  virtual ~Model() = default;
  [[nodiscard]] virtual at::Tensor Forward(const at::Tensor& input) = 0;
  // Trainable parameters in registration order, with their names.
  [[nodiscard]] virtual std::vector<std::pair<std::string, at::Tensor>> NamedParameters() = 0;
  [[nodiscard]] virtual std::vector<at::Tensor> Buffers() = 0;
  virtual void SetTraining(bool training) = 0;
  [[nodiscard]] virtual std::string Describe() = 0;

  [[nodiscard]] std::vector<at::Tensor> Parameters();
  [[nodiscard]] int64_t NumParameters();
};

// Builds train.model (initialised from the current global RNG state). Throws common::ConfigError
// naming train.model_path when a TorchScript file is missing, does not load, or does not map a
// [B, 1, 28, 28] batch to [B, 10] logits.
[[nodiscard]] std::unique_ptr<Model> MakeModel(const common::Config& config);

}  // namespace trainer
