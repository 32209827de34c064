#pragma once
// A file the agent rewrites now and then (its progress file, every 2 s while workers run), written
// by a thread of its own so that a slow or stalled disk under job.log_root never stalls the
// agent's loop: Write hands over the newest content and returns; the thread writes it atomically
// (common/atomic_file.h). Content handed over while a write is under way replaces any not yet
// begun: only the newest matters. The destructor waits (at most `wait_s`) for the last content; a
// thread still stuck in the disk then is left behind and ends when its write returns.

#include <functional>
#include <memory>
#include <string>

namespace runner {

class BackgroundFile {
 public:
  // `on_error`: called (from the thread) with the error's description when a write fails.
  BackgroundFile(std::string path, std::function<void(const std::string&)> on_error,
                 double wait_s = 5);
  ~BackgroundFile();
  BackgroundFile(const BackgroundFile&) = delete;
  BackgroundFile& operator=(const BackgroundFile&) = delete;

  void Write(std::string content);
  // Waits up to `timeout_s` until everything handed over is written; returns whether it is.
  bool Wait(double timeout_s);

 private:
  struct State;
  std::shared_ptr<State> state_;
  double wait_s_;
};

}  // namespace runner
