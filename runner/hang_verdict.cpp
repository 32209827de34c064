#include "runner/hang_verdict.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <map>
#include <tuple>

#include "common/json.h"
#include "common/logging.h"
#include "runner/proc_probe.h"

namespace runner {

namespace {

// A verdict's lines stay a screenful however many ranks the job has (each agent's outcome view and
// the verdict sent to every agent carry them): this many named ranks and places in full, the rest
// by their ranks; diagnosis.json has every rank's view.
constexpr size_t kMostInFull = 8;
constexpr size_t kMostRankListChars = 160;

// FormatRanks, cut after about kMostRankListChars at a comma ("0,2,4,...,510 (256 ranks)").
std::string RankList(const std::vector<int>& ranks) {
  const std::string all = FormatRanks(ranks);
  if (all.size() <= kMostRankListChars) return all;
  const size_t cut = all.rfind(',', kMostRankListChars);
  return all.substr(0, cut) + ",...," + std::to_string(ranks.back()) + " (" +
         std::to_string(ranks.size()) + " ranks)";
}

bool Abnormal(const RankView& v) {
  return v.ended || v.proc_state == 'T' || v.proc_state == 't' || v.proc_state == 'D' ||
         v.proc_state == 'Z' || v.proc_state == 'X';
}

std::tuple<int64_t, int64_t> Position(const RankView& v) { return {v.step, v.collective}; }

std::string Cpu(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", seconds);
  return text;
}

// "rank 3 (node2, pid 4411) stopped (T) in phase data for 312 s"
std::string Named(const RankView& v) {
  std::string text =
      "rank " + std::to_string(v.rank) + " (" + v.host + ", pid " + std::to_string(v.pid) + ") ";
  if (v.ended) return text + v.status;
  text += DescribeProcState(v.proc_state);
  if (v.published) {
    text += (v.in_collective ? " in " : " in phase ") + v.Where() + " at step " +
            std::to_string(v.step);
  } else {
    text += ", publishes no heartbeat";
  }
  return text + " for " + WholeSeconds(v.stalled_s) + " s";
}

// All in the same collective by number but not by name: a collective skipped or added on some
// ranks. The ranks outside the largest group (ties: the group of the lowest rank) are named.
void NameMismatched(const std::vector<RankView>& views, const std::vector<size_t>& publishing,
                    std::vector<bool>& named) {
  std::map<std::string, std::vector<size_t>> by_phase;
  for (size_t i : publishing) by_phase[views[i].phase].push_back(i);
  if (by_phase.size() < 2) return;
  const std::vector<size_t>* keep = nullptr;
  for (const auto& [phase, members] : by_phase) {
    if (keep == nullptr || members.size() > keep->size() ||
        (members.size() == keep->size() && views[members.front()].rank < views[keep->front()].rank))
      keep = &members;
  }
  for (size_t i : publishing)
    named[i] = named[i] || std::find(keep->begin(), keep->end(), i) == keep->end();
}

// Which ranks are named, by the rules in the header.
std::vector<bool> PickLaggards(const std::vector<RankView>& views) {
  std::vector<bool> named(views.size(), false);
  std::vector<size_t> publishing;
  bool any_abnormal = false;
  for (size_t i = 0; i < views.size(); ++i) {
    if (Abnormal(views[i])) named[i] = any_abnormal = true;
    if (views[i].published && !views[i].ended) publishing.push_back(i);
  }
  if (any_abnormal) {
    // A stopped, stuck-in-D or ended rank is the cause; ranks inside a collective are waiting
    // for it (a rank stopped mid-all-reduce leaves its ring neighbours behind in that one too).
    // Only ranks behind outside any collective are named beside it.
    std::tuple<int64_t, int64_t> highest{INT64_MIN, INT64_MIN};
    for (size_t i : publishing) highest = std::max(highest, Position(views[i]));
    for (size_t i : publishing) {
      if (!views[i].in_collective && Position(views[i]) < highest) named[i] = true;
    }
  } else if (!publishing.empty()) {
    auto lowest = Position(views[publishing.front()]);
    auto highest = lowest;
    bool all_inside = true;
    for (size_t i : publishing) {
      lowest = std::min(lowest, Position(views[i]));
      highest = std::max(highest, Position(views[i]));
      all_inside = all_inside && views[i].in_collective;
    }
    for (size_t i : publishing) {
      const bool behind = lowest != highest && Position(views[i]) == lowest;
      const bool outside = lowest == highest && !views[i].in_collective;
      if (behind || outside) named[i] = true;
    }
    if (lowest == highest && all_inside) NameMismatched(views, publishing, named);
  } else {
    // No heartbeat anywhere: the ranks that used (almost) no CPU while stalled.
    for (size_t i = 0; i < views.size(); ++i) named[i] = views[i].cpu_window_s < 1.0;
  }
  return named;
}

// "the ranks disagree on collective #5: rank 1 in barrier, ranks 0,2 in all-reduce (...)"
std::string MismatchLine(const std::vector<RankView>& views) {
  std::map<std::string, std::vector<int>> by_phase;
  int64_t number = -1;
  for (const RankView& v : views) {
    if (!v.published || v.ended || !v.in_collective) return "";
    if (number >= 0 && v.collective != number) return "";
    number = v.collective;
    by_phase[v.phase].push_back(v.rank);
  }
  if (by_phase.size() < 2) return "";
  std::string line = "the ranks disagree on collective #" + std::to_string(number) + ":";
  bool first = true;
  for (auto& [phase, ranks] : by_phase) {
    std::sort(ranks.begin(), ranks.end());
    line += std::string(first ? " " : ", ") + (ranks.size() == 1 ? "rank " : "ranks ") +
            FormatRanks(ranks) + " in " + phase;
    first = false;
  }
  return line + " (a collective skipped or added on some ranks)";
}

// "ranks 0-2 waiting in all-reduce #4812 (bucket 2/3)", one line per place.
std::vector<std::string> WaitingLines(const std::vector<RankView>& waiting) {
  std::map<std::string, std::vector<int>> by_place;
  for (const RankView& v : waiting) {
    by_place[v.published ? (v.in_collective ? "waiting in " : "in phase ") + v.Where()
                         : "publishing no heartbeat, " + v.State()]
        .push_back(v.rank);
  }
  std::vector<std::string> lines;
  std::vector<int> elsewhere;
  for (auto& [place, ranks] : by_place) {
    std::sort(ranks.begin(), ranks.end());
    if (lines.size() == kMostInFull) {
      elsewhere.insert(elsewhere.end(), ranks.begin(), ranks.end());
      continue;
    }
    lines.push_back((ranks.size() == 1 ? "rank " : "ranks ") + RankList(ranks) + " " + place);
  }
  if (!elsewhere.empty()) {
    std::sort(elsewhere.begin(), elsewhere.end());
    lines.push_back("ranks " + RankList(elsewhere) + " waiting in " +
                    std::to_string(by_place.size() - kMostInFull) +
                    " other places (diagnosis/diagnosis.json)");
  }
  return lines;
}

std::string Detail(const RankView& v) {
  std::string text = "rank " + std::to_string(v.rank) + " on " + v.host + ": " + v.State() + ", " +
                     Cpu(v.cpu_window_s) + " s CPU while stalled";
  text += v.output_age_s < 0 ? ", no output yet"
                             : ", last output " + WholeSeconds(v.output_age_s) + " s ago";
  return text + "; stack in diagnosis/rank-" + std::to_string(v.rank) + ".txt";
}

}  // namespace

HangVerdict JudgeHang(std::vector<RankView> views, double timeout_s) {
  std::sort(views.begin(), views.end(),
            [](const RankView& a, const RankView& b) { return a.rank < b.rank; });
  HangVerdict verdict;
  const std::vector<bool> named = PickLaggards(views);
  bool stalled_known = false;
  for (size_t i = 0; i < views.size(); ++i) {
    const RankView& v = views[i];
    (named[i] ? verdict.laggards : verdict.waiting).push_back(v);
    if (v.published && !v.ended && (verdict.step < 0 || v.step < verdict.step))
      verdict.step = v.step;
    if (!v.ended && (!stalled_known || v.stalled_s < verdict.stalled_s)) {
      verdict.stalled_s = v.stalled_s;
      stalled_known = true;
    }
  }
  std::string headline = "HANG";
  if (verdict.step >= 0) headline += " at step " + std::to_string(verdict.step);
  headline += ": ";
  std::vector<std::string> parts;
  const size_t in_full = std::min(verdict.laggards.size(), kMostInFull);
  for (size_t i = 0; i < in_full; ++i) parts.push_back(Named(verdict.laggards[i]));
  std::vector<int> more;
  for (size_t i = in_full; i < verdict.laggards.size(); ++i)
    more.push_back(verdict.laggards[i].rank);
  if (!more.empty()) {
    parts.push_back("and " + std::to_string(more.size()) +
                    " more named: " + (more.size() == 1 ? "rank " : "ranks ") + RankList(more) +
                    " (each in diagnosis/diagnosis.json)");
  }
  if (parts.empty()) {
    parts.push_back(
        "no rank is behind: every rank waits in the same collective (suspect the "
        "network or a device)");
  }
  for (const std::string& line : WaitingLines(verdict.waiting)) parts.push_back(line);
  for (size_t i = 0; i < parts.size(); ++i) headline += (i == 0 ? "" : "; ") + parts[i];
  verdict.lines.push_back(headline);
  if (const std::string mismatch = MismatchLine(views); !mismatch.empty())
    verdict.lines.push_back(mismatch);
  verdict.weak_evidence = true;
  for (size_t i = 0; i < verdict.laggards.size(); ++i) {
    if (i < in_full) verdict.lines.push_back(Detail(verdict.laggards[i]));
    verdict.weak_evidence = verdict.weak_evidence && !verdict.laggards[i].published;
  }
  if (!more.empty()) {
    verdict.lines.push_back("the other " + std::to_string(more.size()) +
                            " named ranks: diagnosis/diagnosis.json and diagnosis/rank-<R>.txt");
  }
  if (verdict.laggards.empty()) verdict.weak_evidence = false;
  if (verdict.weak_evidence) {
    verdict.lines.push_back(
        "weak evidence: the named ranks publish no heartbeat (RUNNER_HEARTBEAT_FILE), so this is "
        "read from their output and CPU time only");
  }
  verdict.lines.push_back("no rank advanced for " + WholeSeconds(verdict.stalled_s) +
                          " s (launch.hang_timeout_s " + WholeSeconds(timeout_s) + ")");
  return verdict;
}

}  // namespace runner

namespace runner {

std::string HangVerdictJson(const HangVerdict& verdict, double timeout_s,
                            const std::vector<std::string>& stack_files) {
  std::vector<std::string> laggards;
  for (const RankView& v : verdict.laggards) laggards.push_back(RankViewJson(v));
  std::vector<std::string> waiting;
  for (const RankView& v : verdict.waiting) waiting.push_back(RankViewJson(v));
  common::JsonObject out;
  out.Add("time", common::Timestamp()).Add("verdict", "hang");
  if (verdict.step >= 0) out.Add("step", verdict.step);
  out.Add("timeout_s", timeout_s).Add("stalled_s", verdict.stalled_s);
  out.Add("weak_evidence", verdict.weak_evidence).Add("lines", verdict.lines);
  out.AddRaw("laggards", common::JsonArray(laggards));
  out.AddRaw("waiting", common::JsonArray(waiting));
  out.Add("stacks", stack_files);
  return out.str() + "\n";
}

}  // namespace runner
