// StatusText: what `runner status` prints for people (README.md, "For operators").

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "common/job_layout.h"
#include "runner/job_files.h"
#include "runner/job_status.h"

namespace runner {

namespace {

std::string Fixed(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", digits, value);
  return text;
}

std::string Seconds(const std::optional<double>& s) {
  if (!s) return "-";
  return *s < 60 ? Fixed(*s, 1) + " s" : FormatDuration(*s);
}

std::string Where(const RankState& r) {
  if (r.published) return r.where.empty() ? "-" : r.where;
  if (r.proc_state.empty()) return "-";
  // wchan "0": running, or not waiting in the kernel.
  const bool waiting = !r.wchan.empty() && r.wchan != "0";
  return "no heartbeat; state " + r.proc_state + (waiting ? " (" + r.wchan + ")" : "");
}

using Row = std::vector<std::string>;

void PrintTable(std::ostream& out, const std::vector<Row>& rows) {
  std::vector<size_t> widths;
  for (const Row& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  for (const Row& row : rows) {
    std::string line = " ";
    for (size_t c = 0; c < row.size(); ++c) {
      line += " " + row[c];
      if (c + 1 < row.size()) line += std::string(widths[c] - row[c].size(), ' ');
    }
    out << line << "\n";
  }
}

void PrintRanks(std::ostream& out, const JobSnapshot& s, double now, bool live) {
  if (s.ranks.empty()) return;
  const int nodes = std::max<int>(s.nodes, 1);
  out << "ranks: " << s.ranks.size() << " on " << nodes << (nodes == 1 ? " node" : " nodes")
      << "\n";
  // Without progress files (agents that write none) only the events tell: no empty columns.
  const bool progress =
      std::any_of(s.ranks.begin(), s.ranks.end(), [](const RankState& r) { return r.written > 0; });
  std::vector<Row> rows = {progress
                               ? Row{"rank", "host", "pid", "step", "where", "heartbeat", "status"}
                               : Row{"rank", "host", "pid", "status"}};
  for (const RankState& r : s.ranks) {
    const std::string status = r.status.empty() ? "-" : r.status;
    Row row{std::to_string(r.rank), r.host.empty() ? "?" : r.host,
            r.pid > 0 ? std::to_string(r.pid) : "-"};
    if (progress) {
      row.insert(row.end(),
                 {r.step ? std::to_string(*r.step) : "-", Where(r),
                  live && r.published ? Seconds(AgeNow(r.heartbeat_age_s, r, now, live)) : "-"});
    }
    row.push_back(status);
    rows.push_back(std::move(row));
  }
  PrintTable(out, rows);
}

void PrintTraining(std::ostream& out, const JobSnapshot& s, const JobSummary& sum, double now,
                   bool live) {
  if (sum.slowest && live) {
    const RankState& r = *sum.slowest;
    out << "slowest: rank " << r.rank << " (" << r.host << ") at step " << *r.step;
    if (r.progress_age_s)
      out << ", no progress for " << Seconds(AgeNow(r.progress_age_s, r, now, live));
    if (!r.where.empty()) out << ", in " << r.where;
    out << "\n";
  }
  if (const auto& t = s.throughput) {
    out << "throughput: " << Fixed(t->samples_per_s, 0) << " samples/s, " << Fixed(t->step_ms, 1)
        << " ms/step";
    if (t->data_ms && t->compute_ms && t->comm_wait_ms && t->optimizer_ms) {
      out << " (data " << Fixed(*t->data_ms, 1) << ", fwd+bwd " << Fixed(*t->compute_ms, 1)
          << ", comm-wait " << Fixed(*t->comm_wait_ms, 1) << ", optimizer "
          << Fixed(*t->optimizer_ms, 1) << " ms)";
    }
    out << " at step " << t->step;
    if (t->loss) out << ", loss " << Fixed(*t->loss, 4);
    out << "\n";
  }
  if (sum.eta_s) {
    const int64_t step = sum.slowest ? *sum.slowest->step : s.throughput->step;
    out << "eta: " << FormatDuration(*sum.eta_s) << " (step " << step << " of " << *s.total_steps
        << ")\n";
  }
}

}  // namespace

std::string StatusText(const JobSnapshot& s, double now) {
  const JobSummary sum = Summarize(s, now);
  const bool live = s.attempt && !s.outcome;
  std::ostringstream out;
  out << "job " << s.job << " (" << s.dir << ")\n";
  out << "state: " << sum.headline << "\n";
  for (const std::string& line : sum.details) out << line << "\n";
  PrintRanks(out, s, now, live);
  PrintTraining(out, s, sum, now, live);
  if (s.checkpoint) {
    out << "checkpoint: " << *s.checkpoint;
    if (s.checkpoint_at) out << " (written " << FormatDuration(now - *s.checkpoint_at) << " ago)";
    out << "\n";
  }
  if (s.diagnosis && !s.diagnosis->stacks.empty()) {
    out << "stacks:";
    for (const std::string& file : s.diagnosis->stacks)
      out << " " << common::job_layout::AttemptDirName(*s.attempt) << "/" << file;
    out << "\n";
  }
  for (const std::string& warning : sum.warnings) out << "warning: " << warning << "\n";
  return out.str();
}

}  // namespace runner
