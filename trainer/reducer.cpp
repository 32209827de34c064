#include "trainer/reducer.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

namespace trainer {

namespace {

// Parameter `p`'s gradient as a tensor on `flat`'s storage from element `offset` (not an autograd
// view, so an in-place zero_grad's detach_ keeps it where it is).
at::Tensor SliceOf(const at::Tensor& flat, int64_t offset, const at::Tensor& p) {
  at::Tensor grad = at::empty({0}, flat.options());
  grad.set_(flat.storage(), offset, p.sizes(), p.strides());
  return grad;
}

}  // namespace

Reducer::Reducer(std::vector<at::Tensor> parameters, Communicator& comm,
                 common::HeartbeatWriter& heartbeat, int64_t bucket_bytes, bool overlap)
    : parameters_(std::move(parameters)), comm_(comm), heartbeat_(heartbeat), overlap_(overlap) {
  // Reverse registration order approximates the order gradients become ready.
  Bucket current;
  int64_t bytes = 0;
  bucket_of_.resize(parameters_.size());
  for (size_t k = parameters_.size(); k-- > 0;) {
    const at::Tensor& p = parameters_[k];
    const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    if (!current.params.empty() && bytes + size > bucket_bytes) {
      buckets_.push_back(std::move(current));
      current = Bucket();
      bytes = 0;
    }
    bucket_of_[k] = buckets_.size();
    current.params.push_back(k);
    current.numel += p.numel();
    bytes += size;
  }
  if (!current.params.empty()) buckets_.push_back(std::move(current));
  param_ready_.assign(parameters_.size(), false);
  if (comm_.size() == 1) return;  // nothing to communicate
  for (Bucket& b : buckets_) MakeGradientsViews(b);
  for (size_t k = 0; k < parameters_.size(); ++k) {
    std::shared_ptr<torch::autograd::Node> accumulator =
        torch::autograd::impl::grad_accumulator(parameters_[k]);
    uintptr_t key =
        accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
            [this, k](const torch::autograd::variable_list& outputs,
                      const torch::autograd::variable_list&) {
              MarkReady(k);
              return outputs;
            }));
    hooks_.emplace_back(accumulator, key);
  }
}

Reducer::~Reducer() {
  for (auto& [node, key] : hooks_) {
    std::static_pointer_cast<torch::autograd::Node>(node)->del_post_hook(key);
  }
}

// Gradients as views of the bucket (DDP's gradient_as_bucket_view): each parameter's gradient
// shares the bucket's flat storage, so backward accumulates straight into it and nothing is
// copied in or out. The gradients are tensors on that storage, not autograd views, so the
// optimizer's zero_grad (detach_, zero_) keeps them in place. Buckets mixing dtypes or holding a
// non-contiguous parameter keep the copies.
void Reducer::MakeGradientsViews(Bucket& bucket) {
  const at::Tensor& first = parameters_[bucket.params.front()];
  for (size_t k : bucket.params) {
    const at::Tensor& p = parameters_[k];
    if (p.scalar_type() != first.scalar_type() || !p.is_contiguous()) return;
  }
  bucket.flat = at::zeros({bucket.numel}, first.options().requires_grad(false));
  int64_t offset = 0;
  for (size_t k : bucket.params) {
    at::Tensor& p = parameters_[k];
    at::Tensor grad = SliceOf(bucket.flat, offset, p);
    if (p.grad().defined()) grad.copy_(p.grad());
    p.mutable_grad() = grad;
    offset += p.numel();
  }
  bucket.views = true;
}

void Reducer::Prepare(bool sync) {
  sync_ = sync && comm_.size() > 1;
  std::fill(param_ready_.begin(), param_ready_.end(), false);
  for (Bucket& b : buckets_) {
    b.ready = 0;
    b.pending.reset();
  }
  next_bucket_ = 0;
}

void Reducer::MarkReady(size_t param) {
  if (!sync_ || param_ready_[param]) return;
  param_ready_[param] = true;
  ++buckets_[bucket_of_[param]].ready;
  if (overlap_) LaunchReadyInOrder();
}

void Reducer::LaunchReadyInOrder() {
  while (next_bucket_ < buckets_.size() &&
         buckets_[next_bucket_].ready == buckets_[next_bucket_].params.size()) {
    Launch(buckets_[next_bucket_]);
    ++next_bucket_;
  }
}

// The gradients must still be the bucket's when it is all-reduced. A zero_grad that sets them to
// none (LibTorch 2.x's default; the trainer zeroes in place) or anything else that replaces one
// leaves backward writing into a fresh tensor, and the bucket would be summed stale. A gradient
// that is not its slice any more is copied into it (none: zeros) and made the slice again, so the
// sum is right either way. Comparing data pointers costs next to nothing.
void Reducer::KeepGradientsInBucket(Bucket& bucket) {
  const auto* base = static_cast<const char*>(bucket.flat.data_ptr());
  const auto item = static_cast<int64_t>(bucket.flat.element_size());
  int64_t offset = 0;
  for (size_t k : bucket.params) {
    at::Tensor& p = parameters_[k];
    const at::Tensor& grad = p.grad();
    if (!grad.defined() || grad.data_ptr() != base + offset * item || grad.sizes() != p.sizes()) {
      at::Tensor slice = SliceOf(bucket.flat, offset, p);
      if (grad.defined()) {
        slice.copy_(grad);
      } else {
        slice.zero_();  // no gradient this time: it contributes zeros
      }
      p.mutable_grad() = slice;
    }
    offset += p.numel();
  }
}

void Reducer::Launch(Bucket& bucket) {
  if (bucket.views) {  // the gradients are the bucket already
    KeepGradientsInBucket(bucket);
    bucket.collective = heartbeat_.Issue();
    bucket.pending = comm_.AllReduceAsync(bucket.flat);
    return;
  }
  std::vector<at::Tensor> grads;
  grads.reserve(bucket.params.size());
  for (size_t k : bucket.params) {
    at::Tensor& p = parameters_[k];
    // A parameter that took no part in this forward contributes zeros, like DDP's unused ones.
    grads.push_back(p.grad().defined() ? p.grad().reshape({-1})
                                       : at::zeros({p.numel()}, p.options()));
  }
  bucket.flat = at::cat(grads);
  bucket.collective = heartbeat_.Issue();
  bucket.pending = comm_.AllReduceAsync(bucket.flat);
}

std::chrono::duration<double> Reducer::Finish(std::string_view then) {
  std::chrono::duration<double> waited{0};
  if (!sync_) {
    heartbeat_.Phase(then);
    return waited;
  }
  // Buckets whose parameters got no gradient, or all of them without overlap, start now.
  for (size_t i = next_bucket_; i < buckets_.size(); ++i) Launch(buckets_[i]);
  next_bucket_ = buckets_.size();
  const int count = static_cast<int>(buckets_.size());
  for (int b = 0; b < count; ++b) {
    Bucket& bucket = buckets_[static_cast<size_t>(b)];
    heartbeat_.Wait("all-reduce", bucket.collective, b + 1, count);
    const auto start = std::chrono::steady_clock::now();
    bucket.pending->Wait();
    waited += std::chrono::steady_clock::now() - start;
    // Average only after the all-reduce has finished with the buffer.
    bucket.flat.div_(comm_.size());
    int64_t offset = 0;
    if (bucket.views) {
      bucket.pending.reset();
      continue;
    }
    for (size_t k : bucket.params) {
      at::Tensor& p = parameters_[k];
      at::Tensor slice = bucket.flat.narrow(0, offset, p.numel()).view(p.sizes());
      if (p.grad().defined()) {
        p.mutable_grad().copy_(slice);
      } else {
        p.mutable_grad() = slice.clone();
      }
      offset += p.numel();
    }
    bucket.pending.reset();
  }
  sync_ = false;
  heartbeat_.EndCollective(then);
  return waited;
}

}  // namespace trainer
