#include "runner/agent_job.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <optional>

#include "common/errors.h"
#include "common/exit_codes.h"
#include "common/job_layout.h"
#include "common/json.h"
#include "common/logging.h"
#include "common/record.h"
#include "common/seconds.h"
#include "common/version.h"
#include "runner/agent_support.h"
#include "runner/attempt_shm.h"
#include "runner/control_plane.h"
#include "runner/job_dir.h"
#include "runner/net_interface.h"
#include "runner/outcome.h"
#include "runner/process.h"
#include "runner/rendezvous.h"
#include "runner/slurm_requeue.h"
#include "runner/startup_record.h"
#include "runner/store_job.h"
#include "runner/store_server.h"
#include "runner/supervisor.h"
#include "runner/watchdog_setup.h"
#include "runner/worker_plan.h"
#include "runner/worker_runner.h"

namespace runner {

namespace layout = common::job_layout;

namespace {

// Everything one agent knows once the agents have met: its place, the job session, and (on the
// node-0 agent) the whole layout and the store.
struct Meeting {
  int me = 0;
  AgentPlace place;
  JobSession session;
  Layout layout;                       // node 0 only
  std::shared_ptr<StoreServer> store;  // node 0 only
};

// AgreeAndRecord's answer when the job goes on with another attempt.
constexpr int kRestart = -1;

// One agent's part of the job after its command line: meet, write the job's files, run attempts
// (restarts included), agree on the exit code.
class AgentJob {
 public:
  AgentJob(const AgentRequest& request, ControlPlane& control, spdlog::logger& log,
           StepClock started)
      : request_(request),
        config_(*request.config),
        launch_(request.launch),
        control_(control),
        log_(log),
        started_at_(started.wall),
        startup_(started) {}

  ~AgentJob() { write_errors_->SetReporter(nullptr); }  // it logs through this job
  AgentJob(const AgentJob&) = delete;
  AgentJob& operator=(const AgentJob&) = delete;

  int Run();

 private:
  void Meet();
  [[nodiscard]] std::vector<std::string> LeadRendezvous(const std::vector<std::string>& reports,
                                                        const JobDirNames& names);
  void WriteManifest(const std::vector<std::string>& worker_command);
  void BeginAttemptLog(int attempt);
  // `started`: the attempt's start (its record's first step, `workers`, runs from there).
  [[nodiscard]] int AgreeAndRecord(int attempt, int restarts, const AttemptOutcome& outcome,
                                   StepClock started);
  [[nodiscard]] common::JsonObject Event(const std::string& name, int attempt) const;
  // Both clocks, with node 0's store's counts (the TCP store is up before the rendezvous).
  [[nodiscard]] StepClock Now() const {
    return StepClock::Now(meeting_.store ? meeting_.store.get() : request_.store.get());
  }

  const AgentRequest& request_;
  const common::Config& config_;
  const LaunchEnvironment& launch_;
  ControlPlane& control_;
  spdlog::logger& log_;
  double started_at_;
  StartupRecord startup_;  // logged with the first attempt of this run
  Meeting meeting_;
  std::string job_name_;
  std::optional<JobDir> dir_;
  std::optional<JobLock> lock_;  // node 0 only: no second run in the same job directory
  WorkerNetwork network_;        // the interface this node's workers use, chosen after meeting
  int max_restarts_ = 0;
  // This attempt's lines that the logs could not take (a full disk), and the job's last ones.
  // Shared with the agent log's file sink, which outlives this job (the caller's logger).
  std::shared_ptr<common::LogWriteErrors> write_errors_ =
      std::make_shared<common::LogWriteErrors>();
  std::vector<common::LogWriteError> job_write_errors_;
};

common::JsonObject AgentJob::Event(const std::string& name, int attempt) const {
  return EventHeader(name, attempt, meeting_.me, launch_.hostname, meeting_.place.node);
}

// Rendezvous: every agent reports to the node-0 agent, which builds the layout, picks the job id
// and token, creates the directory, hosts the store and sends each agent its place and the
// session (runner/rendezvous.h).
void AgentJob::Meet() {
  AgentInfo mine;
  mine.agent = control_.rank();
  mine.host = launch_.hostname;
  mine.pid = static_cast<int>(getpid());
  mine.nproc = request_.plan.nproc.value;
  mine.scheduler_node =
      launch_.node_rank && launch_.scheduler != Scheduler::kLocal ? launch_.node_rank->value : -1;
  mine.devices = request_.plan.devices.value;
  mine.addresses = LocalAddresses();
  startup_.Mark("control plane", Now());
  meeting_.me = control_.rank();
  const std::string report = mine.Serialize();
  const std::vector<std::string> reports = control_.Gather(report);
  const JobDirNames names = ResolveJobDirNames(config_.GetString("job.name"),
                                               launch_.job_name.value, launch_.job_id.value);
  job_name_ = names.name;
  std::vector<std::string> welcomes;
  if (meeting_.me == 0) welcomes = LeadRendezvous(reports, names);
  const std::string welcome = control_.Scatter(welcomes);
  const Welcome parsed = Welcome::Parse(welcome);
  meeting_.place = parsed.place;
  meeting_.session = parsed.session;
  startup_.Mark("rendezvous", Now(),
                meeting_.me == 0 ? StartupRecord::Moved("gather", reports) + "; " +
                                       StartupRecord::Moved("scatter", welcomes)
                                 : "gather: sent " + std::to_string(report.size()) +
                                       " B; scatter: got " + std::to_string(welcome.size()) + " B");
  dir_.emplace(config_.GetString("job.log_root"), job_name_, meeting_.session.job_id);
  dir_->set_write_errors(write_errors_.get());
  write_errors_->SetReporter([this](const std::string& line) { log_.error("{}", line); });
}

// Node 0's part of the rendezvous: the layout from every report, the job directory's lock, the
// store, the session; returns each agent's welcome (by rank).
std::vector<std::string> AgentJob::LeadRendezvous(const std::vector<std::string>& reports,
                                                  const JobDirNames& names) {
  const std::vector<AgentInfo> agents = ParseReports(reports);
  meeting_.layout = BuildLayout(agents);
  JobSession session;
  session.job_id = names.id.empty() ? LocalJobId() : names.id;
  const JobDir dir(config_.GetString("job.log_root"), job_name_, session.job_id);
  lock_.emplace(dir.path(), launch_.hostname);  // before anything is written into it
  meeting_.store = request_.store;  // torchrun-style: on MASTER_ADDR:MASTER_PORT already
  if (!meeting_.store) {
    const std::string addr =
        ChooseStoreAddress(agents, meeting_.layout, config_.GetString("launch.store_addr"));
    meeting_.store = std::make_shared<StoreServer>(
        addr, static_cast<uint16_t>(config_.GetInt("launch.store_port")),
        [this](const std::string& line) { log_.warn("{}", line); },
        JobStoreOptions(agents, addr, config_));
  } else {
    // Open to the joining agents until now; from here on only the job's hosts.
    meeting_.store->SetAllowList(JobStoreOptions(agents, meeting_.store->address(), config_).allow);
  }
  // Said at start: a store that cannot hold every worker fails the rendezvous much later.
  for (const std::string& line :
       JobStoreCapacityWarnings(agents, *meeting_.store, launch_.hostname))
    log_.warn("{}", line);
  session.store_addr = meeting_.store->address();
  session.token = RandomHex(16);
  session.attempt = dir.NextAttempt();
  session.store_port = meeting_.store->port();
  return runner::Welcomes(meeting_.layout, session);
}

// Per-agent facts gathered at the node-0 agent, which writes job.yaml and manifest.json.
void AgentJob::WriteManifest(const std::vector<std::string>& worker_command) {
  const Layout& layout = meeting_.layout;  // node 0's
  const int me = meeting_.me;
  common::JsonObject agent_json;
  agent_json.Add("agent", me)
      .Add("host", launch_.hostname)
      .Add("node", meeting_.place.node)
      .Add("pid", static_cast<int>(getpid()))
      .Add("first_rank", meeting_.place.first_rank)
      .Add("workers", request_.plan.nproc.value)
      .Add("devices", request_.plan.devices.value)
      .AddRaw("network", common::JsonObject()
                             .Add("interface", network_.interface)
                             .Add("address", network_.address)
                             .Add("chosen", network_.chosen_by)
                             .str());
  const std::vector<std::string> agent_facts = control_.Gather(agent_json.str());
  const std::string moved = me == 0
                                ? StartupRecord::Moved("gather", agent_facts)
                                : "gather: sent " + std::to_string(agent_json.str().size()) + " B";
  if (me != 0) return startup_.Mark("job files", Now(), moved);
  dir_->WriteFile(layout::kJobConfig, config_.ToYaml(/*with_origins=*/true));
  const JobSession& s = meeting_.session;
  common::JsonObject manifest;
  manifest.Add("job_name", job_name_)
      .Add("job_id", s.job_id)
      .Add("created", common::UnixSeconds())
      .Add("runner_version", common::kProjectVersion)
      .Add("mpi_library", control_.Describe())
      .Add("scheduler", SchedulerName(launch_.scheduler))
      .Add("scheduler_reason", launch_.reason)
      .Add("world_size", layout.world_size)
      .Add("backend", request_.plan.backend.value)
      .AddRaw("store",
              common::JsonObject().Add("address", s.store_addr).Add("port", s.store_port).str())
      .AddRaw("nodes", NodesJson(layout))
      .AddRaw("agents", common::JsonArray(agent_facts))
      .Add("worker_command", worker_command)
      .AddRaw("environment", EnvironmentJson(request_.env->All()));
  dir_->WriteFile(layout::kManifest, manifest.str() + "\n");
  startup_.Mark("job files", Now(), moved);
}

void AgentJob::BeginAttemptLog(int attempt) {
  if (meeting_.me == 0) dir_->BeginAttempt(attempt);
  (void)control_.AllReduceMax(0);  // the attempt directory exists before anyone writes into it
  write_errors_->NewAttempt();     // the counts are the job's (common/log_write_errors.h)
  common::SetFileSink(
      log_, dir_->AttemptPath(attempt) + "/" + RunnerLogName(meeting_.place, launch_.hostname),
      write_errors_);
  const AgentPlace& place = meeting_.place;
  const int first = place.first_rank;
  std::string devices;
  for (const std::string& d : request_.plan.devices.value)
    devices += (devices.empty() ? "" : ",") + d;
  log_.info(
      "runner {} host={} pid={} agent={}/{} node={}/{} scheduler={} mpi=\"{}\" job={}-{} "
      "attempt={} world_size={} ranks={}..{} devices={} store={}:{}",
      common::kProjectVersion, launch_.hostname, getpid(), meeting_.me, control_.size(), place.node,
      place.node_count, SchedulerName(launch_.scheduler), control_.Describe().substr(0, 40),
      job_name_, meeting_.session.job_id, attempt, place.world_size, first,
      first + request_.plan.nproc.value - 1, devices.empty() ? "cpu" : devices,
      meeting_.session.store_addr, meeting_.session.store_port);
  for (const std::string& warning : launch_.warnings) log_.warn("{}", warning);
  log_.info("{}", TimeoutsLine(config_));
  log_.info("{}", DescribeWorkerNetwork(network_));
  common::JsonObject started = Event("attempt_started", attempt);
  started.Add("world_size", place.world_size).Add("pid", static_cast<int>(getpid()));
  if (attempt == meeting_.session.attempt) {
    log_.info("{}", startup_.Line());
    started.AddRaw("startup", startup_.Json());
  }
  dir_->AppendEvent(started);
  const std::string message = meeting_.me == 0 ? UnrecordedAttempt(*dir_, attempt) : "";
  if (message.empty()) return;
  log_.warn("{}", message);
  dir_->AppendEvent(Event("previous_attempt_unrecorded", attempt)
                        .Add("previous_attempt", attempt - 1)
                        .Add("message", message));
}

// Node 0 gathers every agent's view, writes outcome.json from them with the first failure across
// nodes, and broadcasts the job's view (outcome.h's JobView). Returns the agreed code.
int AgentJob::AgreeAndRecord(int attempt, int restarts, const AttemptOutcome& outcome,
                             StepClock started) {
  StartupRecord ending(started);  // the same steps' record for the attempt and its end
  ending.Mark("workers", Now());
  const AgentView mine{meeting_.me, launch_.hostname, meeting_.place.node, outcome,
                       write_errors_->Snapshot()};
  const std::string record = mine.Serialize();
  const std::vector<std::string> records = control_.Gather(record);
  const std::vector<AgentView> views = ParseViews(records);  // none but on node 0
  ending.Mark("outcome gather", Now(),
              meeting_.me == 0 ? StartupRecord::Moved("gather", records)
                               : "gather: sent " + std::to_string(record.size()) + " B");
  const std::string job_record =
      control_.Broadcast(meeting_.me == 0 ? JobView(views).Serialize() : "");
  const AgentView job_view = AgentView::Parse(job_record, 0);
  ending.Mark("job view", Now(), "broadcast " + std::to_string(job_record.size()) + " B");
  int agreed = job_view.outcome.code;
  job_write_errors_ = job_view.log_write_errors;
  if (agreed == common::kExitRequeued) {
    const RequeueRequest requeue{config_.GetBool("launch.requeue"), RequeueTarget(launch_),
                                 meeting_.me == 0,
                                 [&](const std::string& name) { return Event(name, attempt); }};
    const int code = RequeueSlurmJob(requeue, log_, *dir_);
    // Node 0 knows whether it worked.
    const std::string told =
        control_.Broadcast(common::RecordWriter().Add("requeue_code", code).str());
    agreed = common::RecordReader(told, "requeue result from the node-0 agent")
                 .Int32("requeue_code", common::kExitStopped, common::kExitRequeued);
  }
  const RestartDecision decision =
      DecideRestart(agreed, job_view.outcome.failure, restarts, max_restarts_);
  if (!decision.skipped.empty()) log_.warn("{}", decision.skipped);
  if (meeting_.me == 0) {
    JobOutcome job{job_name_ + "-" + meeting_.session.job_id,
                   attempt,
                   decision.restart,
                   agreed,
                   started_at_,
                   common::UnixSeconds(),
                   restarts,
                   views,
                   ReadSavedCheckpoint(dir_->path(), started.wall),
                   decision.skipped};
    if (job.checkpoint || agreed != common::kExitOk) log_.info("{}", DescribeSaved(job.checkpoint));
    WriteOutcomeFiles(*dir_, attempt, OutcomeJson(job) + "\n", log_);
    ending.Mark("outcome.json", Now());
  }
  log_.info("{}", ending.Line("attempt"));
  dir_->AppendEvent(Event("attempt_ended", attempt)
                        .Add("code", outcome.code)
                        .Add("job_code", agreed)
                        .Add("reason", outcome.reason)
                        .AddRaw("ending", ending.Json()));
  log_.info("attempt {} ended: {} (this node: {}; job: exit code {}, {})", attempt, outcome.reason,
            common::ExitCodeName(outcome.code), agreed, common::ExitCodeName(agreed));
  return decision.restart ? kRestart : agreed;
}

int AgentJob::Run() {
  CheckWorld(control_, launch_);
  std::map<std::string, std::string> worker_env = request_.env->All();
  const std::vector<NetInterface> interfaces = ListInterfaces();
  CheckInterfaceVariables(worker_env, interfaces, launch_.hostname);
  Meet();
  network_ =
      ChooseWorkerNetwork(worker_env, interfaces, meeting_.session.store_addr,
                          static_cast<uint16_t>(meeting_.session.store_port), SourceAddressTo);
  worker_env.insert(network_.env.begin(), network_.env.end());
  max_restarts_ = static_cast<int>(config_.GetInt("launch.max_restarts"));
  const std::string config_path = dir_->path() + "/" + layout::kJobConfig;
  std::vector<std::string> worker_command = request_.command;
  if (worker_command.empty()) worker_command = {TrainerPath(), "--config", config_path};
  WriteManifest(worker_command);
  const JobDir& dir = *dir_;
  SupervisorOptions supervision;
  supervision.grace_period_s = config_.GetFloat("launch.grace_period_s");
  supervision.host = launch_.hostname;
  supervision.agent = meeting_.me;
  supervision.node = meeting_.place.node;
  supervision.hang = HangOptionsFromConfig(config_);
  Supervisor supervisor(
      control_, log_, [&dir](const common::JsonObject& e) { dir.AppendEvent(e); }, SystemClock(),
      supervision);
  const int cpus = launch_.cpus_per_task ? launch_.cpus_per_task->value : request_.host.online_cpus;
  int attempt = meeting_.session.attempt;
  for (int restarts = 0;; ++restarts, ++attempt) {
    BeginAttemptLog(attempt);
    std::vector<WorkerLaunch> launches = PlanWorkerLaunches(
        {&meeting_.place, &request_.plan, &meeting_.session, attempt, max_restarts_, dir.path(),
         dir.AttemptPath(attempt), config_path, cpus, worker_command});
    const HeartbeatDir heartbeats(meeting_.session.job_id, attempt, meeting_.me,
                                  dir.AttemptPath(attempt));
    for (WorkerLaunch& launch : launches)
      launch.heartbeat_path = heartbeats.RankFile(launch.contract.rank);
    const AttemptShmSegment segment(launches);  // removed when the attempt ends, however
    supervisor.SetAttemptDir(dir.AttemptPath(attempt));
    ProcessWorkerRunner runner(SelfExecutable(), write_errors_.get(),
                               LogWriterOptionsFrom(config_));
    const StepClock attempt_started = Now();
    const AttemptOutcome outcome = supervisor.RunAttempt(attempt, launches, worker_env, runner);
    const int agreed = AgreeAndRecord(attempt, restarts, outcome, attempt_started);
    if (agreed != kRestart) {
      log_.log(job_write_errors_.empty() ? spdlog::level::info : spdlog::level::warn,
               "job {}-{} {} with exit code {} ({}); logs in {}{}", job_name_,
               meeting_.session.job_id, StatusWord(agreed), agreed, common::ExitCodeName(agreed),
               dir.path(),
               job_write_errors_.empty()
                   ? std::string()
                   : "; logs incomplete, " + common::SummarizeWriteErrors(job_write_errors_) +
                         " (outcome.json: log_write_errors)");
      meeting_.store.reset();
      return agreed;
    }
    log_.warn("restarting the workers: restart {} of {} (launch.max_restarts)", restarts + 1,
              max_restarts_);
    dir.AppendEvent(Event("restart", attempt + 1).Add("restart", restarts + 1));
  }
}

}  // namespace

int RunAgentWith(const AgentRequest& request, ControlPlane& control_plane,
                 const std::shared_ptr<spdlog::logger>& log, StepClock started) {
  AgentJob job(request, control_plane, *log, started);
  return job.Run();
}

}  // namespace runner
