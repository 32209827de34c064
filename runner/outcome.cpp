#include "runner/outcome.h"

#include <algorithm>
#include <cstring>

#include "common/exit_codes.h"
#include "common/json.h"
#include "common/record.h"

namespace runner {

namespace {

void WriteFailure(common::RecordWriter& out, const WorkerFailure& f) {
  out.Add("failure.rank", f.rank)
      .Add("failure.host", f.host)
      .Add("failure.node", f.node)
      .Add("failure.pid", f.pid)
      .Add("failure.status", f.status)
      .Add("failure.time", f.time)
      .Add("failure.log", f.log_path)
      .Add("failure.lines", static_cast<int>(f.last_lines.size()));
  if (f.exit_code) out.Add("failure.exit_code", *f.exit_code);
  if (f.signal) out.Add("failure.signal", *f.signal).Add("failure.signal_name", f.signal_name);
  for (size_t i = 0; i < f.last_lines.size(); ++i) {
    out.Add("failure.line." + std::to_string(i), f.last_lines[i]);
  }
}

WorkerFailure ReadFailure(const common::RecordReader& in) {
  WorkerFailure f;
  f.rank = in.Int32("failure.rank", 0);
  f.host = in.String("failure.host");
  f.node = in.Int32("failure.node", 0);
  f.pid = in.Int32("failure.pid", 0);
  f.status = in.String("failure.status");
  f.time = in.Double("failure.time");
  f.log_path = in.String("failure.log");
  if (in.Has("failure.exit_code")) f.exit_code = in.Int32("failure.exit_code", 0, 255);
  if (in.Has("failure.signal")) {
    f.signal = in.Int32("failure.signal", 1, 64);
    f.signal_name = in.String("failure.signal_name");
  }
  const int lines = in.Int32("failure.lines", 0, 1000);
  for (int i = 0; i < lines; ++i)
    f.last_lines.push_back(in.String("failure.line." + std::to_string(i)));
  return f;
}

void WriteLogErrors(common::RecordWriter& out, const std::vector<common::LogWriteError>& errors) {
  out.Add("log_errors", static_cast<int>(errors.size()));
  for (size_t i = 0; i < errors.size(); ++i) {
    const std::string prefix = "log_error." + std::to_string(i) + ".";
    out.Add(prefix + "file", errors[i].file)
        .Add(prefix + "rank", errors[i].rank)
        .Add(prefix + "errno", errors[i].error)
        .Add(prefix + "bytes", static_cast<int64_t>(errors[i].bytes_lost))
        .Add(prefix + "lines", static_cast<int64_t>(errors[i].lines_lost))
        .Add(prefix + "reason", errors[i].reason);
  }
}

std::vector<common::LogWriteError> ReadLogErrors(const common::RecordReader& in) {
  std::vector<common::LogWriteError> errors;
  const int count = in.Int32("log_errors", 0, 1 << 20);
  for (int i = 0; i < count; ++i) {
    const std::string prefix = "log_error." + std::to_string(i) + ".";
    errors.push_back({in.String(prefix + "file"), in.Int32(prefix + "rank", -1),
                      in.Int32(prefix + "errno", 0),
                      static_cast<uint64_t>(in.Int(prefix + "bytes", 0)),
                      static_cast<uint64_t>(in.Int(prefix + "lines", 0)),
                      in.Has(prefix + "reason") ? in.String(prefix + "reason") : ""});
  }
  return errors;
}

std::string LogWriteErrorJson(const common::LogWriteError& e, const AgentView* view) {
  common::JsonObject out;
  if (view) out.Add("agent", view->agent).Add("host", view->host);
  out.Add("file", e.file);
  if (e.rank >= 0) out.Add("rank", e.rank);
  return out.Add("errno", e.error)
      .Add("error", common::WriteErrorText(e))
      .Add("bytes_lost", static_cast<int64_t>(e.bytes_lost))
      .Add("lines_lost", static_cast<int64_t>(e.lines_lost))
      .str();
}

std::string LogWriteErrorsJson(const std::vector<common::LogWriteError>& errors,
                               const AgentView* view) {
  std::vector<std::string> items;
  for (const common::LogWriteError& e : errors) items.push_back(LogWriteErrorJson(e, view));
  return common::JsonArray(items);
}

}  // namespace

std::string AgentView::Serialize() const {
  common::RecordWriter out;
  out.Add("agent", agent)
      .Add("host", host)
      .Add("node", node)
      .Add("code", outcome.code)
      .Add("reason", outcome.reason)
      .Add("workers", static_cast<int>(outcome.workers.size()));
  for (size_t i = 0; i < outcome.workers.size(); ++i) {
    const std::string prefix = "worker." + std::to_string(i) + ".";
    out.Add(prefix + "rank", outcome.workers[i].rank)
        .Add(prefix + "pid", outcome.workers[i].pid)
        .Add(prefix + "status", outcome.workers[i].status);
  }
  if (outcome.failure) WriteFailure(out, *outcome.failure);
  out.Add("hang", static_cast<int>(outcome.hang.size()));
  for (size_t i = 0; i < outcome.hang.size(); ++i)
    out.Add("hang." + std::to_string(i), outcome.hang[i]);
  WriteLogErrors(out, log_write_errors);
  return out.str();
}

AgentView AgentView::Parse(const std::string& text, int from_agent) {
  common::RecordReader in(text, "outcome report from agent " + std::to_string(from_agent));
  AgentView view;
  view.agent = in.Int32("agent", 0);
  view.host = in.String("host");
  view.node = in.Int32("node", 0);
  view.outcome.code = in.Int32("code", 0, 255);
  view.outcome.reason = in.String("reason");
  const int workers = in.Int32("workers", 0, 1 << 20);
  for (int i = 0; i < workers; ++i) {
    const std::string prefix = "worker." + std::to_string(i) + ".";
    view.outcome.workers.push_back(
        {in.Int32(prefix + "rank", 0), in.Int32(prefix + "pid"), in.String(prefix + "status")});
  }
  if (in.Has("failure.rank")) view.outcome.failure = ReadFailure(in);
  const int hang = in.Int32("hang", 0, 1000);
  for (int i = 0; i < hang; ++i)
    view.outcome.hang.push_back(in.String("hang." + std::to_string(i)));
  view.log_write_errors = ReadLogErrors(in);
  return view;
}

std::optional<WorkerFailure> FirstFailure(const std::vector<AgentView>& views) {
  std::optional<WorkerFailure> first;
  for (const AgentView& view : views) {
    const auto& failure = view.outcome.failure;
    if (failure && (!first || failure->time < first->time)) first = failure;
  }
  return first;
}

std::vector<AgentView> ParseViews(const std::vector<std::string>& records) {
  std::vector<AgentView> views;
  for (size_t i = 0; i < records.size(); ++i)
    views.push_back(AgentView::Parse(records[i], static_cast<int>(i)));
  return views;
}

bool RetryCannotHelp(int worker_exit_code) {
  return worker_exit_code == common::kExitUsage || worker_exit_code == common::kExitConfig ||
         worker_exit_code == common::kExitEnvironment;
}

RestartDecision DecideRestart(int agreed_code, const std::optional<WorkerFailure>& root_cause,
                              int restarts_done, int max_restarts) {
  const bool failure = agreed_code == common::kExitWorkerFailed ||
                       agreed_code == common::kExitWorkerSignaled ||
                       agreed_code == common::kExitCollateral || agreed_code == common::kExitHung;
  if (!failure || restarts_done >= max_restarts) return {};
  if (root_cause && root_cause->exit_code && RetryCannotHelp(*root_cause->exit_code)) {
    const int code = *root_cause->exit_code;
    return {false, "not restarting: rank " + std::to_string(root_cause->rank) + " on " +
                       root_cause->host + " exited with code " + std::to_string(code) + " (" +
                       common::ExitCodeName(code) + "), which a restart cannot change; " +
                       std::to_string(max_restarts - restarts_done) +
                       " of launch.max_restarts=" + std::to_string(max_restarts) + " left unused"};
  }
  return {true, ""};
}

int CodeWithLogs(int agreed_code, const std::vector<AgentView>& views) {
  if (agreed_code != common::kExitOk) return agreed_code;
  for (const AgentView& view : views) {
    if (!view.log_write_errors.empty()) return common::kExitLogsIncomplete;
  }
  return agreed_code;
}

AgentView JobView(const std::vector<AgentView>& views) {
  AgentView job;
  for (const AgentView& view : views) {
    job.outcome.code = std::max(job.outcome.code, view.outcome.code);
    job.log_write_errors.insert(job.log_write_errors.end(), view.log_write_errors.begin(),
                                view.log_write_errors.end());
  }
  job.outcome.code = CodeWithLogs(job.outcome.code, views);
  job.outcome.reason = "the job's view of " + std::to_string(views.size()) + " agents";
  job.outcome.failure = FirstFailure(views);
  return job;
}

std::string StatusWord(int code) {
  switch (code) {
    case common::kExitOk:
    case common::kExitLogsIncomplete:
      return "succeeded";
    case common::kExitStopped:
      return "stopped";
    case common::kExitRequeued:
      return "requeued";
    case common::kExitHung:
      return "hung";
    default:
      return "failed";
  }
}

std::string FailureJson(const WorkerFailure& f) {
  common::JsonObject out;
  out.Add("rank", f.rank).Add("host", f.host).Add("node", f.node);
  if (f.pid > 0) out.Add("pid", f.pid);
  out.Add("status", f.status);
  if (f.exit_code) out.Add("exit_code", *f.exit_code);
  if (f.signal) out.Add("signal", *f.signal).Add("signal_name", f.signal_name);
  out.Add("time", f.time);
  if (!f.log_path.empty()) out.Add("log", f.log_path).Add("last_lines", f.last_lines);
  return out.str();
}

std::string AgentViewJson(const AgentView& view) {
  std::vector<std::string> workers;
  for (const WorkerSummary& w : view.outcome.workers) {
    workers.push_back(
        common::JsonObject().Add("rank", w.rank).Add("pid", w.pid).Add("status", w.status).str());
  }
  const auto& failure = view.outcome.failure;
  return common::JsonObject()
      .Add("agent", view.agent)
      .Add("host", view.host)
      .Add("node", view.node)
      .Add("code", view.outcome.code)
      .Add("reason", view.outcome.reason)
      .Add("failure_time", failure ? failure->time : 0.0)
      .AddRaw("failure", failure ? FailureJson(*failure) : "null")
      .AddRaw("workers", common::JsonArray(workers))
      .AddRaw("log_write_errors", LogWriteErrorsJson(view.log_write_errors, nullptr))
      .str();
}

std::string OutcomeJson(const JobOutcome& o) {
  const std::optional<WorkerFailure> first = FirstFailure(o.agents);
  std::vector<std::string> agents;
  std::vector<std::string> hang;
  std::vector<std::string> log_errors;
  for (const AgentView& view : o.agents) {
    agents.push_back(AgentViewJson(view));
    if (hang.empty()) hang = view.outcome.hang;
    for (const common::LogWriteError& e : view.log_write_errors)
      log_errors.push_back(LogWriteErrorJson(e, &view));
  }
  common::JsonObject out;
  out.Add("job", o.job)
      .Add("attempt", o.attempt)
      .Add("status", o.restarting ? std::string("restarting") : StatusWord(o.exit_code))
      .Add("exit_code", o.exit_code)
      .Add("exit_meaning", common::ExitCodeName(o.exit_code));
  if (!o.restart_skipped.empty()) out.Add("restart_skipped", o.restart_skipped);
  out.Add("saved", DescribeSaved(o.checkpoint))
      .AddRaw("checkpoint", o.checkpoint ? common::JsonObject()
                                               .Add("name", o.checkpoint->name)
                                               .Add("written_at", o.checkpoint->written_at)
                                               .Add("this_attempt", o.checkpoint->this_attempt)
                                               .str()
                                         : "null")
      .AddRaw("first_failure", first ? FailureJson(*first) : "null");
  if (!hang.empty()) out.Add("hang", hang);
  out.Add("logs_complete", log_errors.empty())
      .AddRaw("log_write_errors", common::JsonArray(log_errors));
  return out.Add("started_at", o.started_at)
      .Add("ended_at", o.ended_at)
      .Add("duration_s", o.ended_at - o.started_at)
      .Add("restarts", o.restarts)
      .AddRaw("agents", common::JsonArray(agents))
      .str();
}

}  // namespace runner
