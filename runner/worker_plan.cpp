#include "runner/worker_plan.h"

#include <algorithm>

#include "common/job_layout.h"

namespace runner {

std::vector<WorkerLaunch> PlanWorkerLaunches(const WorkerPlanInput& in) {
  const AgentPlace& place = *in.place;
  const AgentPlan& plan = *in.plan;
  const int nproc = plan.nproc.value;
  std::vector<WorkerLaunch> launches;
  for (int i = 0; i < nproc; ++i) {
    WorkerLaunch w;
    WorkerContract& c = w.contract;
    c.rank = place.first_rank + i;
    c.local_rank = place.first_local_rank + i;
    c.world_size = place.world_size;
    c.local_world_size = place.workers_on_node;
    c.node_rank = place.node;
    c.node_count = place.node_count;
    c.master_addr = in.session->store_addr;
    c.master_port = in.session->store_port;
    c.restart_count = in.attempt;
    c.max_restarts = in.max_restarts;
    c.run_id = in.session->job_id;
    c.job_dir = in.job_dir;
    c.attempt_dir = in.attempt_dir;
    c.config_path = in.config_path;
    c.token = in.session->token;
    c.node_agent_pid = place.node_agent_pid;
    if (!plan.devices.value.empty()) c.device = plan.devices.value[static_cast<size_t>(i)];
    c.omp_threads = std::max(1, in.cpus / std::max(1, nproc));
    w.argv = in.command;
    w.log_path = in.attempt_dir + "/" + common::job_layout::RankLogName(c.rank);
    launches.push_back(std::move(w));
  }
  return launches;
}

}  // namespace runner
