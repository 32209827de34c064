// ShmGroup's barrier: sequence counters, futex sleeps, peer checks and failures
// (common/shm_collective.h).

#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <csignal>
#include <sstream>

#include "common/errors.h"
#include "common/shm_collective.h"
#include "common/shm_layout.h"

namespace common {

namespace shm_layout {

std::string Seconds(std::chrono::milliseconds ms) {
  std::ostringstream out;
  out << static_cast<double>(ms.count()) / 1000.0 << " s";
  return out.str();
}

void FutexWait(std::atomic<uint32_t>* word, uint32_t value, std::chrono::nanoseconds wait) {
  const auto ns = std::max<int64_t>(wait.count(), 1000);
  timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  // Not FUTEX_PRIVATE_FLAG: the word is shared between processes.
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, value, &ts, nullptr, 0);
}

void FutexWake(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace shm_layout

namespace {

using Clock = std::chrono::steady_clock;
using namespace shm_layout;

// How long a waiter spins before it sleeps: a futex wake-up costs tens of microseconds here (more
// in a VM), a chunk's work about a hundred. After the first microseconds it yields between looks:
// with more runnable threads than cores the peer may be waiting for this very CPU (on this 2-core
// machine, shared with other work, that took a 25 MiB sum from 17 ms to 6 ms).
#ifndef SHM_SPIN_US
#define SHM_SPIN_US 50
#endif
constexpr auto kSpin = std::chrono::microseconds(SHM_SPIN_US);
#ifndef SHM_YIELD_US
#define SHM_YIELD_US 2
#endif
constexpr auto kYieldAfter = std::chrono::microseconds(SHM_YIELD_US);
constexpr auto kNap = std::chrono::milliseconds(100);         // longest sleep between checks
constexpr auto kCheckEvery = std::chrono::milliseconds(100);  // peers' liveness

void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

void ShmGroup::Sync(const Op& what, Clock::time_point deadline) {
  if (const int failed = header_->failed.load(); failed != 0) {
    Fail(what, "local rank " + std::to_string(failed - 1) +
                   " gave up on an earlier collective; this group cannot be used any more");
  }
  ++seq_;
  Peer* me = PeerAt(base_, rank_);
  me->seq.store(seq_);  // seq_cst: pairs with the sleepers' increment before they sleep
  if (me->sleepers.load() != 0) FutexWake(&me->seq);
  for (int k = 0; k < size_; ++k) {
    if (k != rank_) WaitFor(k, seq_, what, deadline);
  }
}

void ShmGroup::WaitFor(int peer, uint32_t seq, const Op& what, Clock::time_point deadline) {
  Peer* p = PeerAt(base_, peer);
  const auto start = Clock::now();
  for (int i = 0;; ++i) {
    if (Reached(p->seq.load(std::memory_order_acquire), seq)) return;
    CpuRelax();
    if (i % 64 != 63) continue;
    const auto now = Clock::now();
    if (now - start >= kSpin) break;
    // The peer may be waiting for this very CPU (more workers than free cores): let it run.
    if (now - start >= kYieldAfter) sched_yield();
  }
  for (;;) {
    p->sleepers.fetch_add(1);
    const uint32_t value = p->seq.load();
    const auto now = Clock::now();
    if (!Reached(value, seq) && now < deadline && header_->failed.load() == 0)
      FutexWait(&p->seq, value, std::min<std::chrono::nanoseconds>(deadline - now, kNap));
    p->sleepers.fetch_sub(1);
    if (Reached(p->seq.load(std::memory_order_acquire), seq)) return;
    if (const int failed = header_->failed.load(); failed != 0 && failed != rank_ + 1) {
      Fail(what, "local rank " + std::to_string(failed - 1) +
                     " gave up on it (see that rank's error); still waiting for " + Missing(seq));
    }
    if (Clock::now() >= deadline) {
      Fail(what, "timed out after " + Seconds(timeout_) + " (train.collective_timeout_s) " +
                     "waiting for " + Missing(seq) + "; is that rank stuck or much slower?");
    }
    if (Clock::now() >= next_check_) {
      CheckPeers(what);
      next_check_ = Clock::now() + kCheckEvery;
    }
  }
}

std::string ShmGroup::Missing(uint32_t seq) const {
  std::string ranks;
  for (int k = 0; k < size_; ++k) {
    const Peer* p = PeerAt(base_, k);
    if (k == rank_ || Reached(p->seq.load(), seq)) continue;
    ranks += (ranks.empty() ? "" : ", ") + std::to_string(k) + " (pid " +
             std::to_string(p->pid.load()) + ")";
  }
  return "local rank(s) " + (ranks.empty() ? std::string("none") : ranks);
}

void ShmGroup::CheckPeers(const Op& what) {
  for (int k = 0; k < size_; ++k) {
    if (k == rank_) continue;
    const int pid = PeerAt(base_, k)->pid.load();
    bool gone = false;
    if (const int fd = pidfds_[static_cast<size_t>(k)]; fd >= 0) {
      pollfd pfd{fd, POLLIN, 0};
      gone = poll(&pfd, 1, 0) > 0;  // readable once the process has exited (even unreaped)
    } else if (pid != 0 && pid != getpid()) {
      gone = kill(pid, 0) != 0 && errno == ESRCH;
    }
    if (gone) {
      Fail(what, "local rank " + std::to_string(k) + " (pid " + std::to_string(pid) +
                     ") exited or was killed while the others waited for it");
    }
  }
}

void ShmGroup::Fail(const Op& what, const std::string& why) {
  int32_t none = 0;
  header_->failed.compare_exchange_strong(none, rank_ + 1);
  for (int k = 0; k < size_; ++k) FutexWake(&PeerAt(base_, k)->seq);
  throw CommunicationError(Describe(Text(what)) + ": " + why);
}

}  // namespace common
