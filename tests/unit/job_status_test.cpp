// `runner status` on job directories as the agents leave them (tests/unit/job_fixture.h): a job
// running with fresh progress files, one with an agent gone silent, ended well, failed, hung,
// requeued, restarting; the exact lines an operator reads, and the JSON programs read.

#include "runner/job_status.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "common/errors.h"
#include "runner/job_files.h"
#include "runner/job_snapshot.h"
#include "tests/unit/job_fixture.h"

namespace runner {
namespace {

using testing_support::JobFixture;
using testing_support::kNow;

std::string Status(const JobFixture& job) { return StatusText(ReadJobSnapshot(job.dir()), kNow); }

testing::AssertionResult HasLine(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (l == line) return testing::AssertionSuccess();
  }
  return testing::AssertionFailure() << "no line\n" << line << "\nin\n" << text;
}

// A job at step 1200 (rank 3 behind at 1198 in data), both agents' files written 1 s ago.
void Running(const JobFixture& job, double agent1_written = kNow - 1) {
  job.BeginAttempt(0);
  job.Progress(0, 0, kNow - 1, "running",
               JobFixture::Rank(0, 1200, "all-reduce #4812 (bucket 2/3)", 0.4) + "," +
                   JobFixture::Rank(1, 1200, "all-reduce #4812 (bucket 2/3)", 0.5));
  job.Progress(0, 1, agent1_written, "running",
               JobFixture::Rank(2, 1200, "all-reduce #4812 (bucket 2/3)", 0.4) + "," +
                   JobFixture::Rank(3, 1198, "data", 12));
  job.Training(0);
}

TEST(JobStatusTest, RunningWithFreshProgress) {
  JobFixture job;
  Running(job);
  const std::string text = Status(job);
  EXPECT_EQ(text, "job train-123 (" + job.dir() +
                      ")\n"
                      "state: running, attempt 0, for 3m20s\n"
                      "ranks: 4 on 2 nodes\n"
                      "  rank host pid  step where                         heartbeat status\n"
                      "  0    n1   4400 1200 all-reduce #4812 (bucket 2/3) 1.4 s     running\n"
                      "  1    n1   4401 1200 all-reduce #4812 (bucket 2/3) 1.5 s     running\n"
                      "  2    n2   4402 1200 all-reduce #4812 (bucket 2/3) 1.4 s     running\n"
                      "  3    n2   4403 1198 data                          13.0 s    running\n"
                      "slowest: rank 3 (n2) at step 1198, no progress for 13.0 s, in data\n"
                      "throughput: 1234 samples/s, 50.0 ms/step (data 1.0, fwd+bwd 30.0, comm-wait "
                      "15.0, optimizer 4.0 ms) at step 1200, loss 0.5000\n"
                      "eta: 4m00s (step 1198 of 6000)\n"
                      "checkpoint: step-1000 (written 3m00s ago)\n");
}

TEST(JobStatusTest, RunningWithAnAgentGoneSilent) {
  JobFixture job;
  Running(job, kNow - 40);
  const std::string text = Status(job);
  EXPECT_TRUE(HasLine(text, "state: running, attempt 0, for 3m20s"));
  EXPECT_TRUE(HasLine(text, "warning: no update from agent 1 (n2) for 40s: is it alive?"));
  // Its ranks' ages count from when it last wrote.
  EXPECT_TRUE(
      HasLine(text, "  3    n2   4403 1198 data                          52.0 s    running"));
  // Just under three refreshes is no warning.
  JobFixture fresh;
  Running(fresh, kNow - kProgressStaleS + 0.5);
  EXPECT_EQ(Status(fresh).find("warning:"), std::string::npos) << Status(fresh);
}

// SIGKILL, the OOM killer, a node failure: no outcome.json, and progress files that stopped.
TEST(JobStatusTest, AgentsThatDiedWithoutAWord) {
  JobFixture one;
  Running(one, kNow - 90);
  const std::string text = Status(one);
  EXPECT_TRUE(HasLine(text, "state: running, attempt 0, for 3m20s")) << text;
  EXPECT_TRUE(HasLine(text,
                      "warning: agent 1 (n2) has written nothing for 1m30s and attempt-0 has no "
                      "outcome.json: it appears to have died without a word (SIGKILL, the OOM "
                      "killer or a node failure?)"));
  JobFixture all;
  all.BeginAttempt(0);
  all.Progress(0, 0, kNow - 90, "running", JobFixture::Rank(0, 1200, "data", 0.4));
  all.Progress(0, 1, kNow - 61, "running", JobFixture::Rank(2, 1200, "data", 0.4));
  const JobSummary died = Summarize(ReadJobSnapshot(all.dir()), kNow);
  EXPECT_EQ(died.state, "died");
  EXPECT_TRUE(died.over);
  EXPECT_EQ(died.headline,
            "died without a record, attempt 0: no agent has written for over 1m00s and there is "
            "no outcome.json (SIGKILL, the OOM killer or a node failure?); a new start in this "
            "job directory begins the next attempt");
  EXPECT_EQ(died.warnings.size(), 2u);
}

TEST(JobStatusTest, RunningWithAnAgentThatNeverWrote) {
  JobFixture job;
  Running(job);
  std::filesystem::remove(job.dir() + "/attempt-0/progress/agent-1.json");
  const std::string text = Status(job);
  EXPECT_TRUE(HasLine(text,
                      "warning: no progress file from agent 1 (n2) in "
                      "attempt-0/progress/: is it alive?"));
  // Its ranks still show, from events.jsonl.
  EXPECT_TRUE(
      HasLine(text, "  3    n2   4403 -    -                             -         running"));
}

TEST(JobStatusTest, WorkersWithoutHeartbeatsShowTheirProcessState) {
  JobFixture job;
  job.BeginAttempt(0);
  job.Progress(0, 0, kNow - 1, "running",
               R"({"rank":0,"local_rank":0,"pid":4400,"published":false,"proc_state":"R",)"
               R"("wchan":"0","cpu_s":3.5,"output_age_s":0.2,"status":"running"},)"
               R"({"rank":1,"local_rank":1,"pid":4401,"published":false,"proc_state":"S",)"
               R"("wchan":"pipe_read","cpu_s":3.5,"output_age_s":0.2,"status":"running"})");
  const std::string text = Status(job);
  EXPECT_TRUE(HasLine(text,
                      "  0    n1   4400 -    no heartbeat; state R             -         "
                      "running"));
  EXPECT_TRUE(HasLine(text,
                      "  1    n1   4401 -    no heartbeat; state S (pipe_read) -         "
                      "running"));
}

TEST(JobStatusTest, EndedWell) {
  JobFixture job;
  Running(job);
  job.Outcome(0, "succeeded", 0, "success");
  job.Progress(0, 0, kNow - 100, "ended",
               JobFixture::Rank(0, 6000, "done", 0.4, "exited with code 0") + "," +
                   JobFixture::Rank(1, 6000, "done", 0.4, "exited with code 0"));
  const std::string text = Status(job);
  EXPECT_TRUE(HasLine(text,
                      "state: ended, succeeded with exit code 0 (success), attempt 0, "
                      "after 4m50s"));
  EXPECT_TRUE(HasLine(text, "reason: all workers of this node exited with code 0"));
  EXPECT_TRUE(HasLine(text,
                      "  0    n1   4400 6000 done                          -         "
                      "exited with code 0"));
  EXPECT_EQ(text.find("eta:"), std::string::npos) << text;
  EXPECT_EQ(text.find("slowest:"), std::string::npos) << text;
  EXPECT_EQ(text.find("warning:"), std::string::npos) << text;
  EXPECT_TRUE(Summarize(ReadJobSnapshot(job.dir()), kNow).over);
}

TEST(JobStatusTest, EndedWithAFailure) {
  JobFixture job;
  Running(job);
  job.Outcome(0, "failed", 20, "a worker of this node exited non-zero (the root cause)",
              R"("first_failure":{"rank":3,"host":"n2","node":1,"pid":4403,)"
              R"("status":"exited with code 1","exit_code":1,"time":1,)"
              R"("log":"/j/attempt-0/rank-3.log","last_lines":["a","b","c","ValueError: bad"]})");
  const std::string text = Status(job);
  EXPECT_TRUE(HasLine(text,
                      "state: ended, failed with exit code 20 (a worker of this node exited "
                      "non-zero (the root cause)), attempt 0, after 4m50s"));
  EXPECT_TRUE(HasLine(text,
                      "first failure: rank 3 on n2 (pid 4403) exited with code 1; log "
                      "/j/attempt-0/rank-3.log"));
  EXPECT_TRUE(HasLine(text, "  | ValueError: bad"));
  EXPECT_FALSE(HasLine(text, "  | a"));
}

TEST(JobStatusTest, HungWithTheVerdict) {
  JobFixture job;
  Running(job);
  job.Write("attempt-0/diagnosis/diagnosis.json",
            R"J({"time":"x","step":1200,"timeout_s":300,"lines":["HANG at step 1200: rank 3 )J"
            R"J((n2, pid 4403) stopped (state T) in phase data for 312 s","ranks 0-2 waiting in )J"
            R"J(all-reduce #4812 (bucket 2/3)"],"laggards":[{"rank":3,"host":"n2","pid":4403,)J"
            R"J("proc_state":"T","where":"data","stalled_s":312}],)J"
            R"J("stacks":["diagnosis/rank-0.txt","diagnosis/rank-3.txt"]})J");
  // While the agents stop the workers, before outcome.json.
  std::string text = Status(job);
  EXPECT_TRUE(HasLine(text,
                      "state: hung (the agents are stopping the workers), attempt 0, for "
                      "3m20s"));
  EXPECT_TRUE(HasLine(text,
                      "  HANG at step 1200: rank 3 (n2, pid 4403) stopped (state T) in "
                      "phase data for 312 s"));
  EXPECT_TRUE(HasLine(text, "  ranks 0-2 waiting in all-reduce #4812 (bucket 2/3)"));
  EXPECT_TRUE(HasLine(text,
                      "stacks: attempt-0/diagnosis/rank-0.txt "
                      "attempt-0/diagnosis/rank-3.txt"));
  EXPECT_FALSE(Summarize(ReadJobSnapshot(job.dir()), kNow).over);
  // And once it has ended: the outcome's own lines.
  job.Outcome(0, "failed", 13, "hung", R"("first_failure":null,"hang":["HANG at step 1200"])");
  text = Status(job);
  EXPECT_TRUE(HasLine(text, "state: hung, exit code 13 (hung), attempt 0, after 4m50s"));
  EXPECT_TRUE(HasLine(text, "  HANG at step 1200"));
  EXPECT_TRUE(Summarize(ReadJobSnapshot(job.dir()), kNow).over);
}

TEST(JobStatusTest, StoppedAndRequeued) {
  JobFixture job;
  Running(job);
  job.Outcome(0, "stopped", 10, "stopped on request (SIGTERM/SIGINT), work saved");
  EXPECT_TRUE(HasLine(Status(job),
                      "state: stopped with exit code 10 (stopped on request "
                      "(SIGTERM/SIGINT), work saved), attempt 0, after 4m50s"));
  job.Outcome(0, "requeued", 11, "preempted and requeued");
  EXPECT_TRUE(HasLine(Status(job),
                      "state: requeued with exit code 11 (preempted and requeued), "
                      "attempt 0, after 4m50s; the next attempt starts when Slurm "
                      "runs the job again"));
}

TEST(JobStatusTest, RestartingAndTheNextAttempt) {
  JobFixture job;
  Running(job);
  job.Outcome(0, "restarting", 20, "a worker of this node exited non-zero (the root cause)");
  std::string text = Status(job);
  EXPECT_TRUE(HasLine(text,
                      "state: restarting: attempt 0 failed with exit code 20 (a worker of "
                      "this node exited non-zero (the root cause)) after 4m50s; attempt 1 "
                      "is starting"));
  EXPECT_FALSE(Summarize(ReadJobSnapshot(job.dir()), kNow).over);
  job.BeginAttempt(1, "2026-12-02T10:01:30.000+00:00");
  text = Status(job);
  EXPECT_TRUE(HasLine(text, "state: running, attempt 1, for 10s (job started 5m00s ago)"));
  // The new attempt's workers, not the old attempt's progress.
  EXPECT_TRUE(HasLine(text, "  rank host pid  status"));
  EXPECT_TRUE(HasLine(text, "  3    n2   4403 running"));
}

TEST(JobStatusTest, TotalStepsBeforeTheFirstProgressLine) {
  JobFixture job;
  Running(job);
  job.Write("attempt-0/train.log",
            "2026-12-02T09:58:30.000+00:00 effective batch = 32 per rank x 4 ranks x 1 "
            "accumulation steps = 128; 1200 steps per epoch, 6000 steps in all; lr 0.1\n");
  EXPECT_TRUE(HasLine(Status(job), "eta: 4m00s (step 1198 of 6000)"));
  job.Write("attempt-0/train.log", "");
  EXPECT_EQ(Status(job).find("eta:"), std::string::npos);
}

TEST(JobStatusTest, NoAttemptYetAndUnreadableFiles) {
  JobFixture job;
  EXPECT_TRUE(HasLine(Status(job), "state: starting (no attempt directory yet)"));
  Running(job);
  job.Write("attempt-0/progress/agent-1.json", "{\"unix\": ");
  const std::string text = Status(job);
  EXPECT_NE(text.find("warning: unreadable: attempt-0/progress/agent-1.json: "), std::string::npos)
      << text;
}

TEST(JobStatusTest, JsonForPrograms) {
  JobFixture job;
  Running(job, kNow - 40);
  const nlohmann::json j = nlohmann::json::parse(StatusJson(ReadJobSnapshot(job.dir()), kNow));
  EXPECT_EQ(j["job"], "train-123");
  EXPECT_EQ(j["state"], "running");
  EXPECT_EQ(j["over"], false);
  EXPECT_EQ(j["attempt"], 0);
  EXPECT_EQ(j["exit_code"], nullptr);
  EXPECT_EQ(j["ranks"].size(), 4u);
  EXPECT_EQ(j["ranks"][3]["step"], 1198);
  EXPECT_EQ(j["ranks"][3]["where"], "data");
  EXPECT_DOUBLE_EQ(j["ranks"][3]["progress_age_s"].get<double>(), 52);
  EXPECT_EQ(j["slowest"]["rank"], 3);
  EXPECT_EQ(j["throughput"]["samples_per_s"], 1234);
  EXPECT_EQ(j["total_steps"], 6000);
  EXPECT_DOUBLE_EQ(j["eta_s"].get<double>(), (6000 - 1198) * 0.05);
  EXPECT_EQ(j["checkpoint"], "step-1000");
  EXPECT_EQ(j["warnings"][0], "no update from agent 1 (n2) for 40s: is it alive?");
  job.Outcome(0, "failed", 13, "hung", R"("first_failure":null,"hang":["HANG at step 1200"])");
  const nlohmann::json ended = nlohmann::json::parse(StatusJson(ReadJobSnapshot(job.dir()), kNow));
  EXPECT_EQ(ended["state"], "hung");
  EXPECT_EQ(ended["exit_code"], 13);
  EXPECT_EQ(ended["verdict"][0], "HANG at step 1200");
  EXPECT_EQ(ended["outcome"]["exit_meaning"], "hung");
  EXPECT_EQ(ended["eta_s"], nullptr);
}

TEST(JobStatusTest, WhichDirectoriesAreJobs) {
  JobFixture job;
  job.BeginAttempt(0);
  EXPECT_EQ(ResolveJobDir(job.dir()).dir, job.dir());
  EXPECT_EQ(ResolveJobDir(job.dir() + "/").dir, job.dir());
  const JobRef current = ResolveJobDir(job.dir() + "/current");
  EXPECT_EQ(current.dir, job.dir());
  EXPECT_EQ(current.attempt, std::nullopt);  // `current` means the current one, now and later
  EXPECT_EQ(ResolveJobDir(job.dir() + "/attempt-0").attempt, 0);
  const std::pair<std::string, std::string> bad[] = {
      {job.dir() + "/nope", "job directory '" + job.dir() + "/nope' does not exist"},
      {job.dir() + "/job.yaml", "is a file, not a job directory"},
      {job.dir() + "/checkpoints",
       "' is not a job directory: it holds no manifest.json, job.yaml, events.jsonl or "
       "attempt-<k>/"},
  };
  for (const auto& [path, message] : bad) {
    try {
      (void)ResolveJobDir(path);
      ADD_FAILURE() << path;
    } catch (const common::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
  if (geteuid() != 0) {  // root reads anything
    chmod(job.dir().c_str(), 0);
    EXPECT_THROW((void)ResolveJobDir(job.dir()), common::EnvironmentError);
    chmod(job.dir().c_str(), 0750);
  }
}

}  // namespace
}  // namespace runner
