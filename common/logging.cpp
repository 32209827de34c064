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

namespace common {

namespace {
constexpr const char* kPattern = "%Y-%m-%dT%H:%M:%S.%e%z %-5l [%n] %v";

// The agent's log file: one write(2) per line on an O_APPEND descriptor. A line that cannot be
// written (a full disk) is counted in `errors` and dropped; the first failure is said on stderr
// (never through the logger: this sink is inside it).
class AgentFileSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  AgentFileSink(std::string path, std::shared_ptr<LogWriteErrors> errors)
      : path_(std::move(path)), errors_(std::move(errors)) {
    fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd_ < 0)
      throw EnvironmentError("cannot open log file '" + path_ + "': " + std::strerror(errno) +
                             "; check that job.log_root is on a writable filesystem");
  }
  ~AgentFileSink() override { close(fd_); }
  AgentFileSink(const AgentFileSink&) = delete;
  AgentFileSink& operator=(const AgentFileSink&) = delete;

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    size_t done = 0;
    while (done < line.size()) {
      const ssize_t n = write(fd_, line.data() + done, line.size() - done);
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        Lost(n < 0 ? errno : ENOSPC, line.size() - done);
        return;
      }
    }
  }
  void flush_() override {}

 private:
  void Lost(int error, size_t bytes) {
    const bool first = errors_ == nullptr || errors_->Record(path_, error, bytes, 1, -1, false);
    if (!first || said_) return;
    said_ = true;
    const std::string text = Timestamp() + " error " + DescribeFirstWriteError(path_, error) + "\n";
    (void)!write(STDERR_FILENO, text.data(), text.size());
  }
  std::string path_;
  std::shared_ptr<LogWriteErrors> errors_;
  int fd_ = -1;
  bool said_ = false;
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
