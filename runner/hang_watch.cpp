#include "runner/hang_watch.h"

#include <sys/stat.h>

#include <algorithm>
#include <ctime>

namespace runner {

namespace {

double MonotonicSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

class RealProbe : public WorkerProbe {
 public:
  WorkerObservation Observe(const WatchedWorker& worker) override {
    WorkerObservation seen;
    if (!worker.heartbeat_path.empty())
      seen.heartbeat = common::ReadHeartbeat(worker.heartbeat_path);
    seen.pid = seen.heartbeat && seen.heartbeat->pid > 0 ? seen.heartbeat->pid
                                                         : WorkerPidUnder(worker.pid);
    seen.proc = ReadProcSample(seen.pid);
    struct stat info {};
    if (!worker.log_path.empty() && ::stat(worker.log_path.c_str(), &info) == 0) {
      seen.output_unix = static_cast<double>(info.st_mtim.tv_sec) +
                         static_cast<double>(info.st_mtim.tv_nsec) * 1e-9;
    }
    return seen;
  }
};

// CPU used between two samples that counts as a worker without a heartbeat being alive.
constexpr double kBusyFraction = 0.2;

}  // namespace

WorkerProbe& SystemWorkerProbe() {
  static RealProbe probe;
  return probe;
}

HangWatch::HangWatch(HangOptions options, int agent, int node, std::string host)
    : options_(options), agent_(agent), node_(node), host_(std::move(host)) {}

HangWatch::Tracked* HangWatch::Find(int worker) {
  for (Tracked& t : workers_) {
    if (t.worker == worker) return &t;
  }
  return nullptr;
}

void HangWatch::Add(int worker, WatchedWorker watched, double steady_now) {
  if (started_ < 0) started_ = steady_now;
  Tracked t;
  t.worker = worker;
  t.view.rank = watched.rank;
  t.view.local_rank = watched.local_rank;
  t.view.agent = agent_;
  t.view.node = node_;
  t.view.host = host_;
  t.view.pid = watched.pid;
  t.view.status = "running";
  t.watched = std::move(watched);
  t.progress_at = steady_now;
  t.sampled_at = steady_now;
  workers_.push_back(std::move(t));
}

void HangWatch::Ended(int worker, const std::string& status, double steady_now) {
  Tracked* t = Find(worker);
  if (t == nullptr || t->view.ended) return;
  t->view.ended = true;
  t->view.status = status;
  t->progress_at = steady_now;
}

void HangWatch::Update(Tracked& t, const WorkerObservation& seen, double steady_now,
                       double unix_now) {
  RankView& v = t.view;
  if (seen.pid > 0) v.pid = seen.pid;
  bool advanced = false;
  if (seen.heartbeat) {
    const common::Heartbeat& h = *seen.heartbeat;
    advanced = !t.seen_heartbeat || h.beats != t.beats;
    t.seen_heartbeat = true;
    t.beats = h.beats;
    t.heartbeat_mono_s = static_cast<double>(h.mono_ns) * 1e-9;
    v.published = true;
    v.step = h.step;
    v.phase = h.phase;
    v.collective = h.collective;
    v.in_collective = h.in_collective;
    v.bucket = h.bucket;
    v.buckets = h.buckets;
  }
  if (seen.proc) {
    v.proc_state = seen.proc->state;
    v.wchan = seen.proc->wchan;
    v.cpu_s = seen.proc->cpu_s;
    const double interval = steady_now - t.sampled_at;
    if (!t.seen_heartbeat && t.last_cpu >= 0 && interval > 0 &&
        seen.proc->cpu_s - t.last_cpu >= kBusyFraction * interval) {
      advanced = true;
    }
    t.last_cpu = seen.proc->cpu_s;
  }
  if (seen.output_unix >= 0) {
    if (!t.seen_heartbeat && t.last_output_unix >= 0 && seen.output_unix > t.last_output_unix)
      advanced = true;
    t.last_output_unix = seen.output_unix;
    v.output_age_s = std::max(0.0, unix_now - seen.output_unix);
  }
  if (advanced) {
    t.progress_at = steady_now;
    t.cpu_at_progress = v.cpu_s;
  }
  t.sampled_at = steady_now;
}

void HangWatch::Sample(WorkerProbe& probe, double steady_now, double unix_now) {
  for (Tracked& t : workers_) {
    if (t.view.ended) continue;
    Update(t, probe.Observe(t.watched), steady_now, unix_now);
  }
}

double HangWatch::Stall(double steady_now) const {
  if (workers_.empty()) return 0;
  double latest = workers_.front().progress_at;
  for (const Tracked& t : workers_) latest = std::max(latest, t.progress_at);
  return std::max(0.0, steady_now - latest);
}

double HangWatch::Limit(double steady_now) const {
  bool any_published = false;
  int64_t max_step = 0;
  bool long_phase = false;
  bool initialising = false;
  bool any_running = false;
  for (const Tracked& t : workers_) {
    any_running = any_running || !t.view.ended;
    if (t.view.ended || !t.view.published) continue;
    any_published = true;
    max_step = std::max(max_step, t.view.step);
    long_phase = long_phase || t.view.phase == "checkpoint" || t.view.phase == "evaluation";
    initialising = initialising || t.view.phase == "init" || t.view.phase == "start";
  }
  if (!any_running) return options_.timeout_s;  // nothing here warms up or checkpoints any more
  if (initialising) return options_.init_timeout_s;
  const bool warming = any_published
                           ? max_step == 0
                           : started_ >= 0 && steady_now - started_ < options_.first_step_timeout_s;
  double limit = options_.timeout_s;
  if (warming) limit = std::max(limit, options_.first_step_timeout_s);
  if (long_phase) limit = std::max(limit, options_.checkpoint_timeout_s);
  return limit;
}

std::vector<RankView> HangWatch::Views(double steady_now) const {
  std::vector<RankView> views;
  const double mono_now = MonotonicSeconds();
  for (const Tracked& t : workers_) {
    RankView v = t.view;
    v.stalled_s = std::max(0.0, steady_now - t.progress_at);
    v.cpu_window_s = std::max(0.0, v.cpu_s - t.cpu_at_progress);
    v.heartbeat_age_s = t.heartbeat_mono_s < 0 ? -1 : std::max(0.0, mono_now - t.heartbeat_mono_s);
    views.push_back(std::move(v));
  }
  return views;
}

}  // namespace runner
