#include "runner/dry_run.h"

#include <iomanip>
#include <sstream>

#include "common/errors.h"
#include "common/job_layout.h"
#include "common/json.h"
#include "runner/agent_support.h"
#include "runner/hostlist.h"
#include "runner/net_interface.h"

namespace runner {

namespace {

std::string Join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ",") + item;
  return text;
}

std::string JoinInts(const std::vector<int>& items) {
  std::string text;
  for (int item : items) text += (text.empty() ? "" : ",") + std::to_string(item);
  return text;
}

class Table {
 public:
  explicit Table(std::ostringstream* out) : out_(out) {}
  void Row(const std::string& label, const std::string& value, const std::string& source) {
    *out_ << "  " << std::left << std::setw(14) << label << value;
    if (!source.empty()) *out_ << "   (" << source << ")";
    *out_ << "\n";
  }

 private:
  std::ostringstream* out_;
};

// The scheduler, the job's id, name and directory.
void JobRows(const LaunchEnvironment& env, const common::Config& config, Table* table) {
  table->Row("scheduler", SchedulerName(env.scheduler), env.reason);
  table->Row("job id", env.job_id.value.empty() ? "(not yet known)" : env.job_id.value,
             env.job_id.source);
  // The run's own rule (ResolveJobDirNames), so the directory shown is the one the run creates.
  const JobDirNames names =
      ResolveJobDirNames(config.GetString("job.name"), env.job_name.value, env.job_id.value);
  std::string name_source = "job.name from " + config.Origin("job.name");
  if (config.GetString("job.name").empty()) {
    name_source = env.job_name.value.empty() ? "default" : env.job_name.source;
    if (!env.job_name.value.empty() && names.name != env.job_name.value)
      name_source += " " + common::JsonQuote(env.job_name.value) + ", made safe for a directory";
  }
  table->Row("job name", names.name, name_source);
  table->Row("job directory",
             config.GetString("job.log_root") + "/" +
                 common::job_layout::JobDirName(names.name, names.id.empty() ? "<id>" : names.id) +
                 "/",
             "job.log_root from " + config.Origin("job.log_root"));
}

// Nodes and agents, and where this agent sits among them.
void LayoutRows(const LaunchEnvironment& env, Table* table) {
  if (env.hosts) {
    table->Row("nodes",
               std::to_string(env.hosts->value.size()) + ": " + CompressHostlist(env.hosts->value),
               env.hosts->source + ", " + env.node_count->source);
  } else {
    table->Row(
        "nodes",
        (env.node_count ? std::to_string(env.node_count->value) + ", hosts " : std::string()) +
            "(learnt at rendezvous)",
        env.scheduler == Scheduler::kOpenMpi ? "mpirun does not say which hosts it uses"
                                             : "torchrun-style variables name only the master");
  }
  if (env.node_rank) {
    std::string host =
        env.hosts ? env.hosts->value[static_cast<size_t>(env.node_rank->value)] : env.hostname;
    table->Row("this node", std::to_string(env.node_rank->value) + " = " + host,
               env.node_rank->source + "; hostname " + env.hostname);
  } else {
    table->Row("this node", "(learnt at rendezvous) on " + env.hostname, "hostname");
  }
  std::string agents = std::to_string(env.agent_count.value);
  if (env.agents_per_node) agents += " (per node: " + JoinInts(env.agents_per_node->value) + ")";
  table->Row(
      "agents", agents,
      env.agent_count.source + (env.agents_per_node ? ", " + env.agents_per_node->source : ""));
  table->Row("this agent",
             std::to_string(env.agent_rank.value) + ", local " +
                 std::to_string(env.local_agent_rank.value) + " of " +
                 std::to_string(env.local_agent_count.value),
             env.agent_rank.source + ", " + env.local_agent_rank.source);
}

// GPUs, workers, backend, master and the scheduler's extras.
void PlanRows(const LaunchEnvironment& env, const AgentPlan& plan, Table* table) {
  table->Row("node GPUs", env.devices.value.empty() ? "none (CPU)" : Join(env.devices.value),
             env.devices.source);
  table->Row("agent GPUs", plan.devices.value.empty() ? "none (CPU)" : Join(plan.devices.value),
             plan.devices.source);
  table->Row("workers", std::to_string(plan.nproc.value) + " on this agent", plan.nproc.source);
  table->Row("world size", std::to_string(plan.world_size),
             plan.world_assumed ? "assumes every node matches this one; the rendezvous confirms"
                                : "exact");
  table->Row("backend", plan.backend.value, plan.backend.source);
  table->Row("master",
             plan.master_host.value.empty() ? "(learnt at rendezvous)" : plan.master_host.value,
             plan.master_host.source + "; its agent hosts the c10d store");
  if (env.master_port)
    table->Row("master port", std::to_string(env.master_port->value), env.master_port->source);
  if (env.scheduler == Scheduler::kTorchrun && env.agent_count.value > 1) {
    table->Row("rendezvous",
               "TCP at " + env.master_addr->value + ":" + std::to_string(env.master_port->value) +
                   (env.agent_rank.value == 0 ? ", hosted by this agent" : ", node 0 hosts it"),
               "no MPI: node 0's store, then the agents' control plane; each machine starts its "
               "own runner");
  }
  table->Row("restart", std::to_string(env.restart_count.value), env.restart_count.source);
  if (env.cpus_per_task)
    table->Row("cpus/task", std::to_string(env.cpus_per_task->value), env.cpus_per_task->source);
  if (env.job_end_time)
    table->Row("job end time", std::to_string(env.job_end_time->value), env.job_end_time->source);
  if (env.array_job_id) {
    table->Row("array", env.array_job_id->value + "_" + env.array_task_id->value,
               env.array_job_id->source + ", " + env.array_task_id->source);
  }
}

// The workers' interface (runner/net_interface.h); chosen now when the master is known.
void NetworkRow(const LaunchEnvironment& env, const std::map<std::string, std::string>& vars,
                Table* table, std::vector<std::string>* warnings) {
  const std::vector<NetInterface> interfaces = ListInterfaces();
  try {
    CheckInterfaceVariables(vars, interfaces, env.hostname);
  } catch (const common::Error& e) {
    warnings->push_back(e.what());
    table->Row("network", "invalid (see the warning below)",
               "GLOO_SOCKET_IFNAME, NCCL_SOCKET_IFNAME");
    return;
  }
  const bool master_known = env.master_addr && env.master_port;
  if (!master_known && !vars.count("GLOO_SOCKET_IFNAME")) {
    table->Row("network", "(chosen at start)",
               "the interface on this node's route to the store; GLOO_SOCKET_IFNAME overrides");
    return;
  }
  const WorkerNetwork network = ChooseWorkerNetwork(
      vars, interfaces, master_known ? env.master_addr->value : "",
      master_known ? static_cast<uint16_t>(env.master_port->value) : 0, SourceAddressTo);
  std::string value = network.interface.empty() ? "(none found)" : network.interface;
  if (!network.address.empty()) value += " (" + network.address + ")";
  for (const auto& [name, setting] : network.env) value += " " + name + "=" + setting;
  table->Row("network", value, network.chosen_by);
}

}  // namespace

std::string FormatDryRun(const LaunchEnvironment& env, const AgentPlan& plan,
                         const common::Config& config,
                         const std::map<std::string, std::string>& vars) {
  std::ostringstream out;
  Table table(&out);
  out << "runner --dry-run: nothing is started\n";
  JobRows(env, config, &table);
  LayoutRows(env, &table);
  PlanRows(env, plan, &table);
  std::vector<std::string> warnings = env.warnings;
  NetworkRow(env, vars, &table, &warnings);
  out << "workers this agent would start:\n";
  for (const WorkerSpec& worker : plan.workers) {
    out << "  rank " << worker.global_rank << "  local_rank " << worker.local_rank
        << "  world_size " << plan.world_size << "  node_rank "
        << (env.node_rank ? std::to_string(env.node_rank->value) : "?") << "  device "
        << (worker.device.empty() ? "cpu" : "cuda:0 (CUDA_VISIBLE_DEVICES=" + worker.device + ")")
        << "\n";
  }
  for (const std::string& warning : warnings) out << "warning: " << warning << "\n";
  return out.str();
}

}  // namespace runner
