// The store control plane's rendezvous, liveness thread and goodbyes, and node 0's hosting of
// the store (runner/control_plane_store.h has the keys).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/errors.h"
#include "common/record.h"
#include "runner/control_plane_store_detail.h"
#include "runner/signals.h"
#include "runner/store_server.h"

namespace runner {

namespace store_plane {

namespace {

using namespace std::chrono_literals;

std::string Seconds(double s) {
  std::string text = std::to_string(static_cast<int64_t>(s * 10 + 0.5) / 10.0);
  text.erase(text.find_last_not_of('0') + 1);
  if (text.back() == '.') text.pop_back();
  return text + " s";
}

Member ParseMember(const std::string& text, int rank) {
  const common::RecordReader in(text, "rendezvous record of node rank " + std::to_string(rank));
  return {in.String("host"), in.Int32("pid", 0)};
}

}  // namespace

std::string StoreControlPlane::Where() const {
  return "node rank " + std::to_string(rank()) + " (host " + options_.host + ")";
}

std::string StoreControlPlane::Name(int r) const {
  if (static_cast<size_t>(r) >= members_.size()) return "node rank " + std::to_string(r);
  return "node rank " + std::to_string(r) + " (host " + members_[static_cast<size_t>(r)].host +
         ", pid " + std::to_string(members_[static_cast<size_t>(r)].pid) + ")";
}

void StoreControlPlane::Join() {
  const Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(options_.rendezvous_timeout_s));
  const bool host = rank() == 0 && options_.hosted;
  client_ = std::make_unique<StoreClient>(
      host ? options_.hosted->address() : options_.master_addr,
      host ? options_.hosted->port() : options_.master_port, options_.rendezvous_timeout_s,
      options_.request_timeout_s, what_,
      [] { StopIfRequested("while trying to reach node 0 at the rendezvous"); });
  const std::string me = common::RecordWriter()
                             .Add("host", options_.host)
                             .Add("pid", static_cast<int>(getpid()))
                             .Add("nnodes", size())
                             .str();
  if (rank() == 0) client_->Set(Key("nnodes"), me);
  CheckNodeCount(deadline);
  TakeNodeRank();
  client_->Set(RankKey("agent", rank()), me);
  if (client_->Add(Key("joined"), 1) == size()) client_->Set(Key("joined/go"), "1");
  WaitForEveryone(deadline);
  // Only node 0 names the others (its liveness thread): N records to each of N agents would be
  // N^2 bytes through node 0's store.
  if (rank() != 0) return;
  std::vector<std::string> keys;
  for (int r = 0; r < size(); ++r) keys.push_back(RankKey("agent", r));
  const std::vector<std::string> records = client_->MultiGet(keys);
  for (int r = 0; r < size(); ++r) members_.push_back(ParseMember(records[size_t(r)], r));
}

// Every agent must be told the same NNODES: node 0's is in the store before anyone joins.
void StoreControlPlane::CheckNodeCount(Clock::time_point deadline) {
  if (rank() == 0) return;
  std::string record;
  while ((record = client_->Get(Key("nnodes"))).empty() && Clock::now() < deadline) {
    StopIfRequested("while waiting for node 0 at the rendezvous");
    std::this_thread::sleep_for(20ms);
  }
  if (record.empty()) {
    throw common::CommunicationError(what_ + " answers but node 0 never registered in it within " +
                                     Seconds(options_.rendezvous_timeout_s) +
                                     "; is something else listening on that port?");
  }
  const common::RecordReader in(record, "node 0's rendezvous record");
  const int theirs = in.Int32("nnodes", 1);
  if (theirs == size()) return;
  // Node 0 and everyone else must stop waiting too (joined/go wakes those already waiting).
  const std::string reason = "NNODES disagree: " + Where() +
                             " has NNODES=" + std::to_string(size()) + " but node rank 0 (host " +
                             in.String("host") + ") has NNODES=" + std::to_string(theirs) +
                             "; give every machine the same NNODES (and --nnodes)";
  client_->Set(Key("abort"), common::RecordWriter()
                                 .Add("code", static_cast<int>(common::kExitEnvironment))
                                 .Add("node_rank", rank())
                                 .Add("host", options_.host)
                                 .Add("reason", reason)
                                 .str());
  client_->Set(Key("joined/go"), "1");
  throw common::EnvironmentError(reason);
}

void StoreControlPlane::TakeNodeRank() {
  if (client_->Add(RankKey("join", rank()), 1) == 1) return;
  // Someone holds this rank; its record follows its ADD at once.
  std::string holder;
  for (int i = 0; i < 100 && (holder = client_->Get(RankKey("agent", rank()))).empty(); ++i)
    std::this_thread::sleep_for(20ms);
  std::string who = "another agent";
  if (!holder.empty()) {
    const Member m = ParseMember(holder, rank());
    who = "host " + m.host + " (pid " + std::to_string(m.pid) + ")";
  }
  throw common::EnvironmentError(
      "NODE_RANK=" + std::to_string(rank()) + " is taken: " + who +
      " joined the job with it first; every machine needs its own NODE_RANK, 0.." +
      std::to_string(size() - 1) + " for NNODES=" + std::to_string(size()) + " (this is host " +
      options_.host + ")");
}

// Blocks at the store until the last agent to join sets joined/go (a WAIT, answered when the key
// is set; no polling), in slices of a second for a stop signal and the deadline: a WAIT and its
// CANCEL_WAIT per agent and second while the others start. An agent that aborts the rendezvous sets
// joined/go as well: the others read why at once.
void StoreControlPlane::WaitForEveryone(Clock::time_point deadline) {
  while (true) {
    const double left = std::chrono::duration<double>(deadline - Clock::now()).count();
    if (left > 0 && client_->Wait({Key("joined/go")}, std::min(1.0, left))) {
      CheckAlarms(client_->Get(Key("abort")), "");
      return;
    }
    if (Clock::now() >= deadline) break;
    StopIfRequested("while waiting for the other agents at the rendezvous");
  }
  std::vector<std::string> keys;
  for (int r = 0; r < size(); ++r) keys.push_back(RankKey("agent", r));
  const std::vector<std::string> records = client_->MultiGet(keys);
  std::string missing;
  std::string here;
  for (int r = 0; r < size(); ++r) {
    const std::string& record = records[static_cast<size_t>(r)];
    if (record.empty()) {
      missing += (missing.empty() ? "" : ", ") + std::to_string(r);
    } else {
      here += (here.empty() ? "" : ", ") + std::to_string(r) + " on " + ParseMember(record, r).host;
    }
  }
  const std::string reason =
      "the rendezvous at " + what_ + " timed out after " + Seconds(options_.rendezvous_timeout_s) +
      " (launch.rendezvous_timeout_s): node rank(s) " + missing +
      " of NNODES=" + std::to_string(size()) + " never arrived (here: " + here +
      "). Start the runner on the missing machine(s) with their NODE_RANK and the same NNODES, "
      "MASTER_ADDR and MASTER_PORT";
  client_->Set(Key("abort"), common::RecordWriter()
                                 .Add("code", static_cast<int>(common::kExitRendezvous))
                                 .Add("node_rank", rank())
                                 .Add("host", options_.host)
                                 .Add("reason", reason)
                                 .str());
  client_->Set(Key("joined/go"), "1");
  if (rank() == 0) std::this_thread::sleep_for(1s);  // the others read why from node 0's store
  throw common::CommunicationError(reason);
}

// Node 0: an agent's liveness connection that closes is an agent gone (killed, crashed), known at
// once instead of after lost_after_s of silence, unless it said goodbye first (it always does
// before closing when it ends normally or aborts).
void StoreControlPlane::WatchConnections() {
  if (rank() != 0 || !options_.hosted) return;
  options_.hosted->SetCloseObserver([this](const std::string& peer) {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_peers_.insert(peer);
  });
}

// The liveness connection, before the agent goes on (so that node 0 knows where its beats come
// from before there are workers to lose).
void StoreControlPlane::ConnectBeat() {
  const bool host = rank() == 0 && options_.hosted;
  // A store slow to answer is not a lost one: on a loaded node 0 its thread can wait seconds for
  // a core (256 agents on 2 cores: 5 s, and a healthy job ended). A store that is gone closes the
  // connection at once; only a machine cut off takes this long.
  const double request_timeout_s = 3 * options_.lost_after_s;
  beat_ = std::make_unique<StoreClient>(host ? options_.hosted->address() : options_.master_addr,
                                        host ? options_.hosted->port() : options_.master_port,
                                        options_.lost_after_s, request_timeout_s, what_);
  if (rank() != 0) beat_->Set(RankKey("beat_from", rank()), beat_->LocalName());
}

// The liveness thread: bumps this agent's counter; node 0 also watches everyone's.
void StoreControlPlane::Live() {
  std::vector<int64_t> last(static_cast<size_t>(size()), -1);
  std::vector<Clock::time_point> changed(static_cast<size_t>(size()), Clock::now());
  std::unique_ptr<StoreClient> beat = std::move(beat_);
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    lock.unlock();
    try {
      (void)beat->Add(RankKey("alive", rank()), 1);
      if (rank() == 0) {
        // The connections that closed before the keys are read: an agent writes where its
        // beats come from, and says goodbye when it ends, before its connection closes; so
        // one closed here whose agent has no goodbye in what is read next is gone for good.
        std::set<std::string> closed;
        {
          std::lock_guard<std::mutex> guard(mutex_);
          closed.swap(closed_peers_);
        }
        std::vector<std::string> keys;
        for (int r = 0; r < size(); ++r) keys.push_back(RankKey("alive", r));
        for (int r = 0; r < size(); ++r) keys.push_back(RankKey("bye", r));
        // Where each agent's beats come from matters only once some connection has closed.
        for (int r = 0; r < size() && !closed.empty(); ++r) keys.push_back(RankKey("beat_from", r));
        const std::vector<std::string> values = beat->MultiGet(keys);
        CheckLiveness(values, last, changed, closed);
        const std::string lost = [&] {
          std::lock_guard<std::mutex> guard(mutex_);
          return lost_message_;
        }();
        if (!lost.empty() && beat->Get(Key("lost")).empty()) beat->Set(Key("lost"), lost);
      }
    } catch (const std::exception& e) {
      lock.lock();
      live_error_ = e.what();
      return;
    }
    lock.lock();
    wake_.wait_for(lock, std::chrono::duration<double>(options_.heartbeat_s),
                   [this] { return stop_; });
  }
}

void StoreControlPlane::CheckLiveness(const std::vector<std::string>& values,
                                      std::vector<int64_t>& last,
                                      std::vector<Clock::time_point>& changed,
                                      const std::set<std::string>& closed) {
  const Clock::time_point now = Clock::now();
  const size_t n = static_cast<size_t>(size());
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t r = 1; r < n; ++r) {
    if (!values[n + r].empty() || lost_ranks_.count(static_cast<int>(r))) continue;
    std::string why;
    const int64_t count =
        ParseCount(values[r], "agent " + std::to_string(r) + "'s liveness counter");
    if (values.size() == 3 * n && !values[2 * n + r].empty() && closed.count(values[2 * n + r])) {
      why =
          " is gone: its agent's connection to the job's store closed without a goodbye (the "
          "agent was killed or crashed, or its connection broke)";
    } else if (count != last[r]) {
      last[r] = count;
      changed[r] = now;
      continue;
    } else {
      const double silent = std::chrono::duration<double>(now - changed[r]).count();
      if (silent < options_.lost_after_s) continue;
      why = " stopped answering: its agent gave no sign of life for " + Seconds(silent) +
            " (killed, stopped, or its machine is down or cut off)";
    }
    lost_ranks_.insert(static_cast<int>(r));
    if (lost_message_.empty()) {
      lost_message_ = Name(static_cast<int>(r)) + why + "; the job cannot go on without it";
    }
  }
}

void StoreControlPlane::SayGoodbye() {
  try {
    client_->Set(RankKey("bye", rank()), "1");
    (void)client_->Get(RankKey("bye", rank()));  // answered: the store has it
  } catch (const std::exception&) {
    // Node 0 is gone already: nobody to tell.
  }
}

void StoreControlPlane::WaitForGoodbyes(double seconds) {
  const Clock::time_point deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                        std::chrono::duration<double>(seconds));
  std::vector<std::string> keys;
  for (int r = 1; r < size(); ++r) keys.push_back(RankKey("bye", r));
  try {
    while (Clock::now() < deadline) {
      const std::vector<std::string> byes = client_->MultiGet(keys);
      bool all = true;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        for (int r = 1; r < size(); ++r)
          all = all && (!byes[size_t(r - 1)].empty() || lost_ranks_.count(r) > 0);
      }
      if (all) return;
      std::this_thread::sleep_for(20ms);
    }
  } catch (const std::exception&) {
    // Only on our own store; nothing left to wait for.
  }
}

}  // namespace store_plane

std::shared_ptr<StoreServer> HostJobStore(
    const StoreControlPlaneOptions& options, const std::function<void(const std::string&)>& warn,
    const std::function<void(const std::string&)>& store_log) {
  const std::string given = options.master_addr + ":" + std::to_string(options.master_port);
  const std::string ip = ResolveIpv4(options.master_addr);
  if (ip.empty()) {
    throw common::CommunicationError(
        options.master_source + " = " + given + ": '" + options.master_addr +
        "' does not resolve to an IPv4 address on host " + options.host +
        ", which hosts the job's store as node 0; set MASTER_ADDR to this machine's address or "
        "name, the same on every machine");
  }
  // Bound once here to tell the common mistakes apart before the store binds for good.
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(options.master_port));
  inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const int err = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 ? 0 : errno;
  close(fd);
  const std::string where = options.master_source + " = " + given + " (" + ip + ")";
  if (err == EADDRINUSE) {
    throw common::CommunicationError(
        where + " is already in use on host " + options.host +
        ", where node 0 must host the job's store: another job or program listens there "
        "(ss -ltnp 'sport = :" +
        std::to_string(options.master_port) +
        "' names it). Pick a free port and give every machine the same MASTER_PORT");
  }
  if (err == EADDRNOTAVAIL) {
    throw common::CommunicationError(
        where + " is not an address of host " + options.host +
        ", but NODE_RANK=0 hosts the job's store there: start node 0 on the machine MASTER_ADDR "
        "names, or set MASTER_ADDR to this machine on every machine");
  }
  if (err != 0) throw common::CommunicationError(where + ": cannot listen: " + std::strerror(err));
  if (warn && ip.rfind("127.", 0) == 0 && options.size > 1) {
    warn(where + " is a loopback address: only agents on this machine (host " + options.host +
         ") can reach the job's store; for several machines set MASTER_ADDR to an address the "
         "others reach");
  }
  // Agents from machines nobody knows yet join here: the store takes any peer until they have
  // met, and then only the job's hosts (runner/agent_job.cpp narrows it).
  StoreServerOptions server;
  server.allow = StoreAllowList();
  server.allow.AddList("any", "the TCP rendezvous, until the agents have met");
  return std::make_shared<StoreServer>(ip, static_cast<uint16_t>(options.master_port), store_log,
                                       std::move(server));
}

}  // namespace runner
