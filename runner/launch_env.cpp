#include "runner/launch_env.h"

#include <dirent.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>

#include "common/errors.h"
#include "common/worker_contract.h"
#include "runner/launch_env_detail.h"

namespace runner {

namespace {

using common::EnvironmentError;
using launch_env_internal::DetectSlurm;
using launch_env_internal::EnvReader;
using launch_env_internal::Raw;
using launch_env_internal::ReadSlurmJobFacts;

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

LaunchEnvironment DetectLaunchEnvironment(const common::Environment& environment,
                                          const HostFacts& host, const LaunchFlags& flags) {
  if (!flags.nnodes && !flags.node_rank && !flags.master)
    return DetectLaunchEnvironment(environment, host);
  std::map<std::string, std::string> vars = environment.All();
  if (flags.nnodes) vars["NNODES"] = *flags.nnodes;
  if (flags.node_rank) vars["NODE_RANK"] = *flags.node_rank;
  if (flags.master) {
    const size_t colon = flags.master->rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == flags.master->size()) {
      throw common::UsageError("--master '" + *flags.master +
                               "' is not HOST:PORT; give node 0's address and a free port, like "
                               "--master node0.example.org:29500");
    }
    vars["MASTER_ADDR"] = flags.master->substr(0, colon);
    vars["MASTER_PORT"] = flags.master->substr(colon + 1);
  }
  // The flags say how this agent was started, even inside a Slurm allocation (srun --mpi=none
  // where the site's PMIx is broken): only mpirun's own variables contradict them.
  if (vars.count("OMPI_COMM_WORLD_SIZE") || vars.count("OMPI_COMM_WORLD_RANK")) {
    throw common::UsageError(
        "--nnodes, --node-rank and --master are for agents started by hand on each machine, but "
        "this one was started by mpirun (OMPI_COMM_WORLD_SIZE is set), which says where every "
        "agent is; drop the flags");
  }
  const common::MapEnvironment overlaid(vars);
  EnvReader env(overlaid, "the runner's launch environment");
  LaunchEnvironment out;
  out.hostname = host.hostname;
  out.online_cpus = host.online_cpus;
  out.restart_count = {0, "unset: first attempt"};
  try {
    ReadSlurmJobFacts(env, &out);
    DetectTorchrun(env, &out);
  } catch (const common::EnvironmentError& e) {
    throw common::EnvironmentError(std::string(e.what()) +
                                   " (--nnodes, --node-rank and --master set NNODES, NODE_RANK, "
                                   "MASTER_ADDR and MASTER_PORT)");
  }
  out.devices = DetectDevices(env, env.Has("SLURM_JOB_ID"), host);
  if (flags.nnodes || flags.node_rank)
    out.reason = "--nnodes/--node-rank given (torchrun-style launch)";
  if (env.Has("SLURM_JOB_ID"))
    out.reason += " inside Slurm job " + out.job_id.value + ": Slurm's own layout is not used";
  auto mark = [](auto& sourced, const std::string& flag) { sourced.source = flag; };
  if (flags.nnodes) {
    mark(out.agent_count, "--nnodes");
    mark(*out.node_count, "--nnodes");
  }
  if (flags.node_rank) {
    mark(out.agent_rank, "--node-rank");
    mark(*out.node_rank, "--node-rank");
  }
  if (flags.master) {
    mark(*out.master_addr, "--master");
    mark(*out.master_port, "--master");
  }
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
