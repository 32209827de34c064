#include "runner/agent.h"

#include <sys/stat.h>

#include <chrono>
#include <memory>

#include "common/errors.h"
#include "common/exit_codes.h"
#include "common/logging.h"
#include "runner/agent_job.h"
#include "runner/control_plane.h"
#include "runner/control_plane_store.h"
#include "runner/signals.h"
#include "runner/store_server.h"

namespace runner {

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

namespace {

// Node 0 hosts the store on MASTER_ADDR:MASTER_PORT first; then every agent meets there.
std::unique_ptr<ControlPlane> MakeTcpControlPlane(const AgentRequest& request, spdlog::logger& log,
                                                  std::shared_ptr<StoreServer>* store) {
  const LaunchEnvironment& launch = request.launch;
  StoreControlPlaneOptions options;
  options.rank = launch.agent_rank.value;
  options.size = launch.agent_count.value;
  options.host = launch.hostname;
  options.master_addr = launch.master_addr->value;
  options.master_port = launch.master_port->value;
  options.master_source = launch.master_addr->source == launch.master_port->source
                              ? launch.master_addr->source
                              : launch.master_addr->source + ":" + launch.master_port->source;
  options.rendezvous_timeout_s = request.config->GetFloat("launch.rendezvous_timeout_s");
  options.poll_s = PollInterval(options.size);
  if (options.rank == 0) {
    options.hosted = HostJobStore(
        options, [&log](const std::string& line) { log.warn("{}", line); },
        [&log](const std::string& line) { log.warn("{}", line); });
    *store = options.hosted;
  }
  log.info("meeting the other {} agent(s) at {}:{} ({}) as node rank {}", options.size - 1,
           options.master_addr, options.master_port, options.master_source, options.rank);
  return MakeStoreControlPlane(options);
}

}  // namespace

int RunAgent(const AgentRequest& request) {
  const LaunchEnvironment& launch = request.launch;
  CheckLaunchBeforeMpi(*request.env, launch);
  umask(027);  // the job directory is not world-readable
  InstallSignalHandlers();
  StopIfRequested("before the agent started");
  const StepClock started = StepClock::Now();

  auto log = common::MakeConsoleLogger("runner " + launch.hostname +
                                       " agent=" + std::to_string(launch.agent_rank.value));
  // A job of one agent needs no MPI at all: no mpirun, and no PMI under srun (a one-task
  // `srun --mpi=none` would otherwise abort inside MPI_Init). Agents started by hand on each
  // machine (torchrun-style) meet over TCP at node 0's store.
  AgentRequest with_store = request;
  std::unique_ptr<ControlPlane> control;
  if (launch.agent_count.value == 1) {
    control = MakeLocalControlPlane();
  } else if (launch.scheduler == Scheduler::kTorchrun) {
    control = MakeTcpControlPlane(request, *log, &with_store.store);
  } else {
    control = MakeMpiControlPlane();
  }
  try {
    return RunAgentWith(with_store, *control, log, started);
  } catch (const std::exception& e) {
    // The other agents would wait for this one in their next collective for ever: say why here,
    // then end them all.
    if (control->size() <= 1) throw;
    const auto* error = dynamic_cast<const common::Error*>(&e);
    const int code = error != nullptr ? error->code() : common::kExitInternal;
    log->critical(
        "{}: {}; ending every agent of the job ({}): the others cannot go on without "
        "this one",
        common::ExitCodeName(code), e.what(),
        launch.scheduler == Scheduler::kTorchrun ? "an abort through the job's store"
                                                 : "MPI_Abort");
    common::FlushFileSink(*log, 2);  // the abort skips destructors: the line above into the file
    control->Abort(code, e.what());  // does not return
    return code;
  }
}
}  // namespace runner
