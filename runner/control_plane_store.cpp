// The store control plane's collectives, notices and abort (runner/control_plane_store.h has the
// keys); the rendezvous and the liveness thread are in control_plane_store_join.cpp.

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "common/errors.h"
#include "common/parse_int.h"
#include "common/record.h"
#include "runner/control_plane_store_detail.h"
#include "runner/store_server.h"

namespace runner {

namespace store_plane {

namespace {

using namespace std::chrono_literals;

}  // namespace

int64_t ParseCount(const std::string& text, const std::string& what) {
  if (text.empty()) return 0;  // a counter nobody has added to yet
  if (std::optional<int64_t> n = common::ParseInt64(text)) return *n;
  throw common::CommunicationError("the job's store holds '" + text + "' for " + what +
                                   ", which the agents write as a counter: another program wrote "
                                   "into the job's store (see launch.store_allow)");
}

StoreControlPlane::StoreControlPlane(const StoreControlPlaneOptions& options) : options_(options) {
  what_ = "the job's store at " + options_.master_source + " = " + options_.master_addr + ":" +
          std::to_string(options_.master_port);
  Join();
  WatchConnections();
  try {
    ConnectBeat();
  } catch (...) {
    // No destructor runs after a throw here: the store must not call back into this object.
    if (rank() == 0 && options_.hosted) options_.hosted->SetCloseObserver(nullptr);
    throw;
  }
  live_thread_ = std::thread([this] { Live(); });
}

StoreControlPlane::~StoreControlPlane() {
  // The others may still read the last collective from node 0's store: node 0 waits for their
  // goodbyes (or their loss) before the store goes.
  if (rank() == 0) {
    WaitForGoodbyes(10);
  } else {
    SayGoodbye();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (live_thread_.joinable()) live_thread_.join();
  if (rank() == 0 && options_.hosted) options_.hosted->SetCloseObserver(nullptr);
}

std::string StoreControlPlane::Describe() const {
  return "none: TCP through the job's store at " + options_.master_addr + ":" +
         std::to_string(options_.master_port);
}

std::string StoreControlPlane::AttemptKey(const std::string& tail) const {
  return Key("a" + std::to_string(attempt_) + "/" + tail);
}

void StoreControlPlane::CheckAlarms(const std::string& abort, const std::string& lost) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!live_error_.empty()) throw common::CommunicationError(live_error_);
  }
  if (!abort.empty()) {
    const common::RecordReader in(abort, "abort record in the job's store");
    const int from = in.Int32("node_rank", 0, size() - 1);
    if (from != rank()) {
      abort_seen_ = true;
      throw common::Error(static_cast<common::ExitCode>(in.Int32("code", 1, 255)),
                          "node rank " + std::to_string(from) + " (host " + in.String("host") +
                              ") ended the job: " + in.String("reason"));
    }
  }
  if (!lost.empty()) throw common::CommunicationError(lost);
}

// Blocks at the store until `key` exists (WAIT: the store answers when it is set, no polling),
// in slices of kWaitSlice so an abort or a lost agent is seen between them.
void StoreControlPlane::WaitKey(const std::string& key) {
  constexpr double kWaitSlice = 0.5;
  while (!client_->Wait({key}, kWaitSlice)) {
    const std::vector<std::string> v = client_->MultiGet({Key("abort"), Key("lost")});
    CheckAlarms(v[0], v[1]);
  }
}

// Counts this agent in at `prefix`/n; the last to arrive sets `prefix`/go, which the others wait
// for.
void StoreControlPlane::Arrive(const std::string& prefix) {
  if (client_->Add(prefix + "/n", 1) == size()) client_->Set(prefix + "/go", "1");
}

// Node 0 waits until every agent has set its value, then reads them in one request.
std::vector<std::string> StoreControlPlane::Gather(const std::string& mine) {
  const std::string base = "c" + std::to_string(++seq_);
  client_->Set(RankKey(base, rank()), mine);
  Arrive(Key(base));
  if (rank() != 0) return {};
  WaitKey(Key(base + "/go"));
  std::vector<std::string> keys;
  for (int r = 0; r < size(); ++r) keys.push_back(RankKey(base, r));
  return client_->MultiGet(keys);
}

// Node 0 sets one key per agent; each agent waits for its own.
std::string StoreControlPlane::Scatter(const std::vector<std::string>& from_root) {
  const std::string base = "c" + std::to_string(++seq_);
  if (rank() == 0) {
    CheckOneItemPerAgent(from_root, size());
    for (int r = 1; r < size(); ++r)
      client_->Set(RankKey(base, r), from_root[static_cast<size_t>(r)]);
    return from_root[0];
  }
  WaitKey(RankKey(base, rank()));
  return client_->Get(RankKey(base, rank()));
}

std::string StoreControlPlane::Broadcast(const std::string& from_root) {
  const std::string base = "c" + std::to_string(++seq_);
  if (rank() == 0) {
    client_->Set(Key(base + "/v"), from_root);
    return from_root;
  }
  WaitKey(Key(base + "/v"));
  return client_->Get(Key(base + "/v"));
}

// A gather and a broadcast: each agent reads one value, not every agent's.
int StoreControlPlane::AllReduceMax(int value) {
  int result = value;
  for (const std::string& text : Gather(std::to_string(value)))
    result = std::max(result, static_cast<int>(ParseCount(text, "an agent's value to agree on")));
  return static_cast<int>(ParseCount(Broadcast(std::to_string(result)), "the agreed value"));
}

void StoreControlPlane::BeginAttempt(int attempt) {
  attempt_ = attempt;
  seen_ = 0;
  seen_first_ = 0;
  done_count_ = 0;
  entered_done_ = false;
  inbox_.clear();
  last_fetch_ = {};
}

// One notice on `channel` ("n": read by every agent, "f": by node 0 alone): its count
// <channel>n, its key <channel><k>, its first line the agents that do not read it back.
void StoreControlPlane::Post(const std::string& channel, const std::string& senders,
                             const std::string& notice) {
  const int64_t n = client_->Add(AttemptKey(channel + "n"), 1);
  client_->Set(AttemptKey(channel + std::to_string(n)), senders + "\n" + notice);
}

void StoreControlPlane::Notify(const std::string& notice) {
  Post("n", std::to_string(rank()), notice);
}

void StoreControlPlane::Forward(const std::string& notice, int from) {
  Post("n", std::to_string(from) + "," + std::to_string(rank()), notice);
}

void StoreControlPlane::NotifyFirst(const std::string& notice) {
  if (rank() != 0) Post("f", std::to_string(rank()), notice);
}

// One poll: the notice counts (node 0: both channels), the done count and the alarms in one
// request, then the new notices (one counted but not yet written is read at the next poll).
void StoreControlPlane::Fetch() {
  last_fetch_ = Clock::now();
  std::vector<std::string> keys = {AttemptKey("nn"), AttemptKey("done"), Key("abort"), Key("lost")};
  if (rank() == 0) keys.push_back(AttemptKey("fn"));
  const std::vector<std::string> v = client_->MultiGet(keys);
  CheckAlarms(v[2], v[3]);
  done_count_ = ParseCount(v[1], AttemptKey("done"));
  ReadNotices("n", ParseCount(v[0], AttemptKey("nn")), seen_);
  if (rank() == 0) ReadNotices("f", ParseCount(v[4], AttemptKey("fn")), seen_first_);
}

// The notices `prefix`<seen+1>..`prefix`<count> into the inbox, but those whose first line (the
// agents that sent or forwarded it, comma-separated) names this agent.
void StoreControlPlane::ReadNotices(const std::string& prefix, int64_t count, int64_t& seen) {
  if (count <= seen) return;
  std::vector<std::string> keys;
  for (int64_t k = seen + 1; k <= count; ++k)
    keys.push_back(AttemptKey(prefix + std::to_string(k)));
  const std::string me = "," + std::to_string(rank()) + ",";
  for (const std::string& value : client_->MultiGet(keys)) {
    const size_t newline = value.find('\n');
    if (newline == std::string::npos) break;
    ++seen;
    if (("," + value.substr(0, newline) + ",").find(me) == std::string::npos)
      inbox_.push_back(value.substr(newline + 1));
  }
}

std::optional<std::string> StoreControlPlane::PollNotice() {
  if (inbox_.empty() &&
      Clock::now() - last_fetch_ >= std::chrono::duration<double>(options_.poll_s)) {
    Fetch();
  }
  if (inbox_.empty()) return std::nullopt;
  std::string notice = std::move(inbox_.front());
  inbox_.pop_front();
  return notice;
}

void StoreControlPlane::EnterDone() {
  if (entered_done_) return;
  (void)client_->Add(AttemptKey("done"), 1);
  entered_done_ = true;
}

bool StoreControlPlane::PollDone() {
  if (!entered_done_) return false;
  if (done_count_ < size() &&
      Clock::now() - last_fetch_ >= std::chrono::duration<double>(options_.poll_s)) {
    Fetch();
  }
  return done_count_ >= size();
}

std::vector<std::string> StoreControlPlane::EndAttempt() {
  // Once every agent is here nobody sends any more, and each wrote its notices before it came:
  // the count is final and every counted notice is there.
  Arrive(AttemptKey("end"));
  WaitKey(AttemptKey("end/go"));
  Fetch();
  std::vector<std::string> late(inbox_.begin(), inbox_.end());
  inbox_.clear();
  return late;
}

void StoreControlPlane::Abort(int code, const std::string& reason) {
  try {
    if (!abort_seen_ && client_->Get(Key("abort")).empty()) {
      client_->Set(Key("abort"), common::RecordWriter()
                                     .Add("code", code)
                                     .Add("node_rank", rank())
                                     .Add("host", options_.host)
                                     .Add("reason", reason)
                                     .str());
    }
    // Node 0's store must outlive the others' reading of the abort.
    if (rank() == 0) {
      WaitForGoodbyes(5);
    } else {
      SayGoodbye();
    }
  } catch (const std::exception&) {
    // The store is gone: the others learn that from their own connections.
  }
  std::_Exit(code);
}

}  // namespace store_plane

double PollInterval(int agents) { return std::max(0.1, agents / 10000.0); }

std::unique_ptr<ControlPlane> MakeStoreControlPlane(const StoreControlPlaneOptions& options) {
  return std::make_unique<store_plane::StoreControlPlane>(options);
}

}  // namespace runner
