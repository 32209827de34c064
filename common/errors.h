#pragma once
// Error types, by what the caller can do about them (see common/exit_codes.h).
//
// Each message says what was wrong, where (file:line:column, variable, host, rank), the bad value
// and how to fix it. Only main() catches them all and maps them to exit codes.

#include <stdexcept>
#include <string>

#include "common/exit_codes.h"

namespace common {

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] ExitCode code() const noexcept { return code_; }

 private:
  ExitCode code_;
};

// Bad command line (unknown flag, malformed override). Fix: change the command.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(kExitUsage, message) {}
};

// Bad job config (file, environment or command-line value). Fix: change the config.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& message) : Error(kExitConfig, message) {}
};

// The scheduler's environment is missing, malformed or contradicts itself.
// Fix: change how the job is launched (sbatch/srun/mpirun flags, exported variables).
class EnvironmentError : public Error {
 public:
  explicit EnvironmentError(const std::string& message) : Error(kExitEnvironment, message) {}
};

// Processes could not meet or talk (MPI, c10d store, timeouts). Fix: network, ports, peers.
class CommunicationError : public Error {
 public:
  explicit CommunicationError(const std::string& message) : Error(kExitRendezvous, message) {}
};

// Training itself failed (the loss became NaN or infinite). Fix: the learning rate, clipping, data.
class TrainingError : public Error {
 public:
  explicit TrainingError(const std::string& message) : Error(kExitDiverged, message) {}
};

// A syntax error at a known column of a one-line expression (hostlists, task counts).
// The caller names the variable the text came from.
class ParseError : public std::runtime_error {
 public:
  ParseError(const std::string& message, size_t column)
      : std::runtime_error(message), column_(column) {}
  // 1-based column of the fault in the parsed text.
  [[nodiscard]] size_t column() const noexcept { return column_; }

 private:
  size_t column_;
};

}  // namespace common
