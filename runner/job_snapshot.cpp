#include "runner/job_snapshot.h"

#include <dirent.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/job_layout.h"
#include "common/parse_int.h"
#include "runner/job_files.h"

namespace runner {

namespace {

using Json = nlohmann::json;
namespace layout = common::job_layout;

template <typename T>
std::optional<T> Opt(const Json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return it->get<T>();  // a wrong type throws, and the file is named in `problems`
}

template <typename T>
T Or(const Json& j, const char* key, T fallback) {
  return Opt<T>(j, key).value_or(fallback);
}

// Runs `read` on the parsed file `relative` (when it exists); a file that does not parse or
// holds a wrong type is named in `problems` instead.
template <typename Read>
bool WithJson(JobSnapshot& s, const std::string& relative, Read read) {
  const std::optional<std::string> text = ReadFileIfExists(s.dir + "/" + relative);
  if (!text) return false;
  try {
    read(Json::parse(*text));
    return true;
  } catch (const Json::exception& e) {
    s.problems.push_back(relative + ": " + e.what());
    return false;
  }
}

std::string AttemptFile(int attempt, const std::string& name) {
  return layout::AttemptDirName(attempt) + "/" + name;
}

void ReadManifest(JobSnapshot& s) {
  WithJson(s, layout::kManifest, [&s](const Json& m) {
    const auto name = Opt<std::string>(m, "job_name");
    const auto id = Opt<std::string>(m, "job_id");
    if (name && id) s.job = layout::JobDirName(*name, *id);
    s.world_size = Or(m, "world_size", 0);
    s.job_started = Opt<double>(m, "created");
    if (m.contains("nodes")) s.nodes = static_cast<int>(m.at("nodes").size());
    for (const Json& a : m.value("agents", Json::array())) {
      s.agents.push_back({Or(a, "agent", 0), Or<std::string>(a, "host", "?"), Or(a, "node", 0),
                          Or(a, "first_rank", 0), Or(a, "workers", 0)});
    }
  });
}

RankState& RankAt(std::map<int, RankState>& ranks, int rank) {
  RankState& r = ranks[rank];
  r.rank = rank;
  return r;
}

// The current attempt's start and its workers, from events.jsonl.
void ReadEvents(JobSnapshot& s, std::map<int, RankState>& ranks) {
  const std::optional<std::string> text = ReadFileIfExists(s.dir + "/" + layout::kEvents);
  if (!text || !s.attempt) return;
  std::istringstream lines(*text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (line.find("_started\"") == std::string::npos && line.find("worker_exited") == line.npos)
      continue;
    try {
      const Json e = Json::parse(line);
      if (Or(e, "attempt", -1) != *s.attempt) continue;
      const std::string event = Or<std::string>(e, "event", "");
      const std::optional<int64_t> ms = ParseTimestampMs(Or<std::string>(e, "time", ""));
      if (event == "attempt_started" && ms) {
        const double at = static_cast<double>(*ms) / 1000;
        s.attempt_started = std::min(s.attempt_started.value_or(at), at);
      } else if (event == "worker_started" || event == "worker_exited") {
        RankState& r = RankAt(ranks, Or(e, "rank", 0));
        r.host = Or<std::string>(e, "host", r.host);
        r.agent = Or(e, "agent", r.agent);
        r.pid = Or(e, "pid", r.pid);
        r.status = event == "worker_started" ? "running" : Or<std::string>(e, "status", "ended");
      }
    } catch (const Json::exception& e) {
      s.problems.push_back(std::string(layout::kEvents) + ":" + std::to_string(number) + ": " +
                           e.what());
    }
  }
}

void ReadRankProgress(const Json& w, const AgentProgress& agent, RankState& r) {
  r.host = agent.host;
  r.agent = agent.agent;
  r.local_rank = Or(w, "local_rank", r.local_rank);
  r.pid = Or(w, "pid", r.pid);
  r.published = Or(w, "published", false);
  r.step = Opt<int64_t>(w, "step");
  r.where = Or<std::string>(w, "where", Or<std::string>(w, "phase", ""));
  r.heartbeat_age_s = Opt<double>(w, "heartbeat_age_s");
  r.progress_age_s = Opt<double>(w, "progress_age_s");
  r.proc_state = Or<std::string>(w, "proc_state", "");
  r.wchan = Or<std::string>(w, "wchan", "");
  r.cpu_s = Opt<double>(w, "cpu_s");
  r.output_age_s = Opt<double>(w, "output_age_s");
  r.status = Or<std::string>(w, "status", r.status);
  r.written = agent.unix;
}

std::vector<int> ProgressAgents(const std::string& dir) {
  std::vector<int> agents;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* entry = readdir(d)) {
      const std::string name = entry->d_name;
      const std::string suffix = ".json";
      if (name.rfind("agent-", 0) != 0 || name.size() <= 6 + suffix.size() ||
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
        continue;
      const auto agent = common::ParseInt64(name.substr(6, name.size() - 6 - suffix.size()));
      if (agent && *agent >= 0 && *agent < (1 << 24)) agents.push_back(static_cast<int>(*agent));
    }
    closedir(d);
  }
  std::sort(agents.begin(), agents.end());
  return agents;
}

void ReadProgress(JobSnapshot& s, std::map<int, RankState>& ranks) {
  const std::string progress_dir = AttemptFile(*s.attempt, layout::kProgressDir);
  for (int a : ProgressAgents(s.dir + "/" + progress_dir)) {
    const std::string file = progress_dir + "/" + layout::ProgressFileName(a);
    WithJson(s, file, [&](const Json& p) {
      if (Or(p, "attempt", *s.attempt) != *s.attempt) return;
      AgentProgress agent{Or(p, "agent", a),
                          Or<std::string>(p, "host", "?"),
                          Or(p, "node", 0),
                          Or<std::string>(p, "state", "running"),
                          Or(p, "unix", 0.0),
                          Or(p, "hang_timeout_s", 0.0),
                          file};
      for (const Json& w : p.value("ranks", Json::array())) {
        ReadRankProgress(w, agent, RankAt(ranks, w.at("rank").get<int>()));
      }
      s.progress.push_back(std::move(agent));
    });
  }
}

// Ranks the manifest knows that nothing has said anything about yet.
void FillFromManifest(const JobSnapshot& s, std::map<int, RankState>& ranks) {
  for (const ManifestAgent& a : s.agents) {
    for (int r = a.first_rank; r < a.first_rank + a.workers; ++r) {
      RankState& rank = RankAt(ranks, r);
      if (rank.host.empty()) rank.host = a.host;
      if (rank.agent < 0) rank.agent = a.agent;
      if (rank.status.empty()) rank.status = "not started";
    }
  }
}

std::optional<FailureFacts> ReadFailure(const Json& o) {
  const auto it = o.find("first_failure");
  if (it == o.end() || !it->is_object()) return std::nullopt;
  const Json& f = *it;
  return FailureFacts{Or(f, "rank", 0),
                      Or<std::string>(f, "host", "?"),
                      Or(f, "pid", 0),
                      Or<std::string>(f, "status", ""),
                      Or<std::string>(f, "log", ""),
                      Or(f, "last_lines", std::vector<std::string>())};
}

void ParseOutcome(JobSnapshot& s, const Json& o, const std::string& text) {
  OutcomeFacts out;
  out.attempt = Or(o, "attempt", 0);
  out.status = Or<std::string>(o, "status", "");
  out.exit_code = Or(o, "exit_code", 0);
  out.exit_meaning = Or<std::string>(o, "exit_meaning", "");
  out.duration_s = Or(o, "duration_s", 0.0);
  out.ended_at = Or(o, "ended_at", 0.0);
  out.restarts = Or(o, "restarts", 0);
  out.first_failure = ReadFailure(o);
  out.hang = Or(o, "hang", std::vector<std::string>());
  int highest = -1;
  for (const Json& a : o.value("agents", Json::array())) {
    if (Or(a, "code", 0) > highest) {
      highest = Or(a, "code", 0);
      out.reason = Or<std::string>(a, "reason", "");
    }
  }
  out.raw = text;
  s.outcome = std::move(out);
}

// The current attempt's outcome.json; the job's own when it is about that attempt.
void ReadOutcome(JobSnapshot& s) {
  for (const std::string& file :
       {AttemptFile(*s.attempt, layout::kOutcome), std::string(layout::kOutcome)}) {
    const std::optional<std::string> text = ReadFileIfExists(s.dir + "/" + file);
    if (!text) continue;
    try {
      const Json o = Json::parse(*text);
      if (Or(o, "attempt", -1) != *s.attempt) continue;
      ParseOutcome(s, o, *text);
      return;
    } catch (const Json::exception& e) {
      s.problems.push_back(file + ": " + e.what());
    }
  }
}

void ReadDiagnosis(JobSnapshot& s) {
  const std::string file =
      AttemptFile(*s.attempt, std::string(layout::kDiagnosisDir) + "/" + layout::kDiagnosis);
  WithJson(s, file, [&s](const Json& d) {
    DiagnosisFacts facts;
    facts.step = Opt<int64_t>(d, "step");
    facts.timeout_s = Or(d, "timeout_s", 0.0);
    facts.lines = Or(d, "lines", std::vector<std::string>());
    facts.stacks = Or(d, "stacks", std::vector<std::string>());
    for (const Json& l : d.value("laggards", Json::array())) {
      facts.laggards.push_back({Or(l, "rank", 0), Or<std::string>(l, "host", "?"), Or(l, "pid", 0),
                                Or<std::string>(l, "proc_state", ""),
                                Or<std::string>(l, "where", ""), Or(l, "stalled_s", 0.0)});
    }
    s.diagnosis = std::move(facts);
  });
}

// The last "step N/TOTAL" of train.log's progress lines, else the start-up line's
// "N steps in all".
std::optional<int64_t> TotalSteps(const std::string& attempt_dir) {
  const std::string log = attempt_dir + "/" + layout::kTrainLog;
  const std::string tail = ReadTail(log, 16384);
  for (size_t at = tail.rfind(" step "); at != std::string::npos;
       at = at == 0 ? std::string::npos : tail.rfind(" step ", at - 1)) {
    const size_t slash = tail.find('/', at + 6);
    const size_t end = tail.find(' ', at + 6);
    if (slash == std::string::npos || end == std::string::npos || slash > end) continue;
    const auto total =
        common::ParseInt64(std::string_view(tail).substr(slash + 1, end - slash - 1));
    if (total && common::ParseInt64(std::string_view(tail).substr(at + 6, slash - at - 6)))
      return total;
  }
  const std::string head = ReadHead(log, 8192);
  const size_t in_all = head.find(" steps in all");
  if (in_all == std::string::npos) return std::nullopt;
  const size_t start = head.rfind(' ', in_all - 1);
  if (start == std::string::npos) return std::nullopt;
  return common::ParseInt64(std::string_view(head).substr(start + 1, in_all - start - 1));
}

void ReadTraining(JobSnapshot& s) {
  const std::string attempt_dir = s.dir + "/" + layout::AttemptDirName(*s.attempt);
  std::istringstream lines(ReadTail(attempt_dir + "/" + layout::kMetrics, 16384));
  std::string line;
  while (std::getline(lines, line)) {
    try {
      const Json m = Json::parse(line);
      if (const auto total = Opt<int64_t>(m, "total_steps")) s.total_steps = total;
      if (!m.contains("samples_per_s")) continue;
      s.throughput = Throughput{Or<int64_t>(m, "step", 0),      Or(m, "samples_per_s", 0.0),
                                Or(m, "step_ms", 0.0),          Opt<double>(m, "data_ms"),
                                Opt<double>(m, "compute_ms"),   Opt<double>(m, "comm_wait_ms"),
                                Opt<double>(m, "optimizer_ms"), Opt<double>(m, "loss")};
    } catch (const Json::exception&) {
      // A line being written as we read: the next look has it whole.
    }
  }
  if (!s.total_steps) s.total_steps = TotalSteps(attempt_dir);
}

void ReadCheckpoint(JobSnapshot& s) {
  const std::string latest = s.dir + "/" + layout::kCheckpoints + "/latest";
  std::optional<std::string> name = ReadFileIfExists(latest);
  if (!name) return;
  while (!name->empty() && (name->back() == '\n' || name->back() == ' ')) name->pop_back();
  s.checkpoint = *name;
  s.checkpoint_at = ModifiedAt(latest);
}

}  // namespace

JobSnapshot ReadJobManifest(const std::string& dir) {
  JobSnapshot s;
  s.dir = dir;
  s.job = std::filesystem::path(dir).filename().string();
  ReadManifest(s);
  return s;
}

JobSnapshot ReadJobSnapshot(const std::string& dir) {
  JobSnapshot s = ReadJobManifest(dir);
  s.attempts = ListAttempts(dir);
  s.attempt = CurrentAttempt(dir);
  ReadCheckpoint(s);
  if (!s.attempt) return s;
  std::map<int, RankState> ranks;
  ReadEvents(s, ranks);
  ReadProgress(s, ranks);
  FillFromManifest(s, ranks);
  for (auto& [rank, state] : ranks) s.ranks.push_back(std::move(state));
  ReadOutcome(s);
  ReadDiagnosis(s);
  ReadTraining(s);
  return s;
}

}  // namespace runner
