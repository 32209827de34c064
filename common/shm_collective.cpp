#include "common/shm_collective.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <new>
#include <thread>

#include "common/errors.h"
#include "common/shm_layout.h"

namespace common {

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kMagic = 0x314d48535252554eULL;  // "NURRSHM1"
using namespace shm_layout;
constexpr auto kNap = std::chrono::milliseconds(100);  // longest sleep between looks

std::string Errno(int err) { return std::strerror(err); }

void CheckOptions(const ShmGroupOptions& o) {
  if (o.size < 1 || o.rank < 0 || o.rank >= o.size || o.chunk_bytes < 64 ||
      o.chunk_bytes % 64 != 0 || o.name.size() < 2 || o.name[0] != '/') {
    throw std::invalid_argument("ShmGroupOptions: bad rank " + std::to_string(o.rank) + " of " +
                                std::to_string(o.size) + ", chunk " +
                                std::to_string(o.chunk_bytes) + " or name '" + o.name + "'");
  }
}

// Element bounds of rank `r`'s slice of `n` values, cut at 64-byte boundaries.
std::pair<size_t, size_t> Slice(size_t n, int r, int size, size_t unit) {
  const size_t units = (n + unit - 1) / unit;
  const size_t per = (units + static_cast<size_t>(size) - 1) / static_cast<size_t>(size);
  const size_t lo = std::min(n, static_cast<size_t>(r) * per * unit);
  return {lo, std::min(n, lo + per * unit)};
}

// out[lo, hi) = in[0] + in[1] + ... + in[n - 1], in that order.
template <typename T>
void SumSlots(T* __restrict out, const void* const* in, size_t n, size_t lo, size_t hi) {
  const T* __restrict a = static_cast<const T*>(in[0]);
  const T* __restrict b = static_cast<const T*>(in[1]);
  for (size_t j = lo; j < hi; ++j) out[j] = a[j] + b[j];
  for (size_t k = 2; k < n; ++k) {
    const T* __restrict c = static_cast<const T*>(in[k]);
    for (size_t j = lo; j < hi; ++j) out[j] += c[j];
  }
}

}  // namespace

ShmGroup::ShmGroup(const ShmGroupOptions& o, int fd, void* base, size_t bytes)
    : name_(o.name),
      rank_(o.rank),
      size_(o.size),
      timeout_(o.timeout),
      chunk_(o.chunk_bytes),
      fd_(fd),
      base_(base),
      bytes_(bytes),
      header_(static_cast<Header*>(base)),
      pidfds_(static_cast<size_t>(o.size), -1),
      inputs_(static_cast<size_t>(o.size), nullptr),
      next_check_(Clock::now()) {}

ShmGroup::~ShmGroup() {
  if (!unlinked_) shm_unlink(name_.c_str());
  for (int fd : pidfds_) {
    if (fd >= 0) close(fd);
  }
  munmap(base_, bytes_);
  if (fd_ >= 0) close(fd_);
}

std::unique_ptr<ShmGroup> ShmGroup::Create(const ShmGroupOptions& o) {
  CheckOptions(o);
  const std::string where = "shared-memory segment /dev/shm" + o.name;
  int fd = shm_open(o.name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0 && errno == EEXIST) {  // left by an earlier process of this very attempt
    shm_unlink(o.name.c_str());
    fd = shm_open(o.name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  }
  if (fd < 0) throw ShmUnavailable("cannot create " + where + ": " + Errno(errno));
  const size_t bytes = SegmentBytes(o.size, o.chunk_bytes);
  auto give_up = [&](const std::string& doing, int err) {
    close(fd);
    shm_unlink(o.name.c_str());
    throw ShmUnavailable("cannot " + doing + " " + std::to_string(bytes >> 10) + " KiB for " +
                         where + ": " + Errno(err));
  };
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) give_up("size", errno);
  // Reserve the pages now: a full /dev/shm is an error here, not a SIGBUS mid-collective.
  if (int err = posix_fallocate(fd, 0, static_cast<off_t>(bytes)); err != 0)
    give_up("reserve", err);
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) give_up("map", errno);
  std::unique_ptr<ShmGroup> group(new ShmGroup(o, fd, base, bytes));
  auto* h = new (base) Header();
  h->size = static_cast<uint32_t>(o.size);
  h->chunk = static_cast<uint32_t>(o.chunk_bytes);
  h->creator_pid = getpid();
  for (int k = 0; k < o.size; ++k) new (PeerAt(base, k)) Peer();
  PeerAt(base, 0)->pid.store(getpid());
  h->attached.store(1);
  h->magic.store(kMagic, std::memory_order_release);
  return group;
}

std::unique_ptr<ShmGroup> ShmGroup::Join(const ShmGroupOptions& o) {
  CheckOptions(o);
  const std::string where = "shared-memory segment /dev/shm" + o.name;
  const std::string who = "local rank " + std::to_string(o.rank) + " of " + std::to_string(o.size);
  const size_t bytes = SegmentBytes(o.size, o.chunk_bytes);
  const auto deadline = Clock::now() + o.timeout;
  auto nap = std::chrono::microseconds(200);
  for (;;) {
    if (Clock::now() > deadline) {
      throw CommunicationError(who + ": " + where + " was not ready within " + Seconds(o.timeout) +
                               " (local rank 0 creates it; is it running?)");
    }
    const int fd = shm_open(o.name.c_str(), O_RDWR, 0);
    if (fd < 0 && errno != ENOENT)
      throw CommunicationError(who + ": cannot open " + where + ": " + Errno(errno));
    struct stat st {};
    void* base = MAP_FAILED;
    if (fd >= 0 && fstat(fd, &st) == 0 && static_cast<size_t>(st.st_size) == bytes)
      base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base != MAP_FAILED) {
      auto* h = static_cast<Header*>(base);
      const bool ready = h->magic.load(std::memory_order_acquire) == kMagic;
      if (ready && (h->size != static_cast<uint32_t>(o.size) || h->chunk != o.chunk_bytes)) {
        throw CommunicationError(who + ": " + where + " was made for " + std::to_string(h->size) +
                                 " local ranks, chunk " + std::to_string(h->chunk) +
                                 "; do all local ranks agree on LOCAL_WORLD_SIZE?");
      }
      if (ready && (kill(h->creator_pid, 0) == 0 || errno != ESRCH)) {
        std::unique_ptr<ShmGroup> group(new ShmGroup(o, fd, base, bytes));
        PeerAt(base, o.rank)->pid.store(getpid());
        h->attached.fetch_add(1);
        FutexWake(&h->attached);
        return group;
      }
      munmap(base, bytes);  // still being made, or stale: look again
    }
    if (fd >= 0) close(fd);
    std::this_thread::sleep_for(nap);
    nap = std::min<std::chrono::microseconds>(nap * 2, std::chrono::milliseconds(20));
  }
}

std::unique_ptr<ShmGroup> ShmGroup::Open(const ShmGroupOptions& o) {
  std::unique_ptr<ShmGroup> group = o.rank == 0 ? Create(o) : Join(o);
  group->WaitForAll();
  return group;
}

void ShmGroup::WaitForAll() {
  const auto deadline = Clock::now() + timeout_;
  for (;;) {
    const uint32_t attached = header_->attached.load();
    if (attached >= static_cast<uint32_t>(size_)) break;
    const auto now = Clock::now();
    if (now >= deadline) {
      shm_unlink(name_.c_str());
      unlinked_ = true;
      std::string missing;
      for (int k = 0; k < size_; ++k) {
        if (PeerAt(base_, k)->pid.load() == 0)
          missing += (missing.empty() ? "" : ", ") + std::to_string(k);
      }
      throw CommunicationError(Describe("meeting in /dev/shm" + name_) + ": local rank(s) " +
                               missing + " did not attach within " + Seconds(timeout_));
    }
    FutexWait(&header_->attached, attached,
              std::min<std::chrono::nanoseconds>(deadline - now, kNap));
  }
  shm_unlink(name_.c_str());  // every rank has it mapped: nothing stays behind in /dev/shm
  unlinked_ = true;
  close(fd_);
  fd_ = -1;
  for (int k = 0; k < size_; ++k) {
    const int pid = PeerAt(base_, k)->pid.load();
    if (k == rank_ || pid == getpid()) continue;
    pidfds_[static_cast<size_t>(k)] = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  }
}

char* ShmGroup::Slot(int set, int rank) const {
  return static_cast<char*>(base_) + DataOffset(size_) +
         (static_cast<size_t>(set) * static_cast<size_t>(size_) + static_cast<size_t>(rank)) *
             chunk_;
}

char* ShmGroup::Result(int set) const {
  return static_cast<char*>(base_) + DataOffset(size_) +
         (2 * static_cast<size_t>(size_) + static_cast<size_t>(set)) * chunk_;
}

std::string ShmGroup::Describe(const std::string& what) const {
  return "shared-memory " + what + " (local rank " + std::to_string(rank_) + " of " +
         std::to_string(size_) + ", pid " + std::to_string(getpid()) + ")";
}

std::string ShmGroup::Text(const Op& op) {
  std::string text = std::string(op.kind) + " #" + std::to_string(op.number);
  if (op.unit != nullptr) text += " of " + std::to_string(op.count) + " " + op.unit;
  if (op.root >= 0) text += " from local rank " + std::to_string(op.root);
  return text;
}

template <typename T>
void ShmGroup::Sum(T* data, size_t count, const char* unit) {
  const Op what{"all-reduce", ++collectives_, count, unit};
  if (size_ == 1) return;
  const auto deadline = Clock::now() + timeout_;
  const size_t per = chunk_ / sizeof(T);
  std::vector<const void*>& in = inputs_;  // sized once: a collective allocates nothing
  for (size_t off = 0; off < count; off += per) {
    const size_t n = std::min(per, count - off);
    const int set = static_cast<int>(step_++ & 1);
    T* chunk = data + off;
    auto* slot = reinterpret_cast<T*>(Slot(set, rank_));
    auto* result = reinterpret_cast<T*>(Result(set));
    // My own slice I sum from where it is; only what the others sum goes through the segment.
    const auto [lo, hi] = Slice(n, rank_, size_, 64 / sizeof(T));
    std::memcpy(slot, chunk, lo * sizeof(T));
    std::memcpy(slot + hi, chunk + hi, (n - hi) * sizeof(T));
    Sync(what, deadline);
    for (int k = 0; k < size_; ++k) {
      in[static_cast<size_t>(k)] = k == rank_ ? static_cast<const void*>(chunk) : Slot(set, k);
    }
    if (lo < hi) {
      SumSlots(result, in.data(), in.size(), lo, hi);
      std::memcpy(chunk + lo, result + lo, (hi - lo) * sizeof(T));
    }
    Sync(what, deadline);
    std::memcpy(chunk, result, lo * sizeof(T));
    std::memcpy(chunk + hi, result + hi, (n - hi) * sizeof(T));
  }
}

void ShmGroup::AllReduceSum(float* data, size_t count) { Sum(data, count, "float values"); }
void ShmGroup::AllReduceSum(double* data, size_t count) { Sum(data, count, "double values"); }

void ShmGroup::Broadcast(void* data, size_t bytes, int root) {
  const Op what{"broadcast", ++collectives_, bytes, "bytes", root};
  if (size_ == 1) return;
  const auto deadline = Clock::now() + timeout_;
  auto* p = static_cast<char*>(data);
  for (size_t off = 0; off < bytes; off += chunk_) {
    const size_t n = std::min(chunk_, bytes - off);
    const int set = static_cast<int>(step_++ & 1);
    if (rank_ == root) std::memcpy(Result(set), p + off, n);
    Sync(what, deadline);
    if (rank_ != root) std::memcpy(p + off, Result(set), n);
  }
}

void ShmGroup::Barrier() {
  const Op what{"barrier", ++collectives_};
  if (size_ == 1) return;
  Sync(what, Clock::now() + timeout_);
}

}  // namespace common
