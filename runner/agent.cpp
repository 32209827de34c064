#include "runner/agent.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>

#include "common/errors.h"
#include "common/exit_codes.h"
#include "common/json.h"
#include "common/logging.h"
#include "common/version.h"
#include "runner/control_plane.h"
#include "runner/job_dir.h"
#include "runner/process.h"
#include "runner/rendezvous.h"
#include "runner/signals.h"
#include "runner/store_server.h"
#include "runner/supervisor.h"

namespace runner {

namespace {

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, raw.data(), bytes) != static_cast<ssize_t>(bytes)) {
    throw common::EnvironmentError("cannot read /dev/urandom for the job token");
  }
  close(fd);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

// A job id when the scheduler gives none: sortable local time plus randomness.
std::string LocalJobId() {
  time_t now = time(nullptr);
  tm local{};
  localtime_r(&now, &local);
  char text[32];
  strftime(text, sizeof(text), "%Y%m%d-%H%M%S", &local);
  return std::string(text) + "-" + RandomHex(2);
}

// A name safe for a directory: what is not [A-Za-z0-9._-] becomes '_'.
std::string SafeName(const std::string& name) {
  std::string out;
  for (char c : name)
    out +=
        (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
  if (out.empty() || out == "." || out == "..") out = "job";
  return out;
}

std::string TrainerPath() {
  const std::string self = SelfExecutable();
  const std::string dir = self.substr(0, self.rfind('/'));
  for (const std::string& candidate : {dir + "/trainer", dir + "/../trainer/trainer"}) {
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  throw common::EnvironmentError("the bundled trainer was not found next to the runner (" + dir +
                                 "/trainer or " + dir +
                                 "/../trainer/trainer); build it, or give "
                                 "the worker command after '--'");
}

std::string Fields(const std::map<std::string, std::string>& fields) {
  std::string text;
  for (const auto& [key, value] : fields) text += key + "=" + value + "\n";
  return text;
}

std::map<std::string, std::string> ParseFields(const std::string& text) {
  std::map<std::string, std::string> fields;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    size_t eq = line.find('=');
    if (eq != std::string::npos) fields[line.substr(0, eq)] = line.substr(eq + 1);
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return fields;
}

std::string EnvironmentJson(const std::map<std::string, std::string>& env) {
  common::JsonObject out;
  for (const auto& [name, value] : env) {
    bool wanted = false;
    for (const char* prefix :
         {"SLURM_", "NCCL_", "CUDA_", "OMPI_", "PMIX_", "TORCH", "OMP_", "MASTER_"}) {
      wanted = wanted || name.rfind(prefix, 0) == 0;
    }
    if (!wanted) continue;
    out.Add(name, LooksSecret(name) ? std::string("<redacted>") : value);
  }
  return out.str();
}

std::string StatusWord(int code) {
  switch (code) {
    case common::kExitOk:
      return "succeeded";
    case common::kExitStopped:
      return "stopped";
    case common::kExitRequeued:
      return "requeued";
    default:
      return "failed";
  }
}

// After the workers checkpointed on the preemption signal: the node-0 agent asks Slurm to requeue
// the job (array-aware) when launch.requeue allows. Every agent returns the same code: 11 when
// the job will come back, else 10 (stopped, checkpoint written).
template <typename EventFn>
int Requeue(const common::Config& config, const LaunchEnvironment& launch, int me,
            spdlog::logger& log, const JobDir& dir, EventFn event) {
  if (!config.GetBool("launch.requeue") || launch.job_id.source != "SLURM_JOB_ID") {
    log.warn("workers checkpointed after the preemption signal; not requeueing ({})",
             config.GetBool("launch.requeue") ? "not a Slurm job" : "launch.requeue is false");
    return common::kExitStopped;
  }
  std::string target = launch.job_id.value;
  if (launch.array_job_id) target = launch.array_job_id->value + "_" + launch.array_task_id->value;
  if (me != 0) return common::kExitRequeued;
  // scontrol signals this job's tasks (this agent included) as part of the requeue: the handlers
  // only set flags now, and nothing is left to stop.
  SpawnRequest request{{"scontrol", "requeue", target}, {}, ""};
  for (const auto& [name, value] : common::ProcessEnvironment().All()) request.env[name] = value;
  int status = -1;
  std::string output;
  try {
    ChildProcess child = ChildProcess::Spawn(request);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    char buffer[4096];
    while (!child.TryReap(&status)) {
      ssize_t n = child.output_fd() >= 0 ? read(child.output_fd(), buffer, sizeof(buffer)) : 0;
      if (n > 0) output.append(buffer, static_cast<size_t>(n));
      if (std::chrono::steady_clock::now() > deadline) {
        child.Signal(SIGKILL);
        output += " (timed out after 30 s)";
        break;
      }
      usleep(20000);
    }
  } catch (const common::Error& e) {
    output = e.what();
  }
  while (!output.empty() && output.back() == '\n') output.pop_back();
  if (status == 0) {
    log.warn("requeued Slurm job {} (scontrol requeue); it resumes from {}/checkpoints/latest",
             target, dir.path());
    dir.AppendEvent(event("requeue").Add("job", target));
    return common::kExitRequeued;
  }
  log.error(
      "scontrol requeue {} failed ({}): {}; the checkpoint is written, resubmit the job to resume",
      target, status < 0 ? std::string("did not finish") : DescribeWaitStatus(status), output);
  dir.AppendEvent(event("requeue_failed").Add("job", target).Add("output", output));
  return common::kExitStopped;
}

}  // namespace

bool LooksSecret(const std::string& name) {
  std::string upper;
  for (char c : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const char* word : {"TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "AUTH",
                           "COOKIE", "SESSION", "PRECONDITION"}) {
    if (upper.find(word) != std::string::npos) return true;
  }
  return false;
}

void CheckLaunchBeforeMpi(const common::Environment& env, const LaunchEnvironment& launch) {
  if (launch.scheduler != Scheduler::kSlurm || launch.agent_count.value <= 1) return;
  const std::optional<std::string> step = env.Get("SLURM_STEP_ID");
  if (!step) return;
  if (env.Get("PMIX_RANK") || env.Get("PMI_RANK") || env.Get("OMPI_COMM_WORLD_RANK")) return;
  const std::string mpi_type = env.Get("SLURM_MPI_TYPE").value_or("unset");
  throw common::EnvironmentError(
      "srun started " + std::to_string(launch.agent_count.value) + " agents (" +
      launch.agent_count.source + "=" + std::to_string(launch.agent_count.value) +
      ") without an MPI plugin (SLURM_MPI_TYPE=" + mpi_type +
      ", no PMIX_RANK or PMI_RANK), so "
      "they cannot meet: OpenMPI would abort in MPI_Init or give each agent a world of one. "
      "Fix: srun --mpi=pmix runner ... (or MpiDefault=pmix in slurm.conf), or start the agents "
      "with mpirun");
}

int RunAgentWith(const AgentRequest& request, ControlPlane& control_plane,
                 const std::shared_ptr<spdlog::logger>& log, double started_at);

int RunAgent(const AgentRequest& request) {
  const LaunchEnvironment& launch = request.launch;
  CheckLaunchBeforeMpi(*request.env, launch);
  umask(027);  // the job directory is not world-readable
  InstallSignalHandlers();
  const double started_at = UnixNow();

  auto log = common::MakeConsoleLogger("runner " + launch.hostname +
                                       " agent=" + std::to_string(launch.agent_rank.value));
  // A job of one agent needs no MPI at all: no mpirun, and no PMI under srun (a one-task
  // `srun --mpi=none` would otherwise abort inside MPI_Init).
  std::unique_ptr<ControlPlane> control =
      launch.agent_count.value == 1 ? MakeLocalControlPlane() : MakeMpiControlPlane();
  try {
    return RunAgentWith(request, *control, log, started_at);
  } catch (const std::exception& e) {
    // The other agents would wait for this one in their next collective for ever: say why here,
    // then end them all.
    if (control->size() <= 1) throw;
    const auto* error = dynamic_cast<const common::Error*>(&e);
    const int code = error != nullptr ? error->code() : common::kExitInternal;
    log->critical(
        "{}: {}; ending every agent of the job (MPI_Abort): the others cannot go on without this "
        "one",
        common::ExitCodeName(code), e.what());
    control->Abort(code);  // does not return
    return code;
  }
}

int RunAgentWith(const AgentRequest& request, ControlPlane& control_plane,
                 const std::shared_ptr<spdlog::logger>& log, double started_at) {
  const common::Config& config = *request.config;
  const LaunchEnvironment& launch = request.launch;
  const AgentPlan& plan = request.plan;
  ControlPlane* control = &control_plane;
  if (control->size() != launch.agent_count.value) {
    throw common::EnvironmentError(
        "the scheduler says there are " + std::to_string(launch.agent_count.value) + " agents (" +
        launch.agent_count.source + "=" + std::to_string(launch.agent_count.value) +
        ") but MPI's world has " + std::to_string(control->size()) +
        (control->size() == 1
             ? ": each agent started alone. Under Slurm this is srun without "
               "PMI; fix: srun --mpi=pmix runner ..., or start the agents with mpirun"
             : "; were the agents started by two different launchers?"));
  }
  if (launch.scheduler != Scheduler::kLocal && control->rank() != launch.agent_rank.value) {
    throw common::EnvironmentError("MPI rank " + std::to_string(control->rank()) + " but " +
                                   launch.agent_rank.source + "=" +
                                   std::to_string(launch.agent_rank.value) +
                                   "; the agents' identities disagree (mixed launchers?)");
  }

  // Rendezvous: every agent reports; everyone computes the same layout.
  AgentInfo mine;
  mine.agent = control->rank();
  mine.host = launch.hostname;
  mine.pid = static_cast<int>(getpid());
  mine.nproc = plan.nproc.value;
  mine.scheduler_node =
      launch.node_rank && launch.scheduler != Scheduler::kLocal ? launch.node_rank->value : -1;
  mine.devices = plan.devices.value;
  mine.addresses = LocalAddresses();
  std::vector<AgentInfo> agents;
  for (const std::string& text : control->AllGather(mine.Serialize()))
    agents.push_back(AgentInfo::Parse(text));
  const Layout layout = BuildLayout(agents);
  const int me = control->rank();
  const int node = layout.node_of_agent[static_cast<size_t>(me)];

  // The node-0 agent picks the job id and token, creates the directory, hosts the store.
  std::unique_ptr<StoreServer> store;
  std::string job_name = config.GetString("job.name");
  if (job_name.empty())
    job_name = SafeName(launch.job_name.value.empty() ? "job" : launch.job_name.value);
  std::map<std::string, std::string> shared;
  if (me == 0) {
    const std::string id =
        launch.job_id.value.empty() ? LocalJobId() : SafeName(launch.job_id.value);
    JobDir dir(config.GetString("job.log_root"), job_name, id);
    const std::string address =
        ChooseStoreAddress(agents, layout, config.GetString("launch.store_addr"));
    store = std::make_unique<StoreServer>(
        address, static_cast<uint16_t>(config.GetInt("launch.store_port")),
        [&log](const std::string& line) { log->warn("{}", line); });
    shared = {{"job_id", id},
              {"token", RandomHex(16)},
              {"attempt", std::to_string(dir.NextAttempt())},
              {"store_addr", address},
              {"store_port", std::to_string(store->port())}};
  }
  shared = ParseFields(control->Broadcast(Fields(shared)));
  const std::string job_id = shared["job_id"];
  const JobDir dir(config.GetString("job.log_root"), job_name, job_id);
  int attempt = std::stoi(shared["attempt"]);
  const int max_restarts = static_cast<int>(config.GetInt("launch.max_restarts"));
  const std::string config_path = dir.path() + "/job.yaml";
  int agents_here = 0;
  for (int n : layout.node_of_agent) agents_here += n == node ? 1 : 0;
  const std::string runner_log_name =
      "runner-" + launch.hostname +
      (agents_here > 1 ? "-" + std::to_string(layout.local_index_of_agent[static_cast<size_t>(me)])
                       : "") +
      ".log";
  std::vector<std::string> worker_command = request.command;
  if (worker_command.empty()) worker_command = {TrainerPath(), "--config", config_path};

  auto event = [&](const std::string& name) {
    common::JsonObject e;
    e.Add("time", common::Timestamp())
        .Add("event", name)
        .Add("attempt", attempt)
        .Add("agent", me)
        .Add("host", launch.hostname)
        .Add("node", node);
    return e;
  };

  // Per-agent facts for the manifest, gathered at the node-0 agent.
  common::JsonObject agent_json;
  agent_json.Add("agent", me)
      .Add("host", launch.hostname)
      .Add("node", node)
      .Add("pid", mine.pid)
      .Add("first_rank", layout.first_rank_of_agent[static_cast<size_t>(me)])
      .Add("workers", plan.nproc.value)
      .Add("devices", plan.devices.value);
  const std::vector<std::string> agent_facts = control->Gather(agent_json.str());
  if (me == 0) {
    dir.WriteFile("job.yaml", config.ToYaml(/*with_origins=*/true));
    std::vector<std::string> nodes;
    for (size_t n = 0; n < layout.hosts.size(); ++n) {
      common::JsonObject item;
      item.Add("node", static_cast<int>(n))
          .Add("host", layout.hosts[n])
          .Add("workers", layout.workers_on_node[n]);
      nodes.push_back(item.str());
    }
    common::JsonObject manifest;
    manifest.Add("job_name", job_name)
        .Add("job_id", job_id)
        .Add("created", UnixNow())
        .Add("runner_version", common::kProjectVersion)
        .Add("mpi_library", control->Describe())
        .Add("scheduler", SchedulerName(launch.scheduler))
        .Add("scheduler_reason", launch.reason)
        .Add("world_size", layout.world_size)
        .Add("backend", plan.backend.value)
        .AddRaw("store", common::JsonObject()
                             .Add("address", shared["store_addr"])
                             .Add("port", std::stoi(shared["store_port"]))
                             .str())
        .AddRaw("nodes", common::JsonArray(nodes))
        .AddRaw("agents", common::JsonArray(agent_facts))
        .Add("worker_command", worker_command)
        .AddRaw("environment", EnvironmentJson(request.env->All()));
    dir.WriteFile("manifest.json", manifest.str() + "\n");
  }

  Supervisor supervisor(
      *control, *log, dir,
      {config.GetFloat("launch.grace_period_s"), SelfExecutable(), launch.hostname, me, node});
  int restarts = 0;
  int agreed = common::kExitOk;
  while (true) {
    if (me == 0) dir.BeginAttempt(attempt);
    control->AllReduceMax(0);  // the attempt directory exists before anyone writes into it
    common::SetFileSink(*log, dir.AttemptPath(attempt) + "/" + runner_log_name);
    log->info("runner {} host={} pid={} agent={}/{} node={}/{} scheduler={} mpi=\"{}\" job={}-{} "
              "attempt={} world_size={} ranks={}..{} devices={} store={}:{}",
              common::kProjectVersion, launch.hostname, mine.pid, me, control->size(), node,
              layout.hosts.size(), SchedulerName(launch.scheduler), control->Describe().substr(0, 40),
              job_name, job_id, attempt, layout.world_size, layout.first_rank_of_agent[static_cast<size_t>(me)],
              layout.first_rank_of_agent[static_cast<size_t>(me)] + plan.nproc.value - 1,
              plan.devices.value.empty() ? "cpu" : [&] { std::string d; for (auto& x : plan.devices.value) d += (d.empty() ? "" : ",") + x; return d; }(),
              shared["store_addr"], shared["store_port"]);
    for (const std::string& warning : launch.warnings) log->warn("{}", warning);
    dir.AppendEvent(
        event("attempt_started").Add("world_size", layout.world_size).Add("pid", mine.pid));

    std::vector<WorkerLaunch> launches;
    const int first = layout.first_rank_of_agent[static_cast<size_t>(me)];
    const int first_local = layout.first_local_rank_of_agent[static_cast<size_t>(me)];
    const int local_world = layout.workers_on_node[static_cast<size_t>(node)];
    const int cpus = launch.cpus_per_task ? launch.cpus_per_task->value : request.host.online_cpus;
    for (int i = 0; i < plan.nproc.value; ++i) {
      WorkerLaunch w;
      WorkerContract& c = w.contract;
      c.rank = first + i;
      c.local_rank = first_local + i;
      c.world_size = layout.world_size;
      c.local_world_size = local_world;
      c.node_rank = node;
      c.node_count = static_cast<int>(layout.hosts.size());
      c.master_addr = shared["store_addr"];
      c.master_port = std::stoi(shared["store_port"]);
      c.restart_count = attempt;
      c.max_restarts = max_restarts;
      c.run_id = job_id;
      c.job_dir = dir.path();
      c.attempt_dir = dir.AttemptPath(attempt);
      c.config_path = config_path;
      c.token = shared["token"];
      if (!plan.devices.value.empty()) c.device = plan.devices.value[static_cast<size_t>(i)];
      c.omp_threads = std::max(1, cpus / std::max(1, plan.nproc.value));
      w.argv = worker_command;
      w.log_path = dir.AttemptPath(attempt) + "/rank-" + std::to_string(c.rank) + ".log";
      launches.push_back(std::move(w));
    }
    AttemptOutcome outcome = supervisor.RunAttempt(attempt, launches, request.env->All());
    agreed = control->AllReduceMax(outcome.code);

    // The node-0 agent writes how the attempt ended, with the first failure across all nodes.
    common::JsonObject summary;
    summary.Add("agent", me)
        .Add("host", launch.hostname)
        .Add("node", node)
        .Add("code", outcome.code)
        .Add("reason", outcome.reason)
        .Add("failure_time", outcome.failure_time)
        .AddRaw("failure", outcome.failure_json.value_or("null"))
        .AddRaw("workers", outcome.workers_json);
    const std::vector<std::string> summaries = control->Gather(summary.str());
    const std::vector<std::string> failures = control->Gather(outcome.failure_json.value_or(""));
    const std::vector<std::string> failure_times =
        control->Gather(std::to_string(outcome.failure_time));
    if (agreed == common::kExitRequeued) {
      const int mine_code = Requeue(config, launch, me, *log, dir, event);
      agreed = std::stoi(
          control->Broadcast(std::to_string(mine_code)));  // node 0 knows whether it worked
    }
    const bool restart =
        (agreed == common::kExitWorkerFailed || agreed == common::kExitWorkerSignaled ||
         agreed == common::kExitCollateral) &&
        restarts < max_restarts;
    if (me == 0) {
      std::string first_failure = "null";
      double first_time = 0;
      for (size_t i = 0; i < failures.size(); ++i) {
        if (failures[i].empty()) continue;
        double t = std::stod(failure_times[i]);
        if (first_failure == "null" || t < first_time) {
          first_failure = failures[i];
          first_time = t;
        }
      }
      common::JsonObject result;
      result.Add("job", job_name + "-" + job_id)
          .Add("attempt", attempt)
          .Add("status", restart ? std::string("restarting") : StatusWord(agreed))
          .Add("exit_code", agreed)
          .Add("exit_meaning", common::ExitCodeName(agreed))
          .AddRaw("first_failure", first_failure)
          .Add("started_at", started_at)
          .Add("ended_at", UnixNow())
          .Add("duration_s", UnixNow() - started_at)
          .Add("restarts", restarts)
          .AddRaw("agents", common::JsonArray(summaries));
      // A full or failing disk must not lose how the job ended: say it on the console instead.
      try {
        dir.WriteFile("attempt-" + std::to_string(attempt) + "/outcome.json", result.str() + "\n");
        dir.WriteFile("outcome.json", result.str() + "\n");
      } catch (const common::Error& e) {
        log->error("{}; the outcome is: {}", e.what(), result.str());
      }
    }
    dir.AppendEvent(event("attempt_ended")
                        .Add("code", outcome.code)
                        .Add("job_code", agreed)
                        .Add("reason", outcome.reason));
    log->info("attempt {} ended: {} (this node: {}; job: exit code {}, {})", attempt,
              outcome.reason, common::ExitCodeName(outcome.code), agreed,
              common::ExitCodeName(agreed));
    if (!restart) break;
    ++restarts;
    ++attempt;
    log->warn("restarting the workers: restart {} of {} (launch.max_restarts)", restarts,
              max_restarts);
    dir.AppendEvent(event("restart").Add("restart", restarts));
  }
  log->info("job {}-{} {} with exit code {} ({}); logs in {}", job_name, job_id, StatusWord(agreed),
            agreed, common::ExitCodeName(agreed), dir.path());
  store.reset();
  return agreed;
}

}  // namespace runner
