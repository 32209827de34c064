#pragma once
// How the agents of one job talk to each other: the rendezvous exchange, failure notices while
// workers run, the "all my workers have ended" barrier, and the exit-code agreement.
//
// MpiControlPlane: OpenMPI, for agents started by srun or mpirun. The store control plane
// (runner/control_plane_store.h): TCP through the node-0 agent's store, for agents started by
// hand on each machine (NNODES/NODE_RANK/MASTER_ADDR/MASTER_PORT). LocalControlPlane: a world of
// one without MPI (a lone agent, and tests of the supervisor logic).

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace runner {

class ControlPlane {
 public:
  virtual ~ControlPlane() = default;
  [[nodiscard]] virtual int rank() const = 0;
  [[nodiscard]] virtual int size() const = 0;
  [[nodiscard]] virtual std::string Describe() const = 0;  // "Open MPI v4.1.4 ..." for the manifest

  // Collectives: every agent must call them in the same order.
  // Root 0. None gives every agent every agent's value: that would move agents^2 bytes through
  // one place (node 0's store over TCP) where gather, scatter and broadcast move O(agents).
  [[nodiscard]] virtual std::string Broadcast(const std::string& from_root) = 0;
  // Node 0 gets every agent's value (by rank); the others get nothing.
  [[nodiscard]] virtual std::vector<std::string> Gather(const std::string& mine) = 0;
  // Each agent gets its own item of node 0's `from_root` (one per agent; ignored elsewhere).
  [[nodiscard]] virtual std::string Scatter(const std::vector<std::string>& from_root) = 0;
  [[nodiscard]] virtual int AllReduceMax(int value) = 0;

  // One attempt's notice channel: Notify sends to every other agent, NotifyFirst to agent 0
  // only (from agent 0: nothing), Forward (agent 0) what agent `from` sent it to every agent but
  // `from` and itself, PollNotice receives without blocking. EnterDone starts a
  // non-blocking barrier, PollDone tests it. EndAttempt (after PollDone is true) collects the
  // notices still in flight and returns them.
  virtual void BeginAttempt(int attempt) = 0;
  virtual void Notify(const std::string& notice) = 0;
  virtual void NotifyFirst(const std::string& notice) = 0;
  virtual void Forward(const std::string& notice, int from) = 0;
  [[nodiscard]] virtual std::optional<std::string> PollNotice() = 0;
  virtual void EnterDone() = 0;
  [[nodiscard]] virtual bool PollDone() = 0;
  [[nodiscard]] virtual std::vector<std::string> EndAttempt() = 0;

  // Ends every agent of the job at once with `code` (after this agent has written down why;
  // `reason` is that text, for the agents that cannot be ended from here and must learn it).
  [[noreturn]] virtual void Abort(int code, const std::string& reason) = 0;
};

// Throws common::Error (internal) unless node 0's scatter has one item per agent.
void CheckOneItemPerAgent(const std::vector<std::string>& items, int agents);

// Initialises MPI (MPI_Init_thread, FUNNELED). Throws common::CommunicationError on failure.
[[nodiscard]] std::unique_ptr<ControlPlane> MakeMpiControlPlane();
[[nodiscard]] std::unique_ptr<ControlPlane> MakeLocalControlPlane();

}  // namespace runner
