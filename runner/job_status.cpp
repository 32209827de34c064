#include "runner/job_status.h"

#include <algorithm>
#include <map>

#include "common/job_layout.h"
#include "runner/job_files.h"

namespace runner {

namespace {

std::string CodeText(const OutcomeFacts& o) {
  return "exit code " + std::to_string(o.exit_code) +
         (o.exit_meaning.empty() ? "" : " (" + o.exit_meaning + ")");
}

std::string AttemptText(const JobSnapshot& s) { return "attempt " + std::to_string(*s.attempt); }

void AddFailure(const OutcomeFacts& o, JobSummary& out) {
  if (!o.first_failure) {
    if (!o.reason.empty()) out.details.push_back("reason: " + o.reason);
    return;
  }
  const FailureFacts& f = *o.first_failure;
  out.details.push_back("first failure: rank " + std::to_string(f.rank) + " on " + f.host +
                        (f.pid > 0 ? " (pid " + std::to_string(f.pid) + ")" : "") + " " + f.status +
                        (f.log.empty() ? "" : "; log " + f.log));
  const size_t shown = std::min<size_t>(f.last_lines.size(), 3);
  for (size_t i = f.last_lines.size() - shown; i < f.last_lines.size(); ++i)
    out.details.push_back("  | " + f.last_lines[i]);
}

// The state and headline of a current attempt that has its outcome.
void Ended(const JobSnapshot& s, JobSummary& out) {
  const OutcomeFacts& o = *s.outcome;
  const std::string after = ", " + AttemptText(s) + ", after " + FormatDuration(o.duration_s);
  out.over = o.status != "restarting";
  out.elapsed_s = o.duration_s;
  if (!o.hang.empty() || s.diagnosis) {
    out.state = "hung";
    out.headline = "hung, " + CodeText(o) + after;
    for (const std::string& line : o.hang.empty() ? s.diagnosis->lines : o.hang)
      out.details.push_back("  " + line);
    return;
  }
  if (o.status == "restarting") {
    out.state = "restarting";
    out.headline = "restarting: " + AttemptText(s) + " failed with " + CodeText(o) + " after " +
                   FormatDuration(o.duration_s) + "; attempt " + std::to_string(*s.attempt + 1) +
                   " is starting";
  } else if (o.status == "stopped" || o.status == "requeued") {
    out.state = o.status;
    out.headline = o.status + " with " + CodeText(o) + after;
    if (o.status == "requeued")
      out.headline += "; the next attempt starts when Slurm runs the job again";
  } else {
    out.state = "ended";
    out.headline = "ended, " + (o.status.empty() ? "status unknown" : o.status) + " with " +
                   CodeText(o) + after;
  }
  AddFailure(o, out);
}

void Running(const JobSnapshot& s, double now, JobSummary& out) {
  out.stopping = std::any_of(s.progress.begin(), s.progress.end(),
                             [](const AgentProgress& p) { return p.state == "stopping"; });
  if (s.attempt_started) out.elapsed_s = now - *s.attempt_started;
  std::string when = out.elapsed_s ? ", for " + FormatDuration(*out.elapsed_s) : "";
  if (out.job_elapsed_s && s.attempt_started && *s.attempt > 0)
    when += " (job started " + FormatDuration(*out.job_elapsed_s) + " ago)";
  if (s.diagnosis) {
    out.state = "hung";
    out.headline = "hung (the agents are stopping the workers), " + AttemptText(s) + when;
    for (const std::string& line : s.diagnosis->lines) out.details.push_back("  " + line);
    return;
  }
  out.state = "running";
  out.headline = std::string("running") + (out.stopping ? " (stopping the workers)" : "") + ", " +
                 AttemptText(s) + when;
}

// Agents whose progress file is missing while others have one, or too old.
void SilentAgents(const JobSnapshot& s, double now, JobSummary& out) {
  if (s.progress.empty()) return;  // the agents write none (an older runner): nothing to judge
  std::map<int, const AgentProgress*> by_agent;
  for (const AgentProgress& p : s.progress) by_agent[p.agent] = &p;
  for (const ManifestAgent& a : s.agents) {
    if (!by_agent.count(a.agent)) {
      out.warnings.push_back("no progress file from agent " + std::to_string(a.agent) + " (" +
                             a.host + ") in " + common::job_layout::AttemptDirName(*s.attempt) +
                             "/" + common::job_layout::kProgressDir + "/: is it alive?");
    }
  }
  for (const AgentProgress& p : s.progress) {
    const double age = now - p.unix;
    if (p.state == "ended" || age <= kProgressStaleS) continue;
    const std::string who = "agent " + std::to_string(p.agent) + " (" + p.host + ")";
    if (age > kProgressDeadS) {
      out.warnings.push_back(who + " has written nothing for " + FormatDuration(age) + " and " +
                             common::job_layout::AttemptDirName(*s.attempt) + " has no " +
                             common::job_layout::kOutcome +
                             ": it appears to have died without a word (SIGKILL, the OOM killer "
                             "or a node failure?)");
    } else {
      out.warnings.push_back("no update from " + who + " for " + FormatDuration(age) +
                             ": is it alive?");
    }
  }
}

// Every agent silent for longer than kProgressDeadS and no outcome: nothing more will happen.
void Died(const JobSnapshot& s, double now, JobSummary& out) {
  if (s.progress.empty() || out.state == "hung") return;
  for (const AgentProgress& p : s.progress)
    if (p.state == "ended" || now - p.unix <= kProgressDeadS) return;
  out.state = "died";
  out.over = true;
  out.headline = "died without a record, " + AttemptText(s) + ": no agent has written for over " +
                 FormatDuration(kProgressDeadS) + " and there is no " +
                 common::job_layout::kOutcome +
                 " (SIGKILL, the OOM killer or a node failure?); a new start in this job "
                 "directory begins the next attempt";
}

void Slowest(const JobSnapshot& s, double now, bool live, JobSummary& out) {
  for (const RankState& r : s.ranks) {
    if (!r.step) continue;
    if (!out.slowest || *r.step < *out.slowest->step ||
        (*r.step == *out.slowest->step &&
         AgeNow(r.progress_age_s, r, now, live).value_or(0) >
             AgeNow(out.slowest->progress_age_s, *out.slowest, now, live).value_or(0)))
      out.slowest = r;
  }
}

}  // namespace

std::optional<double> AgeNow(const std::optional<double>& age, const RankState& r, double now,
                             bool live) {
  if (!age) return std::nullopt;
  return *age + (live && r.written > 0 ? std::max(0.0, now - r.written) : 0.0);
}

JobSummary Summarize(const JobSnapshot& s, double now) {
  JobSummary out;
  if (s.job_started) out.job_elapsed_s = now - *s.job_started;
  if (!s.attempt) {
    out.state = "starting";
    out.headline = "starting (no attempt directory yet)";
  } else if (s.outcome) {
    Ended(s, out);
  } else {
    Running(s, now, out);
    SilentAgents(s, now, out);
    Died(s, now, out);
  }
  const bool live = s.attempt && !s.outcome;
  if (s.attempt && out.state != "restarting") Slowest(s, now, live, out);
  if (live && s.total_steps && s.throughput && s.throughput->step_ms > 0) {
    const int64_t step = out.slowest ? *out.slowest->step : s.throughput->step;
    out.eta_s = static_cast<double>(std::max<int64_t>(0, *s.total_steps - step)) *
                s.throughput->step_ms / 1000;
  }
  for (const std::string& problem : s.problems) out.warnings.push_back("unreadable: " + problem);
  return out;
}

}  // namespace runner
