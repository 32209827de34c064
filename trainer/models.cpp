#include "trainer/models.h"

#include <torch/nn.h>
#include <torch/script.h>

#include <sstream>

#include "common/errors.h"
#include "trainer/data.h"

namespace trainer {

namespace {

struct MlpImpl : torch::nn::Module {
  explicit MlpImpl(const std::vector<int64_t>& hidden) {
    int64_t in = kImageSide * kImageSide;
    for (size_t i = 0; i < hidden.size(); ++i) {
      layers->push_back(torch::nn::Linear(in, hidden[i]));
      layers->push_back(torch::nn::ReLU());
      in = hidden[i];
    }
    layers->push_back(torch::nn::Linear(in, kClasses));
    register_module("layers", layers);
  }
  torch::Tensor forward(const torch::Tensor& x) { return layers->forward(x.flatten(1)); }
  torch::nn::Sequential layers;
};

struct CnnImpl : torch::nn::Module {
  CnnImpl()
      : conv1(torch::nn::Conv2dOptions(1, 32, 3)),
        conv2(torch::nn::Conv2dOptions(32, 64, 3)),
        fc1(64 * 5 * 5, 128),
        fc2(128, kClasses) {
    register_module("conv1", conv1);
    register_module("conv2", conv2);
    register_module("fc1", fc1);
    register_module("fc2", fc2);
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(conv1(x)), 2);  // 32 x 13 x 13
    x = torch::max_pool2d(torch::relu(conv2(x)), 2);  // 64 x 5 x 5
    return fc2(torch::relu(fc1(x.flatten(1))));
  }
  torch::nn::Conv2d conv1, conv2;
  torch::nn::Linear fc1, fc2;
};

// Rows of the image are the tokens: 28 tokens of 28 pixels.
struct TransformerImpl : torch::nn::Module {
  static constexpr int64_t kDim = 64;
  TransformerImpl()
      : embed(kImageSide, kDim),
        encoder(torch::nn::TransformerEncoderOptions(
            torch::nn::TransformerEncoderLayerOptions(kDim, 4).dim_feedforward(128).dropout(0.0),
            2)),
        head(kDim, kClasses) {
    position = register_parameter("position", torch::randn({kImageSide, 1, kDim}) * 0.02);
    register_module("embed", embed);
    register_module("encoder", encoder);
    register_module("head", head);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto tokens = embed(x.squeeze(1).transpose(0, 1)) + position;  // [28, B, D]
    return head(encoder(tokens).mean(0));
  }
  torch::nn::Linear embed;
  torch::nn::TransformerEncoder encoder;
  torch::nn::Linear head;
  torch::Tensor position;
};

template <typename Impl>
class BuiltIn final : public Model {
 public:
  BuiltIn(std::shared_ptr<Impl> module, std::string name)
      : module_(std::move(module)), name_(std::move(name)) {}
  at::Tensor Forward(const at::Tensor& input) override { return module_->forward(input); }
  std::vector<std::pair<std::string, at::Tensor>> NamedParameters() override {
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& item : module_->named_parameters()) out.emplace_back(item.key(), item.value());
    return out;
  }
  std::vector<at::Tensor> Buffers() override { return module_->buffers(); }
  void SetTraining(bool training) override { module_->train(training); }
  std::string Describe() override {
    return name_ + " (" + std::to_string(NumParameters()) + " parameters)";
  }

 private:
  std::shared_ptr<Impl> module_;
  std::string name_;
};

class Scripted final : public Model {
 public:
  Scripted(torch::jit::Module module, std::string path)
      : module_(std::move(module)), path_(std::move(path)) {}
  at::Tensor Forward(const at::Tensor& input) override {
    return module_.forward({input}).toTensor();
  }
  std::vector<std::pair<std::string, at::Tensor>> NamedParameters() override {
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& item : module_.named_parameters()) {
      if (item.value.requires_grad()) out.emplace_back(item.name, item.value);
    }
    return out;
  }
  std::vector<at::Tensor> Buffers() override {
    std::vector<at::Tensor> out;
    for (const auto& item : module_.buffers()) out.push_back(item);
    return out;
  }
  void SetTraining(bool training) override {
    if (training) {
      module_.train();
    } else {
      module_.eval();
    }
  }
  std::string Describe() override {
    return "torchscript " + path_ + " (" + std::to_string(NumParameters()) + " parameters)";
  }

 private:
  torch::jit::Module module_;
  std::string path_;
};

std::unique_ptr<Model> LoadScripted(const std::string& path) {
  torch::jit::Module module;
  try {
    module = torch::jit::load(path);
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    throw common::ConfigError(
        "train.model_path: '" + path + "' does not load as a TorchScript module (" + what +
        "); save it from Python with torch.jit.save(torch.jit.script(model), path)");
  }
  auto model = std::make_unique<Scripted>(std::move(module), path);
  try {
    torch::NoGradGuard no_grad;
    at::Tensor out = model->Forward(torch::zeros({2, 1, kImageSide, kImageSide}));
    if (out.dim() != 2 || out.size(0) != 2 || out.size(1) != kClasses) {
      std::ostringstream shape;
      shape << out.sizes();
      throw common::ConfigError("train.model_path: '" + path + "' maps a [2, 1, 28, 28] batch to " +
                                shape.str() + "; the trainer needs [2, 10] logits");
    }
  } catch (const common::ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    std::string what = e.what();
    throw common::ConfigError("train.model_path: '" + path + "' fails on a [2, 1, 28, 28] batch: " +
                              what.substr(0, what.find('\n')));
  }
  if (model->NumParameters() == 0) {
    throw common::ConfigError("train.model_path: '" + path + "' has no trainable parameters");
  }
  return model;
}

}  // namespace

std::vector<at::Tensor> Model::Parameters() {
  std::vector<at::Tensor> out;
  for (auto& [name, tensor] : NamedParameters()) out.push_back(tensor);
  return out;
}

int64_t Model::NumParameters() {
  int64_t n = 0;
  for (const at::Tensor& t : Parameters()) n += t.numel();
  return n;
}

std::unique_ptr<Model> MakeModel(const common::Config& config) {
  const std::string kind = config.GetString("train.model");
  if (kind == "mlp") {
    return std::make_unique<BuiltIn<MlpImpl>>(
        std::make_shared<MlpImpl>(config.GetIntList("train.hidden_sizes")), "mlp");
  }
  if (kind == "cnn") return std::make_unique<BuiltIn<CnnImpl>>(std::make_shared<CnnImpl>(), "cnn");
  if (kind == "transformer") {
    return std::make_unique<BuiltIn<TransformerImpl>>(std::make_shared<TransformerImpl>(),
                                                      "transformer");
  }
  return LoadScripted(config.GetString("train.model_path"));
}

}  // namespace trainer
