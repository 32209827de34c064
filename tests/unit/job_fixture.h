#pragma once
// Job directories as the runner and its agents leave them, written file by file for the tests of
// `runner status` and `runner logs`: a two-node job "train-123" of four ranks (n1: ranks 0-1,
// n2: ranks 2-3) whose attempt 0 started at 09:58:20Z, looked at at kNow (10:01:40Z).

#include <sys/stat.h>
#include <sys/time.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/unit/temp_dir.h"

namespace testing_support {

inline constexpr double kNow = 1796205700.0;  // 2026-12-02T10:01:40Z

class JobFixture {
 public:
  JobFixture() : dir_(temp_.path() + "/train-123") {
    std::filesystem::create_directories(dir_ + "/checkpoints");
    Write("manifest.json",
          R"({"job_name":"train","job_id":"123","created":)" + std::to_string(kNow - 300) +
              R"(,"world_size":4,"nodes":[{"node":0,"host":"n1","workers":2},)"
              R"({"node":1,"host":"n2","workers":2}],"agents":[)"
              R"({"agent":0,"host":"n1","node":0,"pid":100,"first_rank":0,"workers":2},)"
              R"({"agent":1,"host":"n2","node":1,"pid":200,"first_rank":2,"workers":2}]})");
    Write("job.yaml", "job:\n  name: train\n");
  }

  [[nodiscard]] const std::string& dir() const { return dir_; }

  // Writes `text` to <job>/<relative>, creating directories on the way.
  void Write(const std::string& relative, const std::string& text) const {
    const std::filesystem::path path = dir_ + "/" + relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  void Append(const std::string& relative, const std::string& text) const {
    std::ofstream(dir_ + "/" + relative, std::ios::app) << text;
  }
  // Sets a file's modification time to `unix`.
  void Touch(const std::string& relative, double unix) const {
    const timeval times[2] = {{static_cast<time_t>(unix), 0}, {static_cast<time_t>(unix), 0}};
    utimes((dir_ + "/" + relative).c_str(), times);
  }

  // attempt-<k>/, `current` pointing at it, and its start and workers in events.jsonl.
  void BeginAttempt(int k, const std::string& started = "2026-12-02T09:58:20.000+00:00") const {
    std::filesystem::create_directories(dir_ + "/attempt-" + std::to_string(k));
    std::filesystem::remove(dir_ + "/current");
    std::filesystem::create_directory_symlink("attempt-" + std::to_string(k), dir_ + "/current");
    const std::string a = std::to_string(k);
    for (int agent = 0; agent < 2; ++agent) {
      const std::string head = R"({"time":")" + started + R"(","event":")";
      const std::string who = R"(","attempt":)" + a + R"(,"agent":)" + std::to_string(agent) +
                              R"(,"host":"n)" + std::to_string(agent + 1) + R"(","node":)" +
                              std::to_string(agent);
      Append("events.jsonl", head + "attempt_started" + who + ",\"world_size\":4}\n");
      for (int r = agent * 2; r < agent * 2 + 2; ++r) {
        Append("events.jsonl", head + "worker_started" + who + ",\"rank\":" + std::to_string(r) +
                                   ",\"pid\":" + std::to_string(4400 + r) + "}\n");
      }
    }
  }

  // One rank of a progress file: at `step` in `where`, heartbeat as old as `age`.
  static std::string Rank(int rank, int step, const std::string& where, double age,
                          const std::string& status = "running") {
    const bool reduce = where.rfind("all-reduce", 0) == 0;
    return R"({"rank":)" + std::to_string(rank) + R"(,"local_rank":)" + std::to_string(rank % 2) +
           R"(,"pid":)" + std::to_string(4400 + rank) + R"(,"published":true,"step":)" +
           std::to_string(step) + R"(,"phase":")" + (reduce ? "all-reduce" : where) +
           R"(","collective":4812,"in_collective":)" + (reduce ? "true" : "false") +
           R"(,"where":")" + where + R"(","heartbeat_age_s":)" + std::to_string(age) +
           R"(,"progress_age_s":)" + std::to_string(age) +
           R"(,"proc_state":"S","wchan":"futex_wait_queue","cpu_s":12.5,"output_age_s":1.0,)"
           R"("status":")" +
           status + R"("})";
  }

  // attempt-<k>/progress/agent-<A>.json written at `unix`.
  void Progress(int k, int agent, double unix, const std::string& state,
                const std::string& ranks) const {
    Write("attempt-" + std::to_string(k) + "/progress/agent-" + std::to_string(agent) + ".json",
          R"({"time":"x","unix":)" + std::to_string(unix) + R"(,"attempt":)" + std::to_string(k) +
              R"(,"agent":)" + std::to_string(agent) + R"(,"host":"n)" + std::to_string(agent + 1) +
              R"(","node":)" + std::to_string(agent) + R"(,"state":")" + state +
              R"(","hang_timeout_s":300,"ranks":[)" + ranks + "]}");
  }

  // outcome.json of attempt k (and of the job), as the node-0 agent writes it.
  void Outcome(int k, const std::string& status, int code, const std::string& meaning,
               const std::string& extra = R"("first_failure":null)") const {
    const std::string text =
        R"({"job":"train-123","attempt":)" + std::to_string(k) + R"(,"status":")" + status +
        R"(","exit_code":)" + std::to_string(code) + R"(,"exit_meaning":")" + meaning + R"(",)" +
        extra + R"(,"started_at":)" + std::to_string(kNow - 300) + R"(,"ended_at":)" +
        std::to_string(kNow - 10) + R"(,"duration_s":290,"restarts":0,"agents":[)" +
        R"({"agent":0,"host":"n1","node":0,"code":)" + std::to_string(code) +
        R"(,"reason":"all workers of this node exited with code 0"}]})" + "\n";
    Write("attempt-" + std::to_string(k) + "/outcome.json", text);
    Write("outcome.json", text);
  }

  // Rank 0's training files: metrics.jsonl and train.log at step 1200 of 6000.
  void Training(int k) const {
    const std::string a = "attempt-" + std::to_string(k) + "/";
    Write(a + "metrics.jsonl",
          R"({"step":1100,"epoch":2,"loss":0.6,"lr":0.1,"samples_per_s":1000,"step_ms":60})"
          "\n"
          R"({"step":1200,"epoch":2,"loss":0.5,"lr":0.1,"samples_per_s":1234,"step_ms":50,)"
          R"("data_ms":1,"compute_ms":30,"comm_wait_ms":15,"optimizer_ms":4})"
          "\n"
          R"({"step":1200,"epoch":2,"test_loss":0.4,"test_accuracy":0.9,"test_samples":100})"
          "\n");
    Write(a + "train.log",
          "2026-12-02T10:01:30.000+00:00 epoch 2/5 step 1200/6000 loss 0.5000 lr 0.100000 "
          "samples/s 1234 step 50.0ms (data 1.0 fwd+bwd 30.0 comm-wait 15.0 opt 4.0) eta 4m00s\n");
    Write("checkpoints/latest", "step-1000\n");
    Touch("checkpoints/latest", kNow - 180);
  }

 private:
  TempDir temp_;
  std::string dir_;
};

}  // namespace testing_support
