#include "common/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/time.h>

#include <algorithm>
#include <ctime>

#include "common/errors.h"

namespace common {

namespace {
constexpr const char* kPattern = "%Y-%m-%dT%H:%M:%S.%e%z %-5l [%n] %v";
}  // namespace

std::shared_ptr<spdlog::logger> MakeConsoleLogger(const std::string& who) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(who, sink);
  logger->set_pattern(kPattern);
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

void SetFileSink(spdlog::logger& logger, const std::string& path) {
  try {
    auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/false);
    sink->set_pattern(kPattern);
    auto& sinks = logger.sinks();
    sinks.erase(std::remove_if(sinks.begin(), sinks.end(),
                               [](const spdlog::sink_ptr& s) {
                                 return dynamic_cast<spdlog::sinks::basic_file_sink_mt*>(s.get()) !=
                                        nullptr;
                               }),
                sinks.end());
    sinks.push_back(sink);
  } catch (const spdlog::spdlog_ex& e) {
    throw EnvironmentError("cannot open log file '" + path + "': " + e.what() +
                           "; check that job.log_root is on a writable filesystem");
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
