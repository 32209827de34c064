#include "common/logging.h"

#include <fcntl.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>

#include "common/errors.h"
#include "common/log_writer.h"

namespace common {

namespace {
constexpr const char* kPattern = "%Y-%m-%dT%H:%M:%S.%e%z %-5l [%n] %v";

// The agent's log file, written by its own writer thread (common/log_writer.h): a slow or
// stalled disk never stalls the agent's loop through its own log lines. A line that cannot be
// written (a full disk) or taken in time (a stalled one) is counted in `errors` and dropped; the
// first failure is said on stderr (never through the logger: the counts' reporter logs into this
// file).
class AgentFileSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  AgentFileSink(const std::string& path, std::shared_ptr<LogWriteErrors> errors)
      : errors_(std::move(errors)), writer_(LogWriterOptions{1u << 20, 5}, errors_.get()) {
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
      throw EnvironmentError("cannot open log file '" + path + "': " + std::strerror(errno) +
                             "; check that job.log_root is on a writable filesystem");
    file_ = writer_.AddFile(FdLogSink(fd), path, -1, /*report=*/false);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    writer_.Submit(file_, "", std::string(line.data(), line.size()), 1);
  }
  void flush_() override {}  // called after every line (flush_on): never waits

 public:
  void Wait(double timeout_s) { (void)writer_.Flush(timeout_s); }

 private:
  std::shared_ptr<LogWriteErrors> errors_;  // before writer_, which counts into it to its end
  LogWriter writer_;
  int file_ = -1;
};

}  // namespace

std::shared_ptr<spdlog::logger> MakeConsoleLogger(const std::string& who) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(who, sink);
  logger->set_pattern(kPattern);
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

void SetFileSink(spdlog::logger& logger, const std::string& path,
                 std::shared_ptr<LogWriteErrors> errors) {
  auto sink = std::make_shared<AgentFileSink>(path, std::move(errors));
  sink->set_pattern(kPattern);
  auto& sinks = logger.sinks();
  sinks.erase(std::remove_if(sinks.begin(), sinks.end(),
                             [](const spdlog::sink_ptr& s) {
                               return dynamic_cast<AgentFileSink*>(s.get()) != nullptr;
                             }),
              sinks.end());
  sinks.push_back(sink);
}

void FlushFileSink(spdlog::logger& logger, double timeout_s) {
  for (const spdlog::sink_ptr& sink : logger.sinks()) {
    if (auto* file = dynamic_cast<AgentFileSink*>(sink.get())) file->Wait(timeout_s);
  }
}

std::string Timestamp() {
  timeval now{};
  gettimeofday(&now, nullptr);
  tm local{};
  localtime_r(&now.tv_sec, &local);
  char date[32];
  strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &local);
  char zone[8];
  strftime(zone, sizeof(zone), "%z", &local);
  char out[64];
  snprintf(out, sizeof(out), "%s.%03ld%.3s:%s", date, static_cast<long>(now.tv_usec / 1000), zone,
           zone + 3);
  return out;
}

}  // namespace common
