#include "trainer/collectives.h"

#include <ATen/ATen.h>

#include "trainer/comm.h"

namespace trainer {

std::vector<double> SumOverRanks(Communicator& comm, common::HeartbeatWriter& heartbeat,
                                 const std::vector<double>& values, std::string_view phase) {
  std::vector<at::Tensor> sum = {
      at::tensor(at::ArrayRef<double>(values.data(), values.size()), at::kDouble)};
  heartbeat.BeginCollective(phase);
  comm.AllReduceSum(sum);
  heartbeat.EndCollective(phase);
  const at::Tensor contiguous = sum[0].contiguous();
  const double* data = contiguous.data_ptr<double>();
  return std::vector<double>(data, data + values.size());
}

}  // namespace trainer
