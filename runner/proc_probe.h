#pragma once
// What /proc says of a worker process, for the hang watchdog: its scheduler state (running,
// sleeping, uninterruptible "D" with the kernel function it waits in, stopped "T"), and the CPU
// time it has used. Workers that publish no heartbeat are judged by this (and by their output)
// alone.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace runner {

struct ProcSample {
  char state = '?';   // R S D T t Z X I ...
  double cpu_s = 0;   // user + system time of the process (all threads)
  std::string wchan;  // where a sleeping process waits in the kernel; "" when unknown or running
};

// "running", "sleeping", "uninterruptible (D)", "stopped (T)", "traced (t)", "zombie", ...
[[nodiscard]] std::string DescribeProcState(char state);

// Parses /proc/<pid>/stat (the command name may hold spaces and parentheses: the state follows
// the last ')'). nullopt when the text is not such a line.
[[nodiscard]] std::optional<ProcSample> ParseProcStat(std::string_view stat, long ticks_per_second);

// The one child of `pid` (the worker under the runner's shim, runner/process.h); `pid` itself
// when it has none or several.
[[nodiscard]] int WorkerPidUnder(int pid);

// The caught-signals mask of /proc/<pid>/status ("SigCgt:\t0000000000004a02"); nullopt when the
// text has none.
[[nodiscard]] std::optional<uint64_t> ParseCaughtSignals(std::string_view status);

// Whether the worker under the shim `pid` has a handler for `signal` now (a relayed SIGUSR1 would
// kill one that has none yet). True when it cannot be told (gone, /proc unreadable): nothing left
// to protect.
[[nodiscard]] bool CatchesSignal(int pid, int signal);

// Reads /proc/<pid>/stat and /proc/<pid>/wchan; nullopt when the process is gone.
[[nodiscard]] std::optional<ProcSample> ReadProcSample(int pid);

}  // namespace runner
