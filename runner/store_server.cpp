#include "runner/store_server.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/errors.h"
#include "runner/log_throttle.h"
#include "runner/store_connection.h"
#include "runner/store_socket.h"
#include "runner/store_state.h"

namespace runner {

namespace {

// Bytes read from one connection before its requests are served and the others get their turn.
constexpr size_t kReadBudget = size_t{4} << 20;
// Events taken from epoll at once, and connections accepted at once, before the others get their
// turn (the listening socket is level-triggered: the rest wait for the next round).
constexpr int kMaxEvents = 1024;
constexpr int kAcceptBurst = 1024;
// An idle connection keeps at most this much buffer capacity after a large request or reply.
constexpr size_t kIdleCapacity = size_t{64} << 10;

int OpenSpare() { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

}  // namespace

class StoreServer::Impl {
 public:
  Impl(const std::string& address, uint16_t port, LogFn log, StoreServerOptions options)
      : address_(address),
        options_(std::move(options)),
        log_(std::move(log)),
        throttle_(options_.log_burst, options_.log_interval),
        state_([this](const std::string& line) { Log(line); }) {
    limits_.max_key_bytes = std::min(options_.max_key_bytes, store_protocol::kMaxKeyBytes);
    limits_.max_value_bytes = std::min(options_.max_value_bytes, store_protocol::kMaxValueBytes);
    limits_.pause_reading_bytes = options_.pause_reading_bytes;
    // Whether the job's clients fit is the agent's to say (StoreCapacityWarnings): it knows how
    // many there will be, where the cap is only an upper bound.
    (void)store_socket::RaiseOpenFilesLimit(options_.max_connections + kStoreOtherFiles);
    listen_fd_ = store_socket::Listen(address, port, &port_);
    spare_fd_ = OpenSpare();
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0 || pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0 ||
        !Watch(wake_[0], EPOLL_CTL_ADD, EPOLLIN) || !Watch(listen_fd_, EPOLL_CTL_ADD, EPOLLIN)) {
      const std::string why = std::strerror(errno);
      for (int fd : {listen_fd_, spare_fd_, epoll_fd_, wake_[0], wake_[1]}) {
        if (fd >= 0) close(fd);
      }
      throw common::CommunicationError("store: cannot set up its epoll set: " + why);
    }
    thread_ = std::thread([this] { Loop(); });
  }

  ~Impl() {
    stop_ = true;
    char byte = 1;
    (void)!write(wake_[1], &byte, 1);
    if (thread_.joinable()) thread_.join();
    for (auto& [fd, conn] : connections_) close(fd);
    close(listen_fd_);
    if (spare_fd_ >= 0) close(spare_fd_);
    close(epoll_fd_);
    close(wake_[0]);
    close(wake_[1]);
  }

  uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }
  size_t max_connections() const { return options_.max_connections; }

  std::vector<std::string> DescribeWaits() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [fd, missing] : state_.Waits()) {
      std::string keys;
      for (const std::string& key : missing) keys += (keys.empty() ? "" : ", ") + key;
      auto conn = connections_.find(fd);
      out.push_back((conn == connections_.end() ? "?" : conn->second.peer) + " waits for " + keys);
    }
    return out;
  }

  size_t NumKeys() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return state_.NumKeys();
  }

  void SetAllow(StoreAllowList allow) {
    std::lock_guard<std::mutex> lock(mutex_);
    options_.allow = std::move(allow);
  }
  void SetCloseObserver(std::function<void(const std::string&)> observer) {
    std::lock_guard<std::mutex> lock(mutex_);
    on_close_ = std::move(observer);
  }

  StoreServerStats Stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    StoreServerStats stats = stats_;
    stats.connections = connections_.size();
    for (const auto& [fd, conn] : connections_) {
      stats.buffered_bytes += Buffered(conn);
      stats.paused += Paused(conn) ? 1 : 0;
    }
    std::lock_guard<std::mutex> log_lock(log_mutex_);
    stats.log_lines_left_out = throttle_.left_out_total();
    return stats;
  }

 private:
  static size_t Buffered(const StoreConnection& conn) { return conn.in.size() + conn.out.size(); }
  bool Paused(const StoreConnection& conn) const {
    return conn.out.size() >= options_.pause_reading_bytes;
  }

  // Every line goes through the throttle: a peer can provoke any of them.
  void Log(const std::string& line) {
    if (!log_) return;
    std::optional<std::string> admitted;
    {
      std::lock_guard<std::mutex> lock(log_mutex_);
      admitted = throttle_.Admit(line, LogThrottle::Clock::now());
    }
    if (admitted) log_(*admitted);
  }

  // False with errno set when epoll refuses (ENOMEM, ENOSPC: fs.epoll.max_user_watches).
  bool Watch(int fd, int op, uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    return epoll_ctl(epoll_fd_, op, fd, &event) == 0;
  }

  // One epoll set, level-triggered: a round costs the ready connections and the connections their
  // requests woke, never a pass over every connection.
  void Loop() {
    std::vector<epoll_event> events(kMaxEvents);
    while (!stop_) {
      const int n = epoll_wait(epoll_fd_, events.data(), kMaxEvents, accept_paused_ ? 100 : -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        Log(std::string("store: epoll_wait failed: ") + std::strerror(errno));
        return;
      }
      if (accept_paused_) {  // a round later, try again: a connection may have closed
        accept_paused_ = false;
        Watch(listen_fd_, EPOLL_CTL_MOD, EPOLLIN);
      }
      std::lock_guard<std::mutex> lock(mutex_);
      bool accept = false;
      for (int i = 0; i < n; ++i) {
        const int fd = events[static_cast<size_t>(i)].data.fd;
        if (fd == listen_fd_) accept = true;
        if (fd != listen_fd_ && fd != wake_[0]) Serve(fd, events[static_cast<size_t>(i)].events);
      }
      if (accept) Accept();
      Settle();
    }
  }

  void Serve(int fd, uint32_t events) {
    auto it = connections_.find(fd);
    if (it == connections_.end()) return;
    StoreConnection& conn = it->second;
    if (conn.closing) return;
    if (events & EPOLLIN) {
      ReadFrom(conn);
    } else if (events & (EPOLLHUP | EPOLLERR)) {
      conn.closing = true;  // gone while paused: its replies cannot be sent
    }
    Touch(conn);  // EPOLLOUT: its replies are flushed in Settle
  }

  // `conn` has something to do in Settle: replies to send, requests left unanswered, closing.
  void Touch(StoreConnection& conn) {
    if (conn.touched) return;
    conn.touched = true;
    touched_.push_back(conn.id);
  }

  // Flushes, answers and closes the connections this round touched, and sets what epoll watches
  // for each. Answering one may touch others (the WAITs it completes): they are settled too.
  void Settle() {
    for (size_t i = 0; i < touched_.size(); ++i) {
      auto it = connections_.find(touched_[i]);
      if (it == connections_.end()) continue;
      StoreConnection& conn = it->second;
      conn.touched = false;
      if (!conn.closing && !conn.out.empty()) Flush(conn);
      // Requests left unanswered while the client did not read: their turn once it has.
      if (!conn.closing && !conn.in.empty() && !Paused(conn)) {
        Answer(conn);
        if (!conn.closing && !conn.out.empty()) Flush(conn);
      }
      if (!conn.closing) {
        Trim(conn.in);
        Trim(conn.out);
        const uint32_t want =
            (Paused(conn) ? 0u : uint32_t{EPOLLIN}) | (conn.out.empty() ? 0u : uint32_t{EPOLLOUT});
        if (want != conn.interest && !Watch(conn.id, EPOLL_CTL_MOD, want)) {
          ++stats_.closed_by_server;
          Log("store: closed the connection of " + conn.peer + ": " + store_socket::Unwatched());
          conn.closing = true;
        }
        conn.interest = want;
      }
      if (conn.closing) {
        state_.Disconnect(conn.id);
        if (on_close_) on_close_(conn.peer);
        close(conn.id);  // also leaves the epoll set
        connections_.erase(it);
      }
    }
    touched_.clear();
  }

  // An emptied buffer that grew for one large request or reply gives its memory back.
  static void Trim(std::string& buffer) {
    if (buffer.empty() && buffer.capacity() > kIdleCapacity) std::string().swap(buffer);
  }

  void Accept() {
    for (int burst = 0; burst < kAcceptBurst; ++burst) {
      sockaddr_storage peer{};
      socklen_t len = sizeof(peer);
      int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len,
                       SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
        RefuseForLackOfFiles();
        return;
      }
      if (fd < 0) return;
      const std::string name = store_socket::PeerName(peer, len);
      if (!options_.allow.Allows(reinterpret_cast<sockaddr*>(&peer), len)) {
        Refuse(fd, name,
               "not one of the job's hosts (allowed: " + options_.allow.Describe() +
                   "); to let it in, add its address or network to launch.store_allow "
                   "(e.g. launch.store_allow: \"" +
                   name.substr(0, name.rfind(':')) + "\", or \"any\")");
        continue;
      }
      if (connections_.size() >= options_.max_connections) {
        Refuse(fd, name,
               "the store already holds " + std::to_string(connections_.size()) +
                   " connections, its cap; raise launch.store_max_connections");
        continue;
      }
      if (!Watch(fd, EPOLL_CTL_ADD, EPOLLIN)) {
        Refuse(fd, name, store_socket::Unwatched());
        continue;
      }
      StoreConnection& conn = connections_[fd];
      conn.id = fd;
      conn.peer = name;
      conn.interest = EPOLLIN;
    }
  }

  void Refuse(int fd, const std::string& peer, const std::string& why) {
    ++stats_.refused;
    Log("store: refused a connection from " + peer + ": " + why);
    store_socket::CloseAtOnce(fd);
  }

  // Out of descriptors: the pending connection would keep the listening socket readable and the
  // loop spinning. The spare descriptor makes room to accept it and close it at once.
  void RefuseForLackOfFiles() {
    const std::string why = "this process has no file descriptor left (ulimit -n); raise it";
    if (spare_fd_ >= 0) {
      close(spare_fd_);
      sockaddr_storage peer{};
      socklen_t len = sizeof(peer);
      const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
      spare_fd_ = OpenSpare();
      if (fd >= 0) {
        Refuse(fd, store_socket::PeerName(peer, len), why);
        return;
      }
    }
    Log("store: cannot accept a connection: " + why);
    accept_paused_ = true;  // serve the others for a while; one of them may close
    Watch(listen_fd_, EPOLL_CTL_MOD, 0);
  }

  // Reads and answers chunk by chunk, until the socket is drained (a short read: epoll reports the
  // next bytes, or the end of the stream, in a later round), the connection is paused (its replies
  // wait unread) or kReadBudget is spent: so a connection holds at most one chunk of unanswered
  // requests beyond an incomplete one.
  void ReadFrom(StoreConnection& conn) {
    char buffer[65536];
    bool ended = false;  // end of stream or a connection error
    size_t read = 0;
    while (read < kReadBudget && !conn.closing && !Paused(conn)) {
      ssize_t n = recv(conn.id, buffer, sizeof(buffer), 0);
      if (n > 0) {
        conn.in.append(buffer, static_cast<size_t>(n));
        read += static_cast<size_t>(n);
        stats_.bytes_read += static_cast<uint64_t>(n);
        // Requests that arrived together with the end of the stream still count: a client may
        // SET a key (no reply) and exit at once.
        Answer(conn);
        if (static_cast<size_t>(n) < sizeof(buffer)) break;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) ended = true;
      break;
    }
    if (ended) {
      if (!conn.closing) Flush(conn);  // a client that only shut down its sending side still reads
      conn.closing = true;
    }
  }

  void Answer(StoreConnection& conn) {
    const StoreState::Replies replies =
        ServeRequests(conn, state_, limits_, [this](const std::string& line) {
          ++stats_.closed_by_server;  // every line ServeRequests logs closes the connection
          Log(line);
        });
    for (const StoreState::Reply& reply : replies) {
      auto it = connections_.find(reply.to);
      if (it == connections_.end() || it->second.closing) continue;
      it->second.out += reply.bytes;
      stats_.reply_bytes += reply.bytes.size();
      ++stats_.replies;
      CheckBuffered(it->second);
      Touch(it->second);
    }
    CheckBuffered(conn);
  }

  void CheckBuffered(StoreConnection& conn) {
    if (conn.closing || Buffered(conn) <= options_.max_buffered_bytes) return;
    conn.closing = true;
    ++stats_.closed_by_server;
    Log("store: closed the connection of " + conn.peer + ": " + std::to_string(Buffered(conn)) +
        " bytes held for it (" + std::to_string(conn.in.size()) + " of requests not answered, " +
        std::to_string(conn.out.size()) + " of replies it has not read), over the cap of " +
        std::to_string(options_.max_buffered_bytes) + "; does it read its replies?");
  }

  static void Flush(StoreConnection& conn) {
    if (!store_socket::SendSome(conn.id, conn.out)) conn.closing = true;
  }

  std::string address_;
  StoreServerOptions options_;
  ServeLimits limits_;
  LogFn log_;
  mutable std::mutex log_mutex_;  // the throttle's: Log runs with and without mutex_ held
  LogThrottle throttle_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int spare_fd_ = -1;
  bool accept_paused_ = false;
  uint16_t port_ = 0;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::unordered_map<int, StoreConnection> connections_;
  std::vector<int> touched_;  // connections to settle at the end of this round
  std::function<void(const std::string&)> on_close_;
  StoreState state_;
  StoreServerStats stats_;
  std::thread thread_;
};

StoreServer::StoreServer(const std::string& address, uint16_t port, LogFn log,
                         StoreServerOptions options)
    : impl_(std::make_unique<Impl>(address, port, std::move(log), std::move(options))) {}
StoreServer::~StoreServer() = default;
uint16_t StoreServer::port() const { return impl_->port(); }
const std::string& StoreServer::address() const { return impl_->address(); }
size_t StoreServer::max_connections() const { return impl_->max_connections(); }
std::vector<std::string> StoreServer::DescribeWaits() const { return impl_->DescribeWaits(); }
size_t StoreServer::NumKeys() const { return impl_->NumKeys(); }
StoreServerStats StoreServer::Stats() const { return impl_->Stats(); }
void StoreServer::SetAllowList(StoreAllowList allow) { impl_->SetAllow(std::move(allow)); }
void StoreServer::SetCloseObserver(std::function<void(const std::string&)> observer) {
  impl_->SetCloseObserver(std::move(observer));
}

}  // namespace runner
