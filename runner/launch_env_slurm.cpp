#include <climits>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "common/errors.h"
#include "common/job_end_time.h"
#include "runner/hostlist.h"
#include "runner/launch_env_detail.h"

// Slurm detection: srun steps and the batch script, and the job-level facts of SLURM_*.
namespace runner::launch_env_internal {
namespace {

using common::EnvironmentError;

// Slurm's reserved step ids (batch script, extern step, interactive step) are not srun steps.
constexpr int64_t kFirstReservedStepId = 4294967290LL;

std::vector<std::string> ExpandNodelist(const std::string& name, const std::string& text) {
  try {
    return ExpandHostlist(text);
  } catch (const common::ParseError& e) {
    throw EnvironmentError(Raw(name, text) + " is not a valid Slurm hostlist: " + e.what());
  }
}

std::vector<int> ExpandTasksPerNode(const std::string& name, const std::string& text) {
  try {
    return ParseTasksPerNode(text);
  } catch (const common::ParseError& e) {
    throw EnvironmentError(Raw(name, text) + " is not a valid tasks-per-node list: " + e.what());
  }
}

std::string ShortName(const std::string& host) { return host.substr(0, host.find('.')); }

// Started by the batch script itself: one agent, and only on the first node.
void DetectSlurmBatch(const EnvReader& env, LaunchEnvironment* out) {
  const std::string nodes_var = env.FirstSet({"SLURM_JOB_NUM_NODES", "SLURM_NNODES"});
  const int nnodes = static_cast<int>(
      env.RequireInt(nodes_var.empty() ? "SLURM_NNODES" : nodes_var, 1, 1 << 20, "sbatch sets it"));
  if (nnodes > 1) {
    throw EnvironmentError("runner was started directly by the batch script of Slurm job " +
                           out->job_id.value + ", which has " + std::to_string(nnodes) +
                           " nodes (" + nodes_var + "=" + std::to_string(nnodes) +
                           "), so only the first node would work; start one agent per node "
                           "with 'srun --ntasks-per-node=1 runner ...' (or mpirun)");
  }
  const std::string list_var = env.FirstSet({"SLURM_JOB_NODELIST", "SLURM_NODELIST"});
  const std::string list_name = list_var.empty() ? "SLURM_JOB_NODELIST" : list_var;
  std::vector<std::string> hosts =
      ExpandNodelist(list_name, env.RequireString(list_name, "sbatch sets it"));
  if (hosts.size() != 1) {
    throw EnvironmentError(Raw(list_name, *env.Get(list_name)) + " names " +
                           std::to_string(hosts.size()) + " hosts but " + nodes_var + "=1");
  }
  out->reason = "SLURM_JOB_ID is set, no srun step (started by the batch script)";
  out->agent_rank = {0, "batch script: the only agent"};
  out->agent_count = {1, "batch script: the only agent"};
  out->local_agent_rank = {0, "batch script: the only agent"};
  out->local_agent_count = {1, "batch script: the only agent"};
  out->node_rank = Sourced<int>{0, "batch script: the first node"};
  out->node_count = Sourced<int>{1, nodes_var};
  out->hosts = Sourced<std::vector<std::string>>{hosts, list_name};
  out->agents_per_node = Sourced<std::vector<int>>{{1}, "batch script: the only agent"};
}

// What a step tells about its nodes and tasks, checked against each other.
struct StepLayout {
  std::string nodes_var;  // the variable each value came from (the step's, else the job's)
  std::string tasks_var;
  std::string list_var;
  std::string tpn_var;
  std::string tpn_text;
  int nnodes = 0;
  int ntasks = 0;
  std::vector<std::string> hosts;
  std::vector<int> tpn;
};

StepLayout ReadStepLayout(const EnvReader& env, const std::string& srun_fix) {
  auto pick = [&env](const std::string& step_var, const std::string& job_var) {
    return env.Has(step_var) ? step_var : job_var;
  };
  const std::string nodes_var = pick("SLURM_STEP_NUM_NODES", "SLURM_NNODES");
  const std::string tasks_var = pick("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS");
  const std::string list_var = pick("SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST");
  const std::string tpn_var = pick("SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE");

  const int nnodes = static_cast<int>(env.RequireInt(nodes_var, 1, 1 << 20, srun_fix));
  const int ntasks = static_cast<int>(env.RequireInt(tasks_var, 1, 1 << 24, srun_fix));
  const std::string list_text = env.RequireString(list_var, srun_fix);
  const std::string tpn_text = env.RequireString(tpn_var, srun_fix);
  std::vector<std::string> hosts = ExpandNodelist(list_var, list_text);
  std::vector<int> tpn = ExpandTasksPerNode(tpn_var, tpn_text);
  if (static_cast<int>(hosts.size()) != nnodes) {
    throw EnvironmentError(Raw(list_var, list_text) + " names " + std::to_string(hosts.size()) +
                           " hosts but " + nodes_var + "=" + std::to_string(nnodes) +
                           "; the two must agree (was one of them exported from another job?)");
  }
  if (static_cast<int>(tpn.size()) != nnodes) {
    throw EnvironmentError(Raw(tpn_var, tpn_text) + " lists " + std::to_string(tpn.size()) +
                           " nodes but " + nodes_var + "=" + std::to_string(nnodes));
  }
  const int64_t sum = std::accumulate(tpn.begin(), tpn.end(), int64_t{0});
  if (sum != ntasks) {
    throw EnvironmentError(Raw(tpn_var, tpn_text) + " adds up to " + std::to_string(sum) +
                           " tasks but " + tasks_var + "=" + std::to_string(ntasks));
  }
  return {nodes_var, tasks_var, list_var, tpn_var, tpn_text, nnodes, ntasks, hosts, tpn};
}

// Inside an srun step: this agent's identity from SLURM_NODEID/PROCID/LOCALID.
void DetectSlurmStep(const EnvReader& env, const HostFacts& host, const std::string& srun_fix,
                     LaunchEnvironment* out) {
  const StepLayout l = ReadStepLayout(env, srun_fix);
  const int node = static_cast<int>(env.RequireInt("SLURM_NODEID", 0, INT_MAX, srun_fix));
  if (node >= l.nnodes) {
    throw EnvironmentError("SLURM_NODEID=" + std::to_string(node) + " is out of range for " +
                           l.nodes_var + "=" + std::to_string(l.nnodes) + " (expected 0.." +
                           std::to_string(l.nnodes - 1) + ")");
  }
  const int procid = static_cast<int>(env.RequireInt("SLURM_PROCID", 0, INT_MAX, srun_fix));
  if (procid >= l.ntasks) {
    throw EnvironmentError("SLURM_PROCID=" + std::to_string(procid) + " is out of range for " +
                           l.tasks_var + "=" + std::to_string(l.ntasks) + " (expected 0.." +
                           std::to_string(l.ntasks - 1) + ")");
  }
  const int localid = static_cast<int>(env.RequireInt("SLURM_LOCALID", 0, INT_MAX, srun_fix));
  if (localid >= l.tpn[node]) {
    throw EnvironmentError("SLURM_LOCALID=" + std::to_string(localid) +
                           " is out of range: " + l.tpn_var + "='" + l.tpn_text + "' gives node " +
                           std::to_string(node) + " " + std::to_string(l.tpn[node]) + " task(s)");
  }
  out->agent_rank = {procid, "SLURM_PROCID"};
  out->agent_count = {l.ntasks, l.tasks_var};
  out->local_agent_rank = {localid, "SLURM_LOCALID"};
  out->local_agent_count = {l.tpn[node], l.tpn_var + "[" + std::to_string(node) + "]"};
  out->node_rank = Sourced<int>{node, "SLURM_NODEID"};
  out->node_count = Sourced<int>{l.nnodes, l.nodes_var};
  out->hosts = Sourced<std::vector<std::string>>{l.hosts, l.list_var};
  out->agents_per_node = Sourced<std::vector<int>>{l.tpn, l.tpn_var};
  if (!host.hostname.empty() && ShortName(host.hostname) != ShortName(l.hosts[node])) {
    out->warnings.push_back("this host is '" + host.hostname + "' but " + l.list_var + "[" +
                            std::to_string(node) + "] (SLURM_NODEID=" + std::to_string(node) +
                            ") is '" + l.hosts[node] + "'");
  }
}

}  // namespace

// Job-level Slurm facts that hold whoever started the agent (srun, mpirun or the batch script).
void ReadSlurmJobFacts(const EnvReader& env, LaunchEnvironment* out) {
  if (!env.Has("SLURM_JOB_ID")) return;
  const std::string id = env.RequireString("SLURM_JOB_ID", "");
  (void)EnvReader::ParseInt("SLURM_JOB_ID", id, 1, INT64_MAX);
  out->job_id = {id, "SLURM_JOB_ID"};
  if (std::optional<std::string> name = env.Get("SLURM_JOB_NAME"))
    out->job_name = {*name, "SLURM_JOB_NAME"};
  if (auto n = env.OptionalInt("SLURM_RESTART_COUNT", 0, INT_MAX)) {
    out->restart_count = {static_cast<int>(*n), "SLURM_RESTART_COUNT"};
  }
  if (auto t = env.OptionalInt(common::kSlurmJobEndTimeVar, 0, INT64_MAX))
    out->job_end_time = Sourced<int64_t>{*t, common::kSlurmJobEndTimeVar};
  if (auto a = env.OptionalInt("SLURM_ARRAY_JOB_ID", 1, INT64_MAX)) {
    out->array_job_id = Sourced<std::string>{std::to_string(*a), "SLURM_ARRAY_JOB_ID"};
    out->array_task_id = Sourced<std::string>{
        std::to_string(env.RequireInt("SLURM_ARRAY_TASK_ID", 0, INT64_MAX,
                                      "Slurm sets it with SLURM_ARRAY_JOB_ID")),
        "SLURM_ARRAY_TASK_ID"};
  }
  if (auto c = env.OptionalInt("SLURM_CPUS_PER_TASK", 1, 1 << 20)) {
    out->cpus_per_task = Sourced<int>{static_cast<int>(*c), "SLURM_CPUS_PER_TASK"};
  }
}

void DetectSlurm(const EnvReader& env, const HostFacts& host, LaunchEnvironment* out) {
  out->scheduler = Scheduler::kSlurm;
  std::optional<int64_t> step = env.OptionalInt("SLURM_STEP_ID", 0, INT64_MAX);
  const bool in_step = step && *step < kFirstReservedStepId;
  const std::string srun_fix =
      "these are set by srun; run the agent as "
      "'srun --ntasks-per-node=1 runner ...'";
  if (!in_step) {
    DetectSlurmBatch(env, out);
    return;
  }
  out->reason = "SLURM_JOB_ID is set, inside srun step " + std::to_string(*step);
  DetectSlurmStep(env, host, srun_fix, out);
}

}  // namespace runner::launch_env_internal
