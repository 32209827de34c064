#include "common/heartbeat.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/environment.h"
#include "common/errors.h"
#include "common/utf8.h"

namespace common {

namespace {

constexpr char kMagic[8] = {'R', 'N', 'R', 'H', 'B', '0', '0', '1'};
constexpr uint32_t kVersion = 1;
constexpr size_t kPidOffset = 12;
constexpr size_t kSeqOffset = 16;
constexpr size_t kBeatsOffset = 24;
constexpr size_t kMonoOffset = 32;
constexpr size_t kStepOffset = 40;
constexpr size_t kCollectiveOffset = 48;
constexpr size_t kInCollectiveOffset = 56;
constexpr size_t kBucketOffset = 60;
constexpr size_t kBucketsOffset = 64;
constexpr size_t kPhaseOffset = 68;
constexpr size_t kRecordSize = kPhaseOffset + kHeartbeatPhaseSize;

// The record is little-endian by definition; every machine this runs on is too.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the heartbeat record is little-endian");

template <typename T>
T Load(const unsigned char* record, size_t offset) {
  T value;
  std::memcpy(&value, record + offset, sizeof(T));
  return value;
}

template <typename T>
void Store(unsigned char* page, size_t offset, T value) {
  std::memcpy(page + offset, &value, sizeof(T));
}

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

std::string Errno(int error) { return std::strerror(error); }

}  // namespace

std::string Heartbeat::DescribePhase() const {
  std::string text = phase.empty() ? std::string("(no phase)") : phase;
  if (in_collective) text += " #" + std::to_string(collective);
  if (in_collective && buckets > 0)
    text += " (bucket " + std::to_string(bucket) + "/" + std::to_string(buckets) + ")";
  return text;
}

void CreateHeartbeat(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw EnvironmentError(
        "cannot create the heartbeat file '" + path + "': " + Errno(errno) +
        "; fix: make its directory writable or point RUNNER_HEARTBEAT_DIR elsewhere");
  }
  const int failed = ::ftruncate(fd, static_cast<off_t>(kHeartbeatFileSize)) != 0 ? errno : 0;
  ::close(fd);
  if (failed != 0) {
    throw EnvironmentError(
        "cannot size the heartbeat file '" + path + "': " + Errno(failed) +
        "; fix: free space on its filesystem or point RUNNER_HEARTBEAT_DIR elsewhere");
  }
}

std::optional<Heartbeat> ReadHeartbeat(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<Heartbeat> result;
  for (int attempt = 0; attempt < 8 && !result; ++attempt) {
    unsigned char record[kRecordSize];
    if (::pread(fd, record, sizeof record, 0) != static_cast<ssize_t>(sizeof record)) break;
    if (std::memcmp(record, kMagic, sizeof kMagic) != 0) break;
    const auto seq = Load<uint64_t>(record, kSeqOffset);
    uint64_t seq_after = 0;
    if (::pread(fd, &seq_after, sizeof seq_after, kSeqOffset) != sizeof seq_after) break;
    if (seq % 2 != 0 || seq != seq_after) continue;
    Heartbeat h;
    h.pid = Load<int32_t>(record, kPidOffset);
    h.beats = Load<uint64_t>(record, kBeatsOffset);
    h.mono_ns = Load<uint64_t>(record, kMonoOffset);
    h.step = Load<int64_t>(record, kStepOffset);
    h.collective = Load<int64_t>(record, kCollectiveOffset);
    h.in_collective = Load<int32_t>(record, kInCollectiveOffset) != 0;
    h.bucket = Load<int32_t>(record, kBucketOffset);
    h.buckets = Load<int32_t>(record, kBucketsOffset);
    const char* phase = reinterpret_cast<const char*>(record + kPhaseOffset);
    // The worker writes the name: make sure it is printable before it reaches a console.
    h.phase = PrintableText(std::string_view(phase, strnlen(phase, kHeartbeatPhaseSize)));
    result = std::move(h);
  }
  ::close(fd);
  return result;
}

HeartbeatWriter::HeartbeatWriter(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    throw EnvironmentError(std::string(kHeartbeatFileEnv) + "='" + path +
                           "' cannot be opened: " + Errno(errno) +
                           "; the runner creates this file: unset the variable when running "
                           "the program outside the runner");
  }
  void* page = ::mmap(nullptr, kHeartbeatFileSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int error = errno;
  ::close(fd);
  if (page == MAP_FAILED) {
    throw EnvironmentError(std::string(kHeartbeatFileEnv) + "='" + path +
                           "' cannot be mapped: " + Errno(error));
  }
  page_ = static_cast<unsigned char*>(page);
  Store<uint32_t>(page_, 8, kVersion);
  Store<int32_t>(page_, kPidOffset, static_cast<int32_t>(::getpid()));
  Write("start", 0, false, 0, 0);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  std::memcpy(page_, kMagic, sizeof kMagic);
}

HeartbeatWriter::~HeartbeatWriter() {
  if (page_ != nullptr) ::munmap(page_, kHeartbeatFileSize);
}

HeartbeatWriter::HeartbeatWriter(HeartbeatWriter&& other) noexcept { *this = std::move(other); }

HeartbeatWriter& HeartbeatWriter::operator=(HeartbeatWriter&& other) noexcept {
  if (this != &other) {
    if (page_ != nullptr) ::munmap(page_, kHeartbeatFileSize);
    page_ = other.page_;
    beats_ = other.beats_;
    step_ = other.step_;
    issued_ = other.issued_;
    current_ = other.current_;
    other.page_ = nullptr;
  }
  return *this;
}

void HeartbeatWriter::Write(std::string_view phase, int64_t collective, bool in_collective,
                            int bucket, int buckets) {
  if (page_ == nullptr) return;
  current_ = collective;
  auto* seq = reinterpret_cast<uint64_t*>(page_ + kSeqOffset);
  const uint64_t begin = __atomic_load_n(seq, __ATOMIC_RELAXED) | 1U;
  __atomic_store_n(seq, begin, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  Store<uint64_t>(page_, kBeatsOffset, ++beats_);
  Store<uint64_t>(page_, kMonoOffset, MonotonicNs());
  Store<int64_t>(page_, kStepOffset, step_);
  Store<int64_t>(page_, kCollectiveOffset, collective);
  Store<int32_t>(page_, kInCollectiveOffset, in_collective ? 1 : 0);
  Store<int32_t>(page_, kBucketOffset, bucket);
  Store<int32_t>(page_, kBucketsOffset, buckets);
  char text[kHeartbeatPhaseSize] = {};
  std::memcpy(text, phase.data(), std::min(phase.size(), kHeartbeatPhaseSize));
  std::memcpy(page_ + kPhaseOffset, text, kHeartbeatPhaseSize);
  __atomic_store_n(seq, begin + 1, __ATOMIC_RELEASE);
}

void HeartbeatWriter::Phase(std::string_view phase) { Write(phase, current_, false, 0, 0); }

int64_t HeartbeatWriter::BeginCollective(std::string_view phase, int bucket, int buckets) {
  const int64_t number = Issue();
  Write(phase, number, true, bucket, buckets);
  return number;
}

void HeartbeatWriter::Wait(std::string_view phase, int64_t number, int bucket, int buckets) {
  Write(phase, number, true, bucket, buckets);
}

void HeartbeatWriter::EndCollective(std::string_view phase) { Write(phase, current_, false, 0, 0); }

void HeartbeatWriter::Step(int64_t step) { step_ = step; }

HeartbeatWriter& ProcessHeartbeat() {
  static HeartbeatWriter writer = [] {
    const std::optional<std::string> path = ProcessEnvironment().Get(kHeartbeatFileEnv);
    return path && !path->empty() ? HeartbeatWriter(*path) : HeartbeatWriter();
  }();
  return writer;
}

}  // namespace common
