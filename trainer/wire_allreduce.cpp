// Gradients sent between machines as 16-bit floats (trainer/comm_detail.h).

#include <ATen/ATen.h>

#include "common/errors.h"
#include "trainer/comm_detail.h"

namespace trainer::detail {

at::ScalarType WireType(const std::string& compression) {
  if (compression == "bf16") return at::kBFloat16;
  if (compression == "fp16") return at::kHalf;
  if (compression.empty() || compression == "none") return at::kFloat;
  throw common::ConfigError("train.gradient_compression: '" + compression +
                            "' is not one of none, bf16, fp16");
}

at::Tensor WireScratch::Get(size_t slot, int64_t n, at::ScalarType type) {
  if (buffers_.size() <= slot) buffers_.resize(slot + 1);
  at::Tensor& b = buffers_[slot];
  if (!b.defined() || b.scalar_type() != type || b.numel() < n) {
    b = at::empty({n}, at::TensorOptions().dtype(type));
  }
  return b.narrow(0, 0, n);
}

namespace {

void WaitFor(const c10::intrusive_ptr<c10d::Work>& work, const std::function<std::string()>& what) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    throw common::CommunicationError(what() + " failed: " + e.what());
  }
}

}  // namespace

// Reduce-scatter as an all-to-all of 16-bit chunks, each chunk summed in fp32 by its owner in
// rank order, then an all-gather of the summed chunks: every rank ends with the same bits, half
// the bytes of a float all-reduce go over the wire. Gloo moves the 16-bit values as kHalf (it
// has no bfloat16 type; nothing is computed on them there).
void WireAllReduce(c10d::ProcessGroupGloo& group, at::Tensor& tensor, at::ScalarType wire,
                   WireScratch& scratch, const std::function<std::string()>& what) {
  const int p = group.getSize();
  const int64_t n = tensor.numel();
  const int64_t chunk = (n + p - 1) / p;
  at::Tensor flat = tensor.view({-1});
  at::Tensor send = scratch.Get(0, p * chunk, wire);
  // fp16 overflows past 65504: each machine sends its share of the mean, as PyTorch's fp16 hook.
  const double scale = wire == at::kHalf ? p : 1.0;
  if (scale != 1.0) {
    at::Tensor share = scratch.Get(3, n, at::kFloat);
    at::mul_out(share, flat, 1.0 / scale);
    send.narrow(0, 0, n).copy_(share);
  } else {
    send.narrow(0, 0, n).copy_(flat);
  }
  if (p * chunk > n) send.narrow(0, n, p * chunk - n).zero_();
  at::Tensor received = scratch.Get(1, p * chunk, wire);
  std::vector<int64_t> splits(static_cast<size_t>(p), chunk);
  at::Tensor received16 = received.view(at::kHalf);
  at::Tensor send16 = send.view(at::kHalf);
  WaitFor(group.alltoall_base(received16, send16, splits, splits), what);
  at::Tensor sum = scratch.Get(2, chunk, at::kFloat);
  sum.copy_(received.narrow(0, 0, chunk));
  for (int i = 1; i < p; ++i) sum.add_(received.narrow(0, i * chunk, chunk));
  at::Tensor mine = scratch.Get(4, chunk, wire);
  mine.copy_(sum);
  std::vector<at::Tensor> parts;
  parts.reserve(static_cast<size_t>(p));
  for (int i = 0; i < p; ++i) parts.push_back(send.narrow(0, i * chunk, chunk).view(at::kHalf));
  std::vector<std::vector<at::Tensor>> outputs = {parts};
  std::vector<at::Tensor> input = {mine.view(at::kHalf)};
  WaitFor(group.allgather(outputs, input), what);  // copies into the views: into `send`
  flat.copy_(send.narrow(0, 0, n));
  if (scale != 1.0) flat.mul_(scale);
}

}  // namespace trainer::detail
