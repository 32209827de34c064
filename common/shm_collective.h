#pragma once
// Collectives among the workers of one machine through a POSIX shared-memory segment: an
// all-reduce (sum) of float or double buffers, a broadcast of bytes and a barrier. No LibTorch.
//
// The segment (mode 0600, named per job, attempt and node: common/shm_name.h) is created by local
// rank 0 and opened by the others; as soon as every rank has mapped it the name is unlinked, so
// nothing is left in /dev/shm whatever happens to the processes afterwards (SIGKILL included).
// A rank killed before that leaves the name to the runner's agent, which removes it when the
// attempt ends (or, when the agent itself was killed, the next agent on the machine does).
//
// The all-reduce works in chunks of `chunk_bytes` (cache-sized): every rank copies the parts of
// its chunk that the others sum into its own slot, then rank r sums slice r of the chunk over
// all ranks in the fixed order 0..n-1 (its own part read from where it is) into the result area,
// then every rank copies the others' slices of the result out. One rank computes each element,
// so all ranks hold bit-identical sums. Two sets of slots alternate between chunks, so a chunk
// costs two barriers.
//
// Barriers are per-rank sequence counters in the segment: a rank publishes its counter and waits
// for every other rank's, spinning briefly, then sleeping in FUTEX_WAIT with bounded timeouts.
// Between the sleeps it checks that its peers are alive (a peer killed by any signal ends the
// wait within about 200 ms), whether a peer gave up (then it gives up too) and the collective
// timeout. Every failure is a common::CommunicationError naming the collective, the local ranks
// not arrived (with their pids) and the timeout.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace common {

// Shared memory cannot be used on this machine (no /dev/shm, full, not permitted): the caller
// falls back to another transport (train.allreduce auto) or fails (shm). The message says why
// and names the segment.
class ShmUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ShmGroupOptions {
  std::string name;                                // POSIX shm name: "/" and then no further "/"
  int rank = 0;                                    // local rank, 0..size-1
  int size = 1;                                    // local ranks
  std::chrono::milliseconds timeout{1800 * 1000};  // per collective, and for meeting
  size_t chunk_bytes = 256 * 1024;                 // per rank and chunk; a multiple of 64
};

class ShmGroup {
 public:
  // Local rank 0: creates the segment (replacing a stale one of the same name) and reserves its
  // memory. Throws ShmUnavailable when that fails; the name is not left behind.
  [[nodiscard]] static std::unique_ptr<ShmGroup> Create(const ShmGroupOptions& options);
  // The other local ranks: opens the segment rank 0 creates, waiting for it up to the timeout.
  // Throws common::CommunicationError when it does not appear or does not fit `options`.
  [[nodiscard]] static std::unique_ptr<ShmGroup> Join(const ShmGroupOptions& options);
  // Create or Join by rank, then WaitForAll: for tests and callers that need no agreement first.
  [[nodiscard]] static std::unique_ptr<ShmGroup> Open(const ShmGroupOptions& options);

  ~ShmGroup();
  ShmGroup(const ShmGroup&) = delete;
  ShmGroup& operator=(const ShmGroup&) = delete;

  // Waits until every local rank has mapped the segment, then unlinks its name. Throws
  // common::CommunicationError naming the ranks missing after the timeout (the name is unlinked
  // then too).
  void WaitForAll();

  [[nodiscard]] int rank() const { return rank_; }
  [[nodiscard]] int size() const { return size_; }

  // Sums `data` over the local ranks, in place (every rank passes as many values).
  void AllReduceSum(float* data, size_t count);
  void AllReduceSum(double* data, size_t count);
  // Copies `bytes` bytes from local rank `root`'s `data` into every other rank's.
  void Broadcast(void* data, size_t bytes, int root);
  void Barrier();

  struct Header;  // the segment's first bytes (common/shm_layout.h)

 private:
  // A collective, for messages: "all-reduce #3 of 10 float values". Put into words only when it
  // fails, so a collective that succeeds allocates nothing.
  struct Op {
    const char* kind;            // "all-reduce", "broadcast", "barrier"
    uint64_t number;             // its number among this group's collectives
    size_t count = 0;            // values or bytes
    const char* unit = nullptr;  // "float values", "bytes", ...; null: no count
    int root = -1;               // a broadcast's
  };
  [[nodiscard]] static std::string Text(const Op& op);

  ShmGroup(const ShmGroupOptions& options, int fd, void* base, size_t bytes);
  template <typename T>
  void Sum(T* data, size_t count, const char* unit);
  void Sync(const Op& op, std::chrono::steady_clock::time_point deadline);
  void WaitFor(int peer, uint32_t seq, const Op& op,
               std::chrono::steady_clock::time_point deadline);
  [[noreturn]] void Fail(const Op& op, const std::string& why);
  void CheckPeers(const Op& op);
  [[nodiscard]] std::string Missing(uint32_t seq) const;
  [[nodiscard]] std::string Describe(const std::string& what) const;
  [[nodiscard]] char* Slot(int set, int rank) const;
  [[nodiscard]] char* Result(int set) const;

  std::string name_;
  int rank_;
  int size_;
  std::chrono::milliseconds timeout_;
  size_t chunk_;
  int fd_;
  void* base_;
  size_t bytes_;
  Header* header_;
  bool unlinked_ = false;
  uint32_t seq_ = 0;                 // barriers passed
  uint64_t step_ = 0;                // chunks moved (selects the set of slots)
  uint64_t collectives_ = 0;         // collectives started, for messages
  std::vector<int> pidfds_;          // per peer; -1: none (self, or no pidfd_open)
  std::vector<const void*> inputs_;  // a sum's inputs, one per rank
  std::chrono::steady_clock::time_point next_check_;
};

}  // namespace common
