#include "runner/worker_runner.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstddef>

#include "common/errors.h"
#include "common/utf8.h"

namespace runner {

ProcessWorkerRunner::Slot& ProcessWorkerRunner::At(int worker) {
  auto it = slots_.find(worker);
  if (it == slots_.end()) {
    throw common::Error(common::kExitInternal,
                        "worker index " + std::to_string(worker) + " was never started");
  }
  return it->second;
}

namespace {

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

ProcessWorkerRunner::~ProcessWorkerRunner() { FlushConsole(/*all=*/true); }

void ProcessWorkerRunner::OpenLog(int worker, int rank, const std::string& log_path,
                                  bool mirror_to_console) {
  // Global rank 0's output also reaches this agent's console (and Slurm's .out file), and so do
  // every rank's warnings and errors, collapsed across ranks.
  RankLog& log = slots_[worker].log.emplace(log_path, 20, mirror_to_console ? "rank 0 | " : "",
                                            write_errors_, rank, writer_.get());
  if (mirror_to_console) console_.set_shown_rank(rank);
  log.set_observer([this, rank](const std::string& stamp, const std::string& text) {
    if (IsWarningOrError(text)) console_.Add(rank, stamp, text, SteadySeconds());
  });
}

void ProcessWorkerRunner::FlushConsole(bool all) {
  for (const std::string& line : console_.Flush(SteadySeconds(), all)) {
    WriteToConsole(common::PrintableText(line) + "\n", write_errors_);
  }
}

int ProcessWorkerRunner::Start(int worker, const SpawnRequest& request) {
  Slot& slot = At(worker);
  SpawnRequest with_shim = request;
  with_shim.shim = shim_;
  slot.process.emplace(ChildProcess::Spawn(with_shim));
  return static_cast<int>(slot.process->pid());
}

void ProcessWorkerRunner::Signal(int worker, int signal) {
  Slot& slot = At(worker);
  if (slot.process) slot.process->Signal(signal);
}

void ProcessWorkerRunner::Note(int worker, const std::string& line) {
  Slot& slot = At(worker);
  if (slot.log) slot.log->Note(line);
}

void ProcessWorkerRunner::Drain(Slot& slot) {
  char buffer[65536];
  while (slot.process->output_fd() >= 0) {
    const ssize_t n = read(slot.process->output_fd(), buffer, sizeof(buffer));
    if (n > 0) {
      slot.log->Feed(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) slot.process->CloseOutput();
    break;
  }
}

WaitResult ProcessWorkerRunner::Wait(double timeout_s) {
  std::vector<pollfd> fds;
  std::vector<Slot*> owners;
  for (auto& [index, slot] : slots_) {
    if (slot.process && slot.process->output_fd() >= 0) {
      fds.push_back({slot.process->output_fd(), POLLIN, 0});
      owners.push_back(&slot);
    }
  }
  const auto nanos = static_cast<int64_t>(timeout_s * 1e9);
  timespec timeout{static_cast<time_t>(nanos / 1000000000), static_cast<long>(nanos % 1000000000)};
  if (ppoll(fds.data(), fds.size(), &timeout, &WaitMask()) > 0) {
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents != 0) Drain(*owners[i]);
    }
  }
  WaitResult result;
  result.signals = TakeSignals();
  // SIGCHLD may coalesce, so always look at every worker.
  for (auto& [index, slot] : slots_) {
    int status = 0;
    if (!slot.process || slot.reported || !slot.process->TryReap(&status)) continue;
    Drain(slot);  // the output written just before the end
    slot.process->CloseOutput();
    // Whatever the worker left in its process group goes now, while the group id is still held
    // by its members (never later, when the number could belong to someone else).
    slot.process->Signal(SIGKILL);
    slot.reported = true;
    slot.log->Finish();
    slot.log->Note("worker " + DescribeWaitStatus(status));
    const auto& tail = slot.log->tail();
    result.ended.push_back({index, status, std::vector<std::string>(tail.begin(), tail.end())});
  }
  const bool all_ended = std::all_of(slots_.begin(), slots_.end(), [](const auto& entry) {
    return !entry.second.process || entry.second.reported;
  });
  FlushConsole(all_ended);
  if (all_ended && !flushed_ && !slots_.empty()) {
    // Everything the logs accepted is on disk (or counted lost) before the agent reports.
    flushed_ = true;
    writer_->Flush();
  }
  return result;
}

namespace {

class RealClock : public Clock {
 public:
  Moment Now() override {
    const auto steady = std::chrono::steady_clock::now().time_since_epoch();
    const auto unix = std::chrono::system_clock::now().time_since_epoch();
    return {std::chrono::duration<double>(steady).count(),
            std::chrono::duration<double>(unix).count()};
  }
};

}  // namespace

Clock& SystemClock() {
  static RealClock clock;
  return clock;
}

}  // namespace runner
