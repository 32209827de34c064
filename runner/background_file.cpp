#include "runner/background_file.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "common/atomic_file.h"

namespace runner {

struct BackgroundFile::State {
  std::string path;
  std::function<void(const std::string&)> on_error;
  std::mutex mutex;
  std::condition_variable work;
  std::condition_variable done;
  std::optional<std::string> pending;
  bool writing = false;
  bool stop = false;

  void Run() {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      work.wait(lock, [&] { return stop || pending.has_value(); });
      if (!pending) return;
      const std::string content = std::move(*pending);
      pending.reset();
      writing = true;
      lock.unlock();
      const std::optional<common::FileError> error = common::WriteFileAtomic(path, content);
      lock.lock();
      writing = false;
      if (error && on_error) on_error(error->Describe());
      done.notify_all();
    }
  }
};

BackgroundFile::BackgroundFile(std::string path, std::function<void(const std::string&)> on_error,
                               double wait_s)
    : state_(std::make_shared<State>()), wait_s_(wait_s) {
  state_->path = std::move(path);
  state_->on_error = std::move(on_error);
  std::thread([state = state_] { state->Run(); }).detach();
}

BackgroundFile::~BackgroundFile() {
  Wait(wait_s_);
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->on_error = nullptr;  // the thread may outlive what it reports to
  state_->pending.reset();
  state_->stop = true;
  state_->work.notify_all();
}

void BackgroundFile::Write(std::string content) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->pending = std::move(content);
  state_->work.notify_all();
}

bool BackgroundFile::Wait(double timeout_s) {
  std::unique_lock<std::mutex> lock(state_->mutex);
  return state_->done.wait_for(lock, std::chrono::duration<double>(timeout_s),
                               [&] { return !state_->pending && !state_->writing; });
}

}  // namespace runner
