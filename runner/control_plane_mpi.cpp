// The C API only: OpenMPI's deprecated C++ bindings would need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>

#include <cstdlib>
#include <deque>
#include <string>
#include <vector>

#include "common/errors.h"
#include "runner/control_plane.h"

namespace runner {

namespace {

constexpr int kNoticeTagBase = 1000;

// Where each of `sizes` starts in the concatenation, and (last) the total.
std::vector<int> Offsets(const std::vector<int>& sizes) {
  std::vector<int> offsets{0};
  for (int size : sizes) offsets.push_back(offsets.back() + size);
  return offsets;
}

void Check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw common::CommunicationError(std::string("MPI ") + what +
                                   " failed: " + std::string(text, static_cast<size_t>(len)));
}

class MpiControlPlane final : public ControlPlane {
 public:
  MpiControlPlane() {
    int provided = 0;
    Check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    describe_ = std::string(version, static_cast<size_t>(len));
    while (!describe_.empty() && (describe_.back() == '\n' || describe_.back() == '\0'))
      describe_.pop_back();
  }

  ~MpiControlPlane() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string Describe() const override { return describe_; }

  std::string Broadcast(const std::string& from_root) override {
    int n = static_cast<int>(from_root.size());
    Check(MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD), "Bcast");
    std::string value = rank_ == 0 ? from_root : std::string(static_cast<size_t>(n), '\0');
    Check(MPI_Bcast(value.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD), "Bcast");
    return value;
  }

  std::vector<std::string> Gather(const std::string& mine) override {
    int my_size = static_cast<int>(mine.size());
    std::vector<int> sizes(static_cast<size_t>(size_));
    Check(MPI_Gather(&my_size, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, MPI_COMM_WORLD), "Gather");
    const std::vector<int> offsets = Offsets(sizes);
    std::string all(static_cast<size_t>(rank_ == 0 ? offsets.back() : 0), '\0');
    Check(MPI_Gatherv(mine.data(), my_size, MPI_CHAR, all.data(), sizes.data(), offsets.data(),
                      MPI_CHAR, 0, MPI_COMM_WORLD),
          "Gatherv");
    std::vector<std::string> out;
    if (rank_ != 0) return out;
    for (size_t i = 0; i < sizes.size(); ++i) {
      out.push_back(all.substr(static_cast<size_t>(offsets[i]), static_cast<size_t>(sizes[i])));
    }
    return out;
  }

  std::string Scatter(const std::vector<std::string>& from_root) override {
    std::vector<int> sizes;
    std::string all;
    if (rank_ == 0) {
      CheckOneItemPerAgent(from_root, size_);
      for (const std::string& item : from_root) {
        sizes.push_back(static_cast<int>(item.size()));
        all += item;
      }
    }
    int my_size = 0;
    Check(MPI_Scatter(sizes.data(), 1, MPI_INT, &my_size, 1, MPI_INT, 0, MPI_COMM_WORLD),
          "Scatter");
    const std::vector<int> offsets = rank_ == 0 ? Offsets(sizes) : std::vector<int>{};
    std::string mine(static_cast<size_t>(my_size), '\0');
    Check(MPI_Scatterv(all.data(), sizes.data(), offsets.data(), MPI_CHAR, mine.data(), my_size,
                       MPI_CHAR, 0, MPI_COMM_WORLD),
          "Scatterv");
    return mine;
  }

  int AllReduceMax(int value) override {
    int result = value;
    Check(MPI_Allreduce(&value, &result, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "Allreduce");
    return result;
  }

  void BeginAttempt(int attempt) override {
    tag_ = kNoticeTagBase + attempt;
    sent_to_.assign(static_cast<size_t>(size_), 0);
    received_ = 0;
    sends_.clear();
    barrier_posted_ = false;
  }

  // Notices of any size (a hang suspicion carries every local rank's view): small ones go out
  // eagerly, larger ones complete when the peer receives them, which its polling does.
  void Notify(const std::string& notice) override {
    for (int peer = 0; peer < size_; ++peer) {
      if (peer != rank_) SendTo(peer, notice);
    }
  }

  void NotifyFirst(const std::string& notice) override {
    if (rank_ != 0) SendTo(0, notice);
  }

  void Forward(const std::string& notice, int from) override {
    for (int peer = 0; peer < size_; ++peer) {
      if (peer != rank_ && peer != from) SendTo(peer, notice);
    }
  }

  std::optional<std::string> PollNotice() override {
    int waiting = 0;
    MPI_Status status;
    Check(MPI_Iprobe(MPI_ANY_SOURCE, tag_, MPI_COMM_WORLD, &waiting, &status), "Iprobe");
    if (!waiting) return std::nullopt;
    return Receive(status);
  }

  void EnterDone() override {
    if (barrier_posted_) return;
    Check(MPI_Ibarrier(MPI_COMM_WORLD, &barrier_), "Ibarrier");
    barrier_posted_ = true;
  }

  bool PollDone() override {
    if (!barrier_posted_) return false;
    if (barrier_ == MPI_REQUEST_NULL) return true;
    int done = 0;
    Check(MPI_Test(&barrier_, &done, MPI_STATUS_IGNORE), "Test");
    return done != 0;
  }

  std::vector<std::string> EndAttempt() override {
    // Everyone has stopped sending: learn how many notices are owed to us and collect them.
    std::vector<int> owed(static_cast<size_t>(size_));
    Check(MPI_Alltoall(sent_to_.data(), 1, MPI_INT, owed.data(), 1, MPI_INT, MPI_COMM_WORLD),
          "Alltoall");
    int expected = 0;
    for (int n : owed) expected += n;
    std::vector<std::string> late;
    while (received_ < expected) {
      MPI_Status status;
      Check(MPI_Probe(MPI_ANY_SOURCE, tag_, MPI_COMM_WORLD, &status), "Probe");
      late.push_back(Receive(status));
    }
    for (Send& send : sends_) MPI_Wait(&send.request, MPI_STATUS_IGNORE);
    sends_.clear();
    return late;
  }

  [[noreturn]] void Abort(int code, const std::string&) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  struct Send {
    std::string text;
    MPI_Request request;
  };

  void SendTo(int peer, const std::string& text) {
    sends_.push_back({text, MPI_REQUEST_NULL});
    Send& send = sends_.back();
    Check(MPI_Isend(send.text.data(), static_cast<int>(send.text.size()), MPI_CHAR, peer, tag_,
                    MPI_COMM_WORLD, &send.request),
          "Isend");
    ++sent_to_[static_cast<size_t>(peer)];
  }

  // The message `status` announced (from MPI_Iprobe or MPI_Probe), whatever its size.
  std::string Receive(const MPI_Status& status) {
    int count = 0;
    MPI_Get_count(&status, MPI_CHAR, &count);
    std::string notice(static_cast<size_t>(count), '\0');
    Check(MPI_Recv(notice.data(), count, MPI_CHAR, status.MPI_SOURCE, tag_, MPI_COMM_WORLD,
                   MPI_STATUS_IGNORE),
          "Recv");
    ++received_;
    return notice;
  }

  int rank_ = 0;
  int size_ = 1;
  std::string describe_;
  int tag_ = kNoticeTagBase;
  MPI_Request barrier_ = MPI_REQUEST_NULL;
  bool barrier_posted_ = false;
  std::deque<Send> sends_;  // deque: element addresses stay valid for MPI
  std::vector<int> sent_to_;
  int received_ = 0;
};

class LocalControlPlane final : public ControlPlane {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string Describe() const override { return "none (single agent without MPI)"; }
  std::string Broadcast(const std::string& from_root) override { return from_root; }
  std::vector<std::string> Gather(const std::string& mine) override { return {mine}; }
  std::string Scatter(const std::vector<std::string>& from_root) override {
    return from_root.at(0);
  }
  int AllReduceMax(int value) override { return value; }
  void BeginAttempt(int) override { done_ = false; }
  void Notify(const std::string&) override {}
  void NotifyFirst(const std::string&) override {}
  void Forward(const std::string&, int) override {}
  std::optional<std::string> PollNotice() override { return std::nullopt; }
  void EnterDone() override { done_ = true; }
  bool PollDone() override { return done_; }
  std::vector<std::string> EndAttempt() override { return {}; }
  [[noreturn]] void Abort(int code, const std::string&) override { std::_Exit(code); }

 private:
  bool done_ = false;
};

}  // namespace

void CheckOneItemPerAgent(const std::vector<std::string>& items, int agents) {
  if (items.size() == static_cast<size_t>(agents)) return;
  throw common::Error(common::kExitInternal, "scatter of " + std::to_string(items.size()) +
                                                 " items to " + std::to_string(agents) + " agents");
}

std::unique_ptr<ControlPlane> MakeMpiControlPlane() { return std::make_unique<MpiControlPlane>(); }
std::unique_ptr<ControlPlane> MakeLocalControlPlane() {
  return std::make_unique<LocalControlPlane>();
}

}  // namespace runner
