#pragma once
// Progress heartbeats: how a worker tells its agent where it is (step, phase, collective) at a
// cost of a few stores per phase change, readable by the agent even while the worker's main
// thread is blocked or the worker is stopped.
//
// The agent creates one page-sized file per worker on a node-local filesystem (CreateHeartbeat)
// and names it in the worker's environment (RUNNER_HEARTBEAT_FILE). The worker maps it and writes
// the record below in place (HeartbeatWriter, or any program that follows the layout: README.md,
// "Heartbeats from any worker", has a Python helper); the agent reads it with pread
// (ReadHeartbeat). No system call per update: the page is shared memory.
//
// The record, little-endian, at offset 0 of the file:
//   off size field
//     0    8 magic        "RNRHB001" (written last when the writer opens the file)
//     8    4 version      u32, 1
//    12    4 pid          i32, the writer's pid
//    16    8 seq          u64, odd while an update is being written (a seqlock)
//    24    8 beats        u64, +1 on every update: a rank has advanced when this changed
//    32    8 mono_ns      u64, CLOCK_MONOTONIC of the update (Python: time.monotonic_ns())
//    40    8 step         i64, optimizer steps done (or the program's own step counter)
//    48    8 collective   i64, collectives issued so far, counted from 1 in issue order: the one
//                         the rank is in (in_collective 1) or last finished
//    56    4 in_collective i32, 1 while the rank is inside (waiting in) that collective
//    60    4 bucket       i32, 1-based gradient bucket of that collective; 0 when none
//    64    4 buckets      i32, buckets per step; 0 when none
//    68   28 phase        ASCII, NUL-padded: "data", "forward", "backward", "all-reduce",
//                         "optimizer", "evaluation", "checkpoint", "agree", or the program's own
// An update: seq += 1 (odd), write the fields, seq += 1 (even). A reader retries while seq is odd
// or changed under it.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace common {

inline constexpr char kHeartbeatFileEnv[] = "RUNNER_HEARTBEAT_FILE";
inline constexpr size_t kHeartbeatFileSize = 4096;
inline constexpr size_t kHeartbeatPhaseSize = 28;

// One reading of a worker's record.
struct Heartbeat {
  int pid = 0;
  uint64_t beats = 0;
  uint64_t mono_ns = 0;
  int64_t step = 0;
  int64_t collective = 0;
  bool in_collective = false;
  int bucket = 0;
  int buckets = 0;
  std::string phase;

  // "all-reduce #4812 (bucket 2/3)", "data", "checkpoint"
  [[nodiscard]] std::string DescribePhase() const;
};

// Agent side. Creates (or truncates) `path` as kHeartbeatFileSize zero bytes, mode 0600.
// Throws common::EnvironmentError naming the path and errno's text.
void CreateHeartbeat(const std::string& path);

// Agent side. The record in `path`; nullopt when the worker has not opened it (no magic yet),
// when the file is gone or short, or when no consistent read came in a few tries.
[[nodiscard]] std::optional<Heartbeat> ReadHeartbeat(const std::string& path);

// Worker side. Maps the file named by RUNNER_HEARTBEAT_FILE; with the variable unset (not under
// the runner) every call does nothing. Not thread-safe: one thread (the training loop) writes.
inline constexpr char kPhaseExiting[] = "exiting";

class HeartbeatWriter {
 public:
  HeartbeatWriter() = default;  // publishes nothing
  // Throws common::EnvironmentError naming the variable and the path when the file cannot be
  // opened or mapped.
  explicit HeartbeatWriter(const std::string& path);
  ~HeartbeatWriter();
  HeartbeatWriter(const HeartbeatWriter&) = delete;
  HeartbeatWriter& operator=(const HeartbeatWriter&) = delete;
  HeartbeatWriter(HeartbeatWriter&& other) noexcept;
  HeartbeatWriter& operator=(HeartbeatWriter&& other) noexcept;

  [[nodiscard]] bool active() const { return page_ != nullptr; }

  // A phase outside collectives ("data", "forward", ...). kPhaseExiting: the work is saved and
  // the process is exiting (the runner then spares it from a second stop signal's SIGKILL).
  void Phase(std::string_view phase);
  // Numbers the next collective this rank issues (an asynchronous launch) without entering it.
  [[nodiscard]] int64_t Issue() { return ++issued_; }
  // Issues the next collective and waits in it, for example ("all-reduce", 2, 3) for bucket 2
  // of 3. Returns its number.
  int64_t BeginCollective(std::string_view phase, int bucket = 0, int buckets = 0);
  // Waits in collective `number` (issued earlier), e.g. for an asynchronously launched bucket.
  void Wait(std::string_view phase, int64_t number, int bucket = 0, int buckets = 0);
  // The collective is over; the rank goes on in `phase`.
  void EndCollective(std::string_view phase);
  // Optimizer steps done (published with the next update).
  void Step(int64_t step);

  [[nodiscard]] int64_t collective() const { return issued_; }

 private:
  void Write(std::string_view phase, int64_t collective, bool in_collective, int bucket,
             int buckets);

  unsigned char* page_ = nullptr;
  uint64_t beats_ = 0;
  int64_t step_ = 0;
  int64_t issued_ = 0;
  int64_t current_ = 0;  // the collective the last update named
};

// The writer for this process (from the environment), created on first use.
[[nodiscard]] HeartbeatWriter& ProcessHeartbeat();

}  // namespace common
