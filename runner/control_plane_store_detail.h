#pragma once
// Internals of the store control plane (runner/control_plane_store.h), shared by its files:
// control_plane_store.cpp (collectives, notices, abort) and control_plane_store_join.cpp (the
// rendezvous, the liveness thread, hosting the store). Internal to runner/.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runner/control_plane.h"
#include "runner/control_plane_store.h"
#include "runner/store_client.h"

namespace runner::store_plane {

using Clock = std::chrono::steady_clock;

inline std::string Key(const std::string& tail) { return "/runner/" + tail; }
inline std::string RankKey(const std::string& what, int rank) {
  return Key(what + "/" + std::to_string(rank));
}

// A counter kept in the store (ADD); "" (never added to) is 0. Strict: anything else throws
// common::CommunicationError naming `what` and the raw text.
[[nodiscard]] int64_t ParseCount(const std::string& text, const std::string& what);

// What one agent told the others when it joined.
struct Member {
  std::string host;
  int pid = 0;
};

class StoreControlPlane final : public ControlPlane {
 public:
  explicit StoreControlPlane(const StoreControlPlaneOptions& options);
  ~StoreControlPlane() override;

  int rank() const override { return options_.rank; }
  int size() const override { return options_.size; }
  std::string Describe() const override;

  std::string Broadcast(const std::string& from_root) override;
  std::vector<std::string> Gather(const std::string& mine) override;
  std::string Scatter(const std::vector<std::string>& from_root) override;
  int AllReduceMax(int value) override;

  void BeginAttempt(int attempt) override;
  void Notify(const std::string& notice) override;
  void NotifyFirst(const std::string& notice) override;
  void Forward(const std::string& notice, int from) override;
  std::optional<std::string> PollNotice() override;
  void EnterDone() override;
  bool PollDone() override;
  std::vector<std::string> EndAttempt() override;
  [[noreturn]] void Abort(int code, const std::string& reason) override;

 private:
  // control_plane_store_join.cpp
  void Join();
  void CheckNodeCount(Clock::time_point deadline);
  void TakeNodeRank();
  void WaitForEveryone(Clock::time_point deadline);
  void Live();
  void CheckLiveness(const std::vector<std::string>& counters, std::vector<int64_t>& last,
                     std::vector<Clock::time_point>& changed, const std::set<std::string>& closed);
  void WatchConnections();
  void ConnectBeat();
  void SayGoodbye();
  void WaitForGoodbyes(double seconds);
  [[nodiscard]] std::string Where() const;
  [[nodiscard]] std::string Name(int rank) const;

  // control_plane_store.cpp
  // Throws what another agent or the liveness thread reported: an abort, a lost agent.
  void CheckAlarms(const std::string& abort, const std::string& lost);
  void WaitKey(const std::string& key);
  void Arrive(const std::string& prefix);
  void Post(const std::string& channel, const std::string& senders, const std::string& notice);
  void Fetch();
  void ReadNotices(const std::string& prefix, int64_t count, int64_t& seen);
  [[nodiscard]] std::string AttemptKey(const std::string& tail) const;

  StoreControlPlaneOptions options_;
  std::string what_;  // "the job's store at MASTER_ADDR:MASTER_PORT = host:port"
  std::unique_ptr<StoreClient> client_;
  std::vector<Member> members_;  // node 0 only: its liveness thread names the lost
  int64_t seq_ = 0;
  bool abort_seen_ = false;

  // The current attempt's notice channel.
  int attempt_ = 0;
  int64_t seen_ = 0;        // notices read, ours included
  int64_t seen_first_ = 0;  // node 0: notices to it alone read
  int64_t done_count_ = 0;
  bool entered_done_ = false;
  std::deque<std::string> inbox_;
  Clock::time_point last_fetch_{};

  // The liveness thread.
  std::thread live_thread_;
  std::unique_ptr<StoreClient> beat_;  // the liveness connection, until the thread takes it
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::string live_error_;    // what the thread saw go wrong (the store lost), for the main thread
  std::set<int> lost_ranks_;  // node 0: declared lost
  std::string lost_message_;  // node 0: the first of them, for /runner/lost
  // Node 0: the peers ("address:port") of the connections its store saw close since the
  // liveness thread last looked; matched against each agent's /runner/beat_from/<r>.
  std::set<std::string> closed_peers_;
};

}  // namespace runner::store_plane
