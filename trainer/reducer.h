#pragma once
// Data-parallel gradient averaging, as PyTorch DDP does it:
// - parameters are grouped into buckets of about `bucket_bytes`, in reverse registration order
//   (the order backward produces their gradients);
// - a hook on each parameter's gradient accumulator marks it ready; when a bucket is complete its
//   gradients are flattened and an asynchronous all-reduce starts while backward goes on; buckets
//   start strictly in order, so every rank issues the same collectives in the same order;
// - Finish() (after backward) waits for each bucket, and only then divides by the world size and
//   copies the averages back into the gradients (never before the wait);
// - where a bucket's parameters share a dtype and are contiguous, their gradients live in the
//   bucket's flat tensor (DDP's gradient_as_bucket_view): backward accumulates into it, the
//   all-reduce and the division work on it in place, and nothing is flattened or copied back.
//   Before each all-reduce a gradient that is not its slice any more (set to none and made
//   afresh by backward, as LibTorch 2.x's zero_grad does by default) is copied back in;
// - with sync disabled (accumulation micro-steps) the hooks do nothing: gradients accumulate
//   locally and only the last micro-step communicates.
// overlap=false all-reduces every bucket after backward instead (the baseline for bench/).
// Heartbeats (common/heartbeat.h): each bucket's all-reduce is numbered when it is launched, and
// Finish() publishes "all-reduce #N (bucket k/n)" while it waits for bucket k.

#include <ATen/core/Tensor.h>

#include <chrono>
#include <memory>
#include <string_view>
#include <vector>

#include "common/heartbeat.h"
#include "trainer/comm.h"

namespace trainer {

class Reducer {
 public:
  Reducer(std::vector<at::Tensor> parameters, Communicator& comm,
          common::HeartbeatWriter& heartbeat, int64_t bucket_bytes, bool overlap);
  ~Reducer();
  Reducer(const Reducer&) = delete;
  Reducer& operator=(const Reducer&) = delete;

  // Call before backward: whether this backward's gradients are all-reduced.
  void Prepare(bool sync);
  // Call after backward on a sync step: waits and averages, then publishes `then`, the phase the
  // rank goes on in (also when there was nothing to wait for). Returns the time spent waiting.
  std::chrono::duration<double> Finish(std::string_view then);

  [[nodiscard]] size_t num_buckets() const { return buckets_.size(); }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into parameters_
    int64_t numel = 0;
    size_t ready = 0;
    at::Tensor flat;
    std::unique_ptr<Communicator::Pending> pending;
    int64_t collective = 0;  // its number in the heartbeat
    bool views = false;      // the parameters' gradients are views of `flat`
  };
  void MakeGradientsViews(Bucket& bucket);
  void KeepGradientsInBucket(Bucket& bucket);
  void MarkReady(size_t param);
  void Launch(Bucket& bucket);
  void LaunchReadyInOrder();

  std::vector<at::Tensor> parameters_;
  Communicator& comm_;
  common::HeartbeatWriter& heartbeat_;
  bool overlap_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;
  std::vector<bool> param_ready_;
  size_t next_bucket_ = 0;
  bool sync_ = false;
  std::vector<std::pair<std::shared_ptr<void>, uintptr_t>> hooks_;  // accumulator, hook key
};

}  // namespace trainer
