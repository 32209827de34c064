// StatusJson: `runner status --json`, one object per call (README.md, "For operators", lists the
// fields).

#include <nlohmann/json.hpp>

#include "runner/job_status.h"

namespace runner {

namespace {

using Json = nlohmann::ordered_json;

template <typename T>
Json OrNull(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}

Json RankJson(const RankState& r, double now, bool live) {
  return Json{{"rank", r.rank},
              {"host", r.host},
              {"agent", r.agent},
              {"local_rank", r.local_rank >= 0 ? Json(r.local_rank) : Json(nullptr)},
              {"pid", r.pid > 0 ? Json(r.pid) : Json(nullptr)},
              {"published", r.published},
              {"step", OrNull(r.step)},
              {"where", r.where},
              {"heartbeat_age_s", OrNull(AgeNow(r.heartbeat_age_s, r, now, live))},
              {"progress_age_s", OrNull(AgeNow(r.progress_age_s, r, now, live))},
              {"proc_state", r.proc_state},
              {"cpu_s", OrNull(r.cpu_s)},
              {"output_age_s", OrNull(AgeNow(r.output_age_s, r, now, live))},
              {"status", r.status}};
}

Json ThroughputJson(const JobSnapshot& s) {
  if (!s.throughput) return nullptr;
  const Throughput& t = *s.throughput;
  return Json{{"step", t.step},
              {"samples_per_s", t.samples_per_s},
              {"step_ms", t.step_ms},
              {"data_ms", OrNull(t.data_ms)},
              {"compute_ms", OrNull(t.compute_ms)},
              {"comm_wait_ms", OrNull(t.comm_wait_ms)},
              {"optimizer_ms", OrNull(t.optimizer_ms)},
              {"loss", OrNull(t.loss)}};
}

Json DiagnosisJson(const JobSnapshot& s) {
  if (!s.diagnosis) return nullptr;
  const DiagnosisFacts& d = *s.diagnosis;
  Json laggards = Json::array();
  for (const Laggard& l : d.laggards) {
    laggards.push_back({{"rank", l.rank},
                        {"host", l.host},
                        {"pid", l.pid},
                        {"proc_state", l.proc_state},
                        {"where", l.where},
                        {"stalled_s", l.stalled_s}});
  }
  return Json{{"step", OrNull(d.step)},
              {"timeout_s", d.timeout_s},
              {"lines", d.lines},
              {"laggards", laggards},
              {"stacks", d.stacks}};
}

Json SlowestJson(const JobSummary& sum, double now, bool live) {
  if (!sum.slowest) return nullptr;
  const RankState& r = *sum.slowest;
  return Json{{"rank", r.rank},
              {"host", r.host},
              {"step", OrNull(r.step)},
              {"where", r.where},
              {"progress_age_s", OrNull(AgeNow(r.progress_age_s, r, now, live))}};
}

}  // namespace

std::string StatusJson(const JobSnapshot& s, double now) {
  const JobSummary sum = Summarize(s, now);
  const bool live = s.attempt && !s.outcome;
  Json ranks = Json::array();
  for (const RankState& r : s.ranks) ranks.push_back(RankJson(r, now, live));
  const OutcomeFacts* o = s.outcome ? &*s.outcome : nullptr;
  Json out{{"job", s.job},
           {"dir", s.dir},
           {"state", sum.state},
           {"summary", sum.headline},
           {"details", sum.details},
           {"over", sum.over},
           {"stopping", sum.stopping},
           {"attempt", OrNull(s.attempt)},
           {"attempts", s.attempts},
           {"elapsed_s", OrNull(sum.elapsed_s)},
           {"job_elapsed_s", OrNull(sum.job_elapsed_s)},
           {"exit_code", o ? Json(o->exit_code) : Json(nullptr)},
           {"exit_meaning", o ? Json(o->exit_meaning) : Json(nullptr)},
           {"result", o ? Json(o->status) : Json(nullptr)},
           {"verdict", o && !o->hang.empty() ? o->hang
                       : s.diagnosis         ? s.diagnosis->lines
                                             : std::vector<std::string>()},
           {"world_size", s.world_size},
           {"ranks", ranks},
           {"slowest", SlowestJson(sum, now, live)},
           {"throughput", ThroughputJson(s)},
           {"total_steps", OrNull(s.total_steps)},
           {"eta_s", OrNull(sum.eta_s)},
           {"checkpoint", OrNull(s.checkpoint)},
           {"checkpoint_age_s", s.checkpoint_at ? Json(now - *s.checkpoint_at) : Json(nullptr)},
           {"diagnosis", DiagnosisJson(s)},
           {"outcome", o ? Json::parse(o->raw) : Json(nullptr)},
           {"warnings", sum.warnings}};
  return out.dump() + "\n";
}

}  // namespace runner
