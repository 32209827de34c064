// What agents send each other (common/record.h records: rendezvous reports, the job session,
// notices, outcome views), the workers each agent plans, and the restart decision.

#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "common/errors.h"
#include "common/exit_codes.h"
#include "common/log_write_errors.h"
#include "common/record.h"
#include "runner/notice.h"
#include "runner/outcome.h"
#include "runner/rendezvous.h"
#include "runner/worker_plan.h"

namespace runner {
namespace {

std::string ErrorOf(const std::function<void()>& parse) {
  try {
    parse();
  } catch (const common::CommunicationError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(RecordTest, ValuesRoundTripWithNewlinesAndBackslashes) {
  const std::string text = common::RecordWriter()
                               .Add("a", "two\nlines \\ and\r")
                               .Add("n", -7)
                               .Add("x", 0.1)
                               .Add("b", true)
                               .Add("l", std::vector<std::string>{"p", "q"})
                               .str();
  const common::RecordReader in(text, "test record");
  EXPECT_EQ(in.String("a"), "two\nlines \\ and\r");
  EXPECT_EQ(in.Int("n"), -7);
  EXPECT_EQ(in.Double("x"), 0.1);
  EXPECT_TRUE(in.Bool("b"));
  EXPECT_EQ(in.List("l"), (std::vector<std::string>{"p", "q"}));
}

struct BadRecord {
  std::string text;
  std::string error;  // a part of the message
};

TEST(RecordTest, MalformedRecordsNameTheRecordTheFieldAndTheValue) {
  const std::vector<BadRecord> cases = {
      {"job_id=7\ntoken=", "job session from the node-0 agent: the record is truncated (line 2"},
      {"job_id 7\n", "line 1 is not key=value: \"job_id 7\""},
      {"job_id=7\njob_id=8\n", "field 'job_id' appears twice"},
      {"job_id=7\n", "field 'token' is missing"},
      {"job_id=7\ntoken=zz\n", "field 'token' = \"zz\" is not 32 hex digits"},
      {"job_id=7\ntoken=0123456789abcdef0123456789abcdef\nattempt=x1\n",
       "field 'attempt' = \"x1\" is not an integer"},
      {"job_id=7\ntoken=0123456789abcdef0123456789abcdef\nattempt=1\nstore_addr=h\n"
       "store_port=70000\n",
       "field 'store_port' = \"70000\" is out of range [1, 65535]"},
      {"job_id=7\nbad\\qescape=1\n", "line 2 is not key=value"},
  };
  for (const BadRecord& c : cases) {
    const std::string error = ErrorOf([&] { (void)JobSession::Parse(c.text); });
    EXPECT_NE(error.find(c.error), std::string::npos) << "record: " << c.text << "\n" << error;
  }
}

TEST(RecordTest, TheJobSessionRoundTrips) {
  const JobSession s{"123", "0123456789abcdef0123456789abcdef", 4, "10.0.0.1", 29500};
  const JobSession back = JobSession::Parse(s.Serialize());
  EXPECT_EQ(back.job_id, "123");
  EXPECT_EQ(back.token, s.token);
  EXPECT_EQ(back.attempt, 4);
  EXPECT_EQ(back.store_addr, "10.0.0.1");
  EXPECT_EQ(back.store_port, 29500);
}

TEST(RecordTest, ARendezvousReportNamesTheAgentAndTheBadAddress) {
  AgentInfo a;
  a.agent = 3;
  a.host = "n3";
  a.pid = 42;
  a.nproc = 2;
  a.addresses = {{"10.0.0.3", 24}};
  std::string text = a.Serialize();
  EXPECT_EQ(AgentInfo::Parse(text, 3).addresses[0].prefix_length, 24);
  text.replace(text.find("10.0.0.3/24"), 11, "10.0.0.3/40");
  const std::string error = ErrorOf([&] { (void)AgentInfo::Parse(text, 3); });
  EXPECT_NE(error.find("rendezvous report from agent 3: field 'addresses'"), std::string::npos)
      << error;
  EXPECT_NE(error.find("'10.0.0.3/40', not an IPv4 address/prefix length"), std::string::npos);
}

TEST(RecordTest, NoticesAndAgentViewsRoundTrip) {
  const Notice n{Notice::Kind::kFailure, 5, "n2", "killed by signal 9 (SIGKILL)", 3};
  const Notice back = Notice::Parse(n.Serialize());
  EXPECT_EQ(back.agent, 3);
  EXPECT_EQ(back.Describe(), "worker rank 5 on n2 killed by signal 9 (SIGKILL)");
  EXPECT_NE(ErrorOf([] {
              (void)Notice::Parse("kind=maybe\nhost=a\nstatus=b\n");
            }).find("field 'kind' = \"maybe\" is not 'stop' or 'failure'"),
            std::string::npos);

  AgentView view{1, "n2", 1, {}, {}};
  view.outcome.code = 21;
  view.outcome.reason = "worker rank 5 killed";
  view.outcome.workers = {{4, 90, "exited with code 0"}, {5, 91, "killed by signal 9"}};
  WorkerFailure f;
  f.rank = 5;
  f.host = "n2";
  f.pid = 91;
  f.status = "killed by signal 9 (SIGKILL)";
  f.signal = 9;
  f.signal_name = "SIGKILL";
  f.time = 1700000000.25;
  f.log_path = "/logs/rank-5.log";
  f.last_lines = {"a, b", "line with = and \\n"};
  view.outcome.failure = f;
  view.log_write_errors = {{"/logs/rank-5.log", 5, 28, 123456789012, 1000000, ""},
                           {"console (stderr)", -1, 5, 0, 1, ""},
                           {"/logs/rank-6.log", 6, 11, 10, 1, "the disk did not keep up (x)"}};
  const AgentView parsed = AgentView::Parse(view.Serialize(), 1);
  EXPECT_EQ(parsed.log_write_errors.size(), 3u);
  EXPECT_EQ(parsed.log_write_errors[2].reason, "the disk did not keep up (x)");
  EXPECT_EQ(parsed.log_write_errors[0].bytes_lost, 123456789012u);
  EXPECT_EQ(AgentViewJson(parsed), AgentViewJson(view));
  EXPECT_EQ(parsed.outcome.failure->last_lines, f.last_lines);
  EXPECT_FALSE(parsed.outcome.failure->exit_code);
}

TEST(OutcomeTest, TheFirstFailureAcrossAgentsIsTheEarliest) {
  std::vector<AgentView> views(3);
  views[0].outcome.failure = WorkerFailure{};
  views[0].outcome.failure->rank = 0;
  views[0].outcome.failure->time = 10.5;
  views[2].outcome.failure = WorkerFailure{};
  views[2].outcome.failure->rank = 9;
  views[2].outcome.failure->time = 10.49;
  EXPECT_EQ(FirstFailure(views)->rank, 9);
  EXPECT_FALSE(FirstFailure({AgentView{}}));
}

// Node 0 alone gathers the views and broadcasts what the others need from them: the highest code
// (then CodeWithLogs), the earliest failure and every agent's lost log lines; the same through
// the record it travels as.
TEST(OutcomeTest, TheJobViewCarriesWhatEveryAgentNeedsFromAllViews) {
  const common::LogWriteError lost{"/logs/rank-3.log", 3, 28, 120, 1, ""};
  struct Case {
    std::vector<int> codes;
    int lost_on_agent;  // -1: none
    int code;
  };
  for (const Case& c : std::vector<Case>{{{0, 0, 0}, -1, 0},
                                         {{0, 0, 0}, 2, common::kExitLogsIncomplete},
                                         {{0, 20, 12}, -1, 20},
                                         {{12, 13, 0}, 0, 13},
                                         {{0}, -1, 0}}) {
    std::vector<AgentView> views(c.codes.size());
    for (size_t i = 0; i < views.size(); ++i) {
      views[i].agent = static_cast<int>(i);
      views[i].outcome.code = c.codes[i];
    }
    if (c.lost_on_agent >= 0) views[static_cast<size_t>(c.lost_on_agent)].log_write_errors = {lost};
    const AgentView job = AgentView::Parse(JobView(views).Serialize(), 0);
    EXPECT_EQ(job.outcome.code, c.code) << c.codes.size() << " agents, code " << c.code;
    EXPECT_EQ(job.log_write_errors.size(), c.lost_on_agent >= 0 ? 1u : 0u);
    EXPECT_FALSE(job.outcome.failure);
  }
  std::vector<AgentView> views(3);
  for (const auto& [agent, rank, time] : {std::tuple{0, 0, 10.5}, {2, 9, 10.49}}) {
    views[static_cast<size_t>(agent)].outcome.failure = WorkerFailure{};
    views[static_cast<size_t>(agent)].outcome.failure->rank = rank;
    views[static_cast<size_t>(agent)].outcome.failure->time = time;
  }
  views[1].log_write_errors = {lost, lost};
  views[2].log_write_errors = {lost};
  const AgentView job = AgentView::Parse(JobView(views).Serialize(), 0);
  ASSERT_TRUE(job.outcome.failure);
  EXPECT_EQ(job.outcome.failure->rank, 9);
  EXPECT_EQ(job.log_write_errors.size(), 3u);
  EXPECT_EQ(job.log_write_errors[0].file, "/logs/rank-3.log");
}

TEST(OutcomeTest, LostLogLinesTurnOnlyASuccessInto1) {
  std::vector<AgentView> views(2);
  const common::LogWriteError lost{"/logs/rank-3.log", 3, 28, 120, 1, ""};
  struct Case {
    int agreed;
    bool lost_on_agent_1;
    int code;
  };
  for (const Case& c : std::vector<Case>{{0, false, 0},
                                         {0, true, common::kExitLogsIncomplete},
                                         {10, true, 10},
                                         {11, true, 11},
                                         {12, true, 12},
                                         {13, true, 13},
                                         {20, true, 20},
                                         {21, false, 21}}) {
    views[1].log_write_errors.clear();
    if (c.lost_on_agent_1) views[1].log_write_errors.push_back(lost);
    EXPECT_EQ(CodeWithLogs(c.agreed, views), c.code) << c.agreed << " " << c.lost_on_agent_1;
  }
  EXPECT_EQ(StatusWord(common::kExitLogsIncomplete), "succeeded");
  EXPECT_FALSE(DecideRestart(common::kExitLogsIncomplete, std::nullopt, 0, 3).restart);
  views[1].log_write_errors = {lost};
  JobOutcome job;
  job.agents = views;
  const std::string json = OutcomeJson(job);
  EXPECT_NE(json.find("\"logs_complete\":false"), std::string::npos) << json;
  EXPECT_NE(json.find("\"file\":\"/logs/rank-3.log\",\"rank\":3,\"errno\":28,\"error\":\"No space "
                      "left on device\",\"bytes_lost\":120,\"lines_lost\":1"),
            std::string::npos)
      << json;
}

TEST(OutcomeTest, AFileThatCannotBeWrittenIsSaidOnceAndCounted) {
  common::LogWriteErrors errors;
  std::vector<std::string> said;
  errors.SetReporter([&](const std::string& line) { said.push_back(line); });
  EXPECT_TRUE(errors.Record("/l/t-1/attempt-0/rank-1.log", 28, 100, 1, 1));
  EXPECT_FALSE(errors.Record("/l/t-1/attempt-0/rank-1.log", 28, 50, 2, 1));
  EXPECT_TRUE(errors.Record("/l/t-1/attempt-0/runner-a.log", 5, 70, 1, -1, /*report=*/false));
  ASSERT_EQ(said.size(), 1u);
  EXPECT_EQ(said[0],
            "cannot write to /l/t-1/attempt-0/rank-1.log: No space left on device; its lines are "
            "being dropped (counted in outcome.json) and the workers go on; fix: free space under "
            "job.log_root, or point job.log_root (--log-root) at a filesystem with room");
  const std::vector<common::LogWriteError> all = errors.Snapshot();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].bytes_lost, 150u);
  EXPECT_EQ(all[0].lines_lost, 3u);
  EXPECT_EQ(common::SummarizeWriteErrors(all),
            "4 lines (220 B) lost: rank-1.log (No space left on device), runner-a.log "
            "(Input/output error)");
}

TEST(OutcomeTest, RestartsAreCountedAndOnlyFailuresThatARetryCanChangeRestart) {
  struct Row {
    int code, restarts, max;
    std::optional<int> root_exit;  // the root cause's exit code; nullopt: none or a signal
    bool restart;
    std::string skipped;
  };
  const std::string kConfig =
      "not restarting: rank 1 on node2 exited with code 3 (config error), which a restart cannot "
      "change; 2 of launch.max_restarts=2 left unused";
  for (const Row& r : std::vector<Row>{
           {20, 0, 1, 1, true, ""},
           {21, 0, 1, std::nullopt, true, ""},
           {12, 0, 1, std::nullopt, true, ""},
           {13, 0, 1, std::nullopt, true, ""},
           {20, 1, 1, 1, false, ""},
           {20, 0, 0, 1, false, ""},
           {0, 0, 3, std::nullopt, false, ""},
           {10, 0, 3, std::nullopt, false, ""},
           {11, 0, 3, std::nullopt, false, ""},
           {5, 0, 3, std::nullopt, false, ""},
           {20, 0, 2, 3, false, kConfig},
           {20, 0, 2, 2, false, "not restarting: rank 1 on node2 exited with code 2 (usage error)"},
           {20, 1, 3, 4, false,
            "exited with code 4 (environment error), which a restart cannot "
            "change; 2 of launch.max_restarts=3 left unused"},
           {20, 0, 2, 5, true, ""},
           {20, 0, 2, 127, true, ""},
           {20, 2, 2, 3, false, ""}}) {
    std::optional<WorkerFailure> root;
    if (r.root_exit) {
      root = WorkerFailure{};
      root->rank = 1;
      root->host = "node2";
      root->exit_code = r.root_exit;
    }
    const RestartDecision d = DecideRestart(r.code, root, r.restarts, r.max);
    SCOPED_TRACE("code " + std::to_string(r.code) + " after " + std::to_string(r.restarts) +
                 " of " + std::to_string(r.max) + " restarts, root exit " +
                 std::to_string(r.root_exit.value_or(-1)));
    EXPECT_EQ(d.restart, r.restart);
    if (r.skipped.empty()) {
      EXPECT_EQ(d.skipped, "");
    } else {
      EXPECT_NE(d.skipped.find(r.skipped), std::string::npos) << d.skipped;
    }
  }
}

TEST(WorkerPlanTest, RanksDevicesContractAndPathsFollowTheLayout) {
  // Two nodes; node 1 has two agents (2 and 1 workers); this is its second agent (MPI rank 2).
  AgentPlace place;
  place.node = 1;
  place.node_count = 2;
  place.local_index = 1;
  place.agents_on_node = 2;
  place.first_rank = 4;
  place.first_local_rank = 2;
  place.workers_on_node = 3;
  place.node_agent_pid = 200;
  place.world_size = 5;
  AgentPlan plan;
  plan.nproc.value = 1;
  plan.devices.value = {"3"};
  const JobSession session{"77", "0123456789abcdef0123456789abcdef", 1, "10.0.0.1", 4000};
  const std::vector<WorkerLaunch> launches = PlanWorkerLaunches(
      {&place, &plan, &session, 1, 2, "/j", "/j/attempt-1", "/j/job.yaml", 8, {"w", "--x"}});
  ASSERT_EQ(launches.size(), 1u);
  const WorkerContract& c = launches[0].contract;
  EXPECT_EQ(c.rank, 4);
  EXPECT_EQ(c.local_rank, 2);
  EXPECT_EQ(c.world_size, 5);
  EXPECT_EQ(c.local_world_size, 3);
  EXPECT_EQ(c.node_rank, 1);
  EXPECT_EQ(c.node_count, 2);
  EXPECT_EQ(c.master_addr, "10.0.0.1");
  EXPECT_EQ(c.master_port, 4000);
  EXPECT_EQ(c.restart_count, 1);
  EXPECT_EQ(c.max_restarts, 2);
  EXPECT_EQ(c.run_id, "77");
  EXPECT_EQ(c.node_agent_pid, 200);  // node 1's first agent names its segment
  EXPECT_EQ(c.device, "3");
  EXPECT_EQ(c.omp_threads, 8);
  EXPECT_EQ(launches[0].log_path, "/j/attempt-1/rank-4.log");
  EXPECT_EQ(launches[0].argv, (std::vector<std::string>{"w", "--x"}));
}

TEST(WorkerPlanTest, CpuWorkersSplitTheAgentsCpus) {
  AgentPlace place;
  place.workers_on_node = 2;
  place.node_agent_pid = 100;
  place.world_size = 2;
  AgentPlan plan;
  plan.nproc.value = 2;
  const JobSession session{"7", "0123456789abcdef0123456789abcdef", 0, "127.0.0.1", 5000};
  struct Row {
    int cpus;
    int omp_threads;
  };
  for (const Row& row : std::vector<Row>{{2, 1}, {1, 1}, {7, 3}, {16, 8}}) {
    const std::vector<WorkerLaunch> launches = PlanWorkerLaunches(
        {&place, &plan, &session, 0, 0, "/j", "/j/attempt-0", "/j/job.yaml", row.cpus, {"w"}});
    ASSERT_EQ(launches.size(), 2u);
    for (int i = 0; i < 2; ++i) {
      const WorkerContract& c = launches[static_cast<size_t>(i)].contract;
      EXPECT_EQ(c.rank, i);
      EXPECT_EQ(c.local_rank, i);
      EXPECT_EQ(c.local_world_size, 2);
      EXPECT_EQ(c.device, "");
      EXPECT_EQ(c.omp_threads, row.omp_threads) << row.cpus << " CPUs for 2 workers";
    }
  }
}

}  // namespace
}  // namespace runner
