#include "runner/launch_env.h"

#include <dirent.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdlib>
#include <numeric>

#include "common/errors.h"
#include "common/job_end_time.h"
#include "common/parse_int.h"
#include "common/worker_contract.h"
#include "runner/hostlist.h"

namespace runner {

namespace {

using common::EnvironmentError;

// Slurm's reserved step ids (batch script, extern step, interactive step) are not srun steps.
constexpr int64_t kFirstReservedStepId = 4294967290LL;

std::string Raw(const std::string& name, const std::string& value) {
  return name + "='" + value + "'";
}

// Strict readers: a variable that is required must be set; one that is set must parse.
class EnvReader {
 public:
  EnvReader(const common::Environment& env, std::string context)
      : env_(env), context_(std::move(context)) {}

  [[nodiscard]] bool Has(const std::string& name) const { return env_.Get(name).has_value(); }
  [[nodiscard]] std::optional<std::string> Get(const std::string& name) const {
    return env_.Get(name);
  }

  [[nodiscard]] std::string RequireString(const std::string& name, const std::string& fix) const {
    std::optional<std::string> value = env_.Get(name);
    if (!value) throw EnvironmentError(name + " is not set, but " + context_ + " needs it; " + fix);
    if (value->empty())
      throw EnvironmentError(name + " is set but empty (" + context_ + "); " + fix);
    return *value;
  }

  [[nodiscard]] int64_t RequireInt(const std::string& name, int64_t min, int64_t max,
                                   const std::string& fix) const {
    return ParseInt(name, RequireString(name, fix), min, max);
  }

  [[nodiscard]] std::optional<int64_t> OptionalInt(const std::string& name, int64_t min,
                                                   int64_t max) const {
    std::optional<std::string> value = env_.Get(name);
    if (!value) return std::nullopt;
    return ParseInt(name, *value, min, max);
  }

  // The first of `names` that is set, or "".
  [[nodiscard]] std::string FirstSet(const std::vector<std::string>& names) const {
    for (const std::string& name : names) {
      if (env_.Get(name)) return name;
    }
    return "";
  }

  [[nodiscard]] static int64_t ParseInt(const std::string& name, const std::string& text,
                                        int64_t min, int64_t max) {
    std::optional<int64_t> parsed = common::ParseInt64(text);
    if (!parsed) {
      throw EnvironmentError(Raw(name, text) + " is not an integer; it is set by the scheduler, " +
                             "so check the launch command or whoever exported it");
    }
    const int64_t value = *parsed;
    if (value < min || value > max) {
      throw EnvironmentError(Raw(name, text) + " is out of range: expected " + std::to_string(min) +
                             ".." + std::to_string(max));
    }
    return value;
  }

 private:
  const common::Environment& env_;
  std::string context_;
};

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

// GPUs this node's agents may use. Under Slurm only what Slurm allocated; elsewhere what exists.
Sourced<std::vector<std::string>> DetectDevices(const EnvReader& env, bool under_slurm,
                                                const HostFacts& host) {
  if (std::optional<std::string> cvd = env.Get("CUDA_VISIBLE_DEVICES")) {
    std::vector<std::string> ids;
    // Slurm writes NoDevFiles when a GPU node has no device files; -1 hides every GPU.
    if (*cvd == "NoDevFiles" || *cvd == "-1") return {ids, "CUDA_VISIBLE_DEVICES=" + *cvd};
    size_t start = 0;
    while (!cvd->empty() && start <= cvd->size()) {
      size_t comma = cvd->find(',', start);
      std::string id =
          cvd->substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (id.empty()) {
        throw EnvironmentError(Raw("CUDA_VISIBLE_DEVICES", *cvd) + " has an empty entry at " +
                               "position " + std::to_string(ids.size() + 1) +
                               "; expected a comma list of GPU indices or UUIDs");
      }
      for (const std::string& seen : ids) {
        if (seen == id) {
          throw EnvironmentError(Raw("CUDA_VISIBLE_DEVICES", *cvd) + " lists GPU '" + id +
                                 "' twice");
        }
      }
      ids.push_back(id);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return {ids, "CUDA_VISIBLE_DEVICES"};
  }
  auto indices = [](int64_t n) {
    std::vector<std::string> ids;
    for (int64_t i = 0; i < n; ++i) ids.push_back(std::to_string(i));
    return ids;
  };
  if (std::optional<int64_t> n = env.OptionalInt("SLURM_GPUS_ON_NODE", 0, 4096)) {
    return {indices(*n), "SLURM_GPUS_ON_NODE"};
  }
  if (under_slurm)
    return {{}, "none allocated (SLURM_GPUS_ON_NODE and CUDA_VISIBLE_DEVICES unset)"};
  if (host.nvidia_device_files > 0)
    return {indices(host.nvidia_device_files), "/dev/nvidia* device files"};
  return {{}, "none found (no CUDA_VISIBLE_DEVICES, no /dev/nvidia*)"};
}

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
  if (std::optional<std::string> end = env.Get(common::kSlurmJobEndTimeVar)) {
    std::optional<int64_t> t = common::ParseJobEndTime(*end);
    // Rejected: ParseInt throws the error worded as for every other Slurm variable.
    if (!t) t = EnvReader::ParseInt(common::kSlurmJobEndTimeVar, *end, 0, INT64_MAX);
    out->job_end_time = Sourced<int64_t>{*t, common::kSlurmJobEndTimeVar};
  }
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

void DetectOpenMpi(const EnvReader& env, LaunchEnvironment* out) {
  const std::string fix =
      "mpirun sets all of OMPI_COMM_WORLD_{SIZE,RANK,LOCAL_SIZE,LOCAL_RANK}; "
      "do not set them by hand";
  const int size = static_cast<int>(env.RequireInt("OMPI_COMM_WORLD_SIZE", 1, 1 << 20, fix));
  const int rank = static_cast<int>(env.RequireInt("OMPI_COMM_WORLD_RANK", 0, size - 1, fix));
  const int local_size =
      static_cast<int>(env.RequireInt("OMPI_COMM_WORLD_LOCAL_SIZE", 1, size, fix));
  const int local_rank =
      static_cast<int>(env.RequireInt("OMPI_COMM_WORLD_LOCAL_RANK", 0, local_size - 1, fix));
  out->scheduler = Scheduler::kOpenMpi;
  out->reason = "OMPI_COMM_WORLD_SIZE is set (started by mpirun)";
  if (env.Has("SLURM_JOB_ID"))
    out->reason += " inside Slurm job " + out->job_id.value +
                   "; SLURM_PROCID/SLURM_NODEID are ignored under mpirun";
  out->agent_rank = {rank, "OMPI_COMM_WORLD_RANK"};
  out->agent_count = {size, "OMPI_COMM_WORLD_SIZE"};
  out->local_agent_rank = {local_rank, "OMPI_COMM_WORLD_LOCAL_RANK"};
  out->local_agent_count = {local_size, "OMPI_COMM_WORLD_LOCAL_SIZE"};
  if (out->job_id.value.empty()) out->job_id.source = "picked by the node-0 agent at rendezvous";
}

void DetectSlurm(const EnvReader& env, const HostFacts& host, LaunchEnvironment* out) {
  out->scheduler = Scheduler::kSlurm;
  std::optional<int64_t> step = env.OptionalInt("SLURM_STEP_ID", 0, INT64_MAX);
  const bool in_step = step && *step < kFirstReservedStepId;
  const std::string srun_fix =
      "these are set by srun; run the agent as "
      "'srun --ntasks-per-node=1 runner ...'";
  if (!in_step) {
    // Started by the batch script itself: one agent, and only on the first node.
    const std::string nodes_var = env.FirstSet({"SLURM_JOB_NUM_NODES", "SLURM_NNODES"});
    const int nnodes = static_cast<int>(env.RequireInt(
        nodes_var.empty() ? "SLURM_NNODES" : nodes_var, 1, 1 << 20, "sbatch sets it"));
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
    return;
  }
  out->reason = "SLURM_JOB_ID is set, inside srun step " + std::to_string(*step);
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
  const int node = static_cast<int>(env.RequireInt("SLURM_NODEID", 0, INT_MAX, srun_fix));
  if (node >= nnodes) {
    throw EnvironmentError("SLURM_NODEID=" + std::to_string(node) + " is out of range for " +
                           nodes_var + "=" + std::to_string(nnodes) + " (expected 0.." +
                           std::to_string(nnodes - 1) + ")");
  }
  const int procid = static_cast<int>(env.RequireInt("SLURM_PROCID", 0, INT_MAX, srun_fix));
  if (procid >= ntasks) {
    throw EnvironmentError("SLURM_PROCID=" + std::to_string(procid) + " is out of range for " +
                           tasks_var + "=" + std::to_string(ntasks) + " (expected 0.." +
                           std::to_string(ntasks - 1) + ")");
  }
  const int localid = static_cast<int>(env.RequireInt("SLURM_LOCALID", 0, INT_MAX, srun_fix));
  if (localid >= tpn[node]) {
    throw EnvironmentError("SLURM_LOCALID=" + std::to_string(localid) +
                           " is out of range: " + tpn_var + "='" + tpn_text + "' gives node " +
                           std::to_string(node) + " " + std::to_string(tpn[node]) + " task(s)");
  }
  out->agent_rank = {procid, "SLURM_PROCID"};
  out->agent_count = {ntasks, tasks_var};
  out->local_agent_rank = {localid, "SLURM_LOCALID"};
  out->local_agent_count = {tpn[node], tpn_var + "[" + std::to_string(node) + "]"};
  out->node_rank = Sourced<int>{node, "SLURM_NODEID"};
  out->node_count = Sourced<int>{nnodes, nodes_var};
  out->hosts = Sourced<std::vector<std::string>>{hosts, list_var};
  out->agents_per_node = Sourced<std::vector<int>>{tpn, tpn_var};
  if (!host.hostname.empty() && ShortName(host.hostname) != ShortName(hosts[node])) {
    out->warnings.push_back("this host is '" + host.hostname + "' but " + list_var + "[" +
                            std::to_string(node) + "] (SLURM_NODEID=" + std::to_string(node) +
                            ") is '" + hosts[node] + "'");
  }
}

void DetectTorchrun(const EnvReader& env, LaunchEnvironment* out) {
  const std::string fix =
      "torchrun-style launch needs NNODES, NODE_RANK, MASTER_ADDR and "
      "MASTER_PORT together; set all four (or none)";
  // Name the spelling the user used; the plain one when neither is set.
  const std::string nnodes_var =
      env.Has("NNODES") || !env.Has("PET_NNODES") ? "NNODES" : "PET_NNODES";
  const std::string node_var =
      env.Has("NODE_RANK") || !env.Has("PET_NODE_RANK") ? "NODE_RANK" : "PET_NODE_RANK";
  if (std::optional<std::string> text = env.Get(nnodes_var);
      text && text->find(':') != std::string::npos) {
    throw EnvironmentError(Raw(nnodes_var, *text) +
                           " is an elastic range; the runner needs a fixed " + "node count (set " +
                           nnodes_var + " to one number, like 2)");
  }
  const int nnodes = static_cast<int>(env.RequireInt(nnodes_var, 1, 1 << 20, fix));
  const int node = static_cast<int>(env.RequireInt(node_var, 0, nnodes - 1, fix));
  const std::string addr = env.RequireString("MASTER_ADDR", fix);
  const int port = static_cast<int>(env.RequireInt("MASTER_PORT", 1, 65535, fix));
  out->scheduler = Scheduler::kTorchrun;
  out->reason = nnodes_var + "/" + node_var + " are set (torchrun-style launch)";
  out->agent_rank = {node, node_var};
  out->agent_count = {nnodes, nnodes_var};
  out->local_agent_rank = {0, "torchrun-style: one agent per node"};
  out->local_agent_count = {1, "torchrun-style: one agent per node"};
  out->node_rank = Sourced<int>{node, node_var};
  out->node_count = Sourced<int>{nnodes, nnodes_var};
  out->agents_per_node =
      Sourced<std::vector<int>>{std::vector<int>(nnodes, 1), "torchrun-style: one agent per node"};
  out->master_addr = Sourced<std::string>{addr, "MASTER_ADDR"};
  out->master_port = Sourced<int>{port, "MASTER_PORT"};
  if (std::optional<std::string> run_id = env.Get("TORCHELASTIC_RUN_ID")) {
    out->job_id = {*run_id, "TORCHELASTIC_RUN_ID"};
  } else if (out->job_id.value.empty()) {
    out->job_id.source = "picked by the node-0 agent at rendezvous";
  }
}

void DetectLocal(const EnvReader& env, const HostFacts& host, LaunchEnvironment* out) {
  out->scheduler = Scheduler::kLocal;
  out->reason = "no SLURM_JOB_ID, OMPI_COMM_WORLD_SIZE, NNODES or NODE_RANK: single-node fallback";
  const std::string why = "single-node fallback";
  out->agent_rank = {0, why};
  out->agent_count = {1, why};
  out->local_agent_rank = {0, why};
  out->local_agent_count = {1, why};
  out->node_rank = Sourced<int>{0, why};
  out->node_count = Sourced<int>{1, why};
  out->hosts = Sourced<std::vector<std::string>>{{host.hostname}, "hostname"};
  out->agents_per_node = Sourced<std::vector<int>>{{1}, why};
  if (out->job_id.value.empty()) out->job_id.source = "generated locally (time and pid)";
  namespace contract = common::contract_env;
  for (const char* name : {contract::kRank, contract::kWorldSize, contract::kLocalRank}) {
    if (env.Has(name)) {
      out->warnings.push_back(std::string(name) + "=" + *env.Get(name) +
                              " is set but ignored: the runner sets the workers' " + name +
                              " itself (is it running inside another launcher's worker?)");
    }
  }
}

}  // namespace

const char* SchedulerName(Scheduler scheduler) {
  switch (scheduler) {
    case Scheduler::kOpenMpi:
      return "openmpi";
    case Scheduler::kSlurm:
      return "slurm";
    case Scheduler::kTorchrun:
      return "torchrun";
    case Scheduler::kLocal:
      return "local";
  }
  return "unknown";
}

LaunchEnvironment DetectLaunchEnvironment(const common::Environment& environment,
                                          const HostFacts& host) {
  EnvReader env(environment, "the runner's launch environment");
  LaunchEnvironment out;
  out.hostname = host.hostname;
  out.online_cpus = host.online_cpus;
  out.restart_count = {0, "unset: first attempt"};
  ReadSlurmJobFacts(env, &out);
  if (env.Has("OMPI_COMM_WORLD_SIZE") || env.Has("OMPI_COMM_WORLD_RANK")) {
    DetectOpenMpi(env, &out);
  } else if (env.Has("SLURM_JOB_ID")) {
    DetectSlurm(env, host, &out);
  } else if (!env.FirstSet({"NNODES", "NODE_RANK", "PET_NNODES", "PET_NODE_RANK"}).empty()) {
    DetectTorchrun(env, &out);
  } else {
    DetectLocal(env, host, &out);
  }
  out.devices = DetectDevices(env, env.Has("SLURM_JOB_ID"), host);
  return out;
}

HostFacts ReadHostFacts() {
  HostFacts facts;
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) == 0) facts.hostname = name;
  // A container's hostname is often not the node's name; RUNNER_HOSTNAME says what to report.
  if (const char* given = std::getenv("RUNNER_HOSTNAME"); given != nullptr && *given != '\0')
    facts.hostname = given;
  // The CPUs this process may run on (Slurm's binding), not every CPU of the machine.
  cpu_set_t set;
  CPU_ZERO(&set);
  long cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                           : sysconf(_SC_NPROCESSORS_ONLN);
  facts.online_cpus = cpus > 0 ? static_cast<int>(cpus) : 1;
  if (DIR* dir = opendir("/dev")) {
    while (dirent* entry = readdir(dir)) {
      std::string_view n(entry->d_name);
      if (n.size() > 6 && n.substr(0, 6) == "nvidia" &&
          std::all_of(n.begin() + 6, n.end(),
                      [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
        ++facts.nvidia_device_files;
      }
    }
    closedir(dir);
  }
  return facts;
}

}  // namespace runner
