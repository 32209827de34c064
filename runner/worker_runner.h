#pragma once
// The mechanism under supervision (runner/supervisor.h asks, never acts itself): starting worker
// processes, signalling them, copying their output into their rank logs, and waiting for output,
// an ended worker or a signal to the agent. ProcessWorkerRunner is the real one (posix_spawn
// through the exec shim, pipes, ppoll with the agent's signal mask); tests use an in-memory fake.
// A clock sits behind an interface for the same reason.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runner/console_lines.h"
#include "runner/job_dir.h"
#include "runner/process.h"
#include "runner/signals.h"
#include "runner/supervision_policy.h"

namespace runner {

struct EndedWorker {
  int worker = 0;                       // index in the attempt's workers
  int status = 0;                       // raw wait status
  std::vector<std::string> last_lines;  // the end of its log, "[runner] worker ..." included
};

struct WaitResult {
  PendingSignals signals;
  std::vector<EndedWorker> ended;
};

class WorkerRunner {
 public:
  virtual ~WorkerRunner() = default;
  // Opens worker `worker`'s (global rank `rank`'s) log; its lines also go to the console when
  // `mirror_to_console`, and its warnings and errors always (runner/console_lines.h).
  // Throws common::EnvironmentError naming the path when it cannot.
  virtual void OpenLog(int worker, int rank, const std::string& log_path,
                       bool mirror_to_console) = 0;
  // Starts worker `worker` (its log open); returns its pid. Throws common::Error naming the
  // command when it cannot be started.
  [[nodiscard]] virtual int Start(int worker, const SpawnRequest& request) = 0;
  virtual void Signal(int worker, int signal) = 0;  // to its whole process group
  // A line of the runner's own in the worker's log.
  virtual void Note(int worker, const std::string& line) = 0;
  // Sleeps up to `timeout_s` for output (copied into the logs), a signal or an ended worker;
  // returns the signals that arrived and the workers that ended (each reported once, with its
  // log finished by a "[runner] worker <how>" line and whatever it left in its group killed).
  [[nodiscard]] virtual WaitResult Wait(double timeout_s) = 0;
};

// Real processes under the exec shim (`shim`: the runner executable; "" runs workers directly).
// Lines the rank logs or the console cannot take (a full disk) are counted in `write_errors`.
// The rank logs are written by one writer thread (common/log_writer.h, `log_options`); when the
// last worker has ended, Wait waits for it (at most log_options.flush_timeout_s), so the counts
// the agent reports next are complete.
class ProcessWorkerRunner : public WorkerRunner {
 public:
  explicit ProcessWorkerRunner(std::string shim, common::LogWriteErrors* write_errors = nullptr,
                               common::LogWriterOptions log_options = {})
      : shim_(std::move(shim)),
        write_errors_(write_errors),
        writer_(std::make_unique<common::LogWriter>(log_options, write_errors)) {}
  ~ProcessWorkerRunner() override;
  ProcessWorkerRunner(const ProcessWorkerRunner&) = delete;
  ProcessWorkerRunner& operator=(const ProcessWorkerRunner&) = delete;
  void OpenLog(int worker, int rank, const std::string& log_path, bool mirror_to_console) override;
  int Start(int worker, const SpawnRequest& request) override;
  void Signal(int worker, int signal) override;
  void Note(int worker, const std::string& line) override;
  WaitResult Wait(double timeout_s) override;

 private:
  struct Slot {
    std::optional<RankLog> log;
    std::optional<ChildProcess> process;
    bool reported = false;
  };
  Slot& At(int worker);
  void Drain(Slot& slot);
  // Prints the console's collapsed warning and error lines that are due (all with `all`).
  void FlushConsole(bool all);
  std::string shim_;
  common::LogWriteErrors* write_errors_;
  std::unique_ptr<common::LogWriter> writer_;  // before slots_: the logs go first
  std::map<int, Slot> slots_;
  bool flushed_ = false;  // the writer was waited for once every worker had ended
  ConsoleCollapser console_;
};

class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual Moment Now() = 0;
};

[[nodiscard]] Clock& SystemClock();

}  // namespace runner
