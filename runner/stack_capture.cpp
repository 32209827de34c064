#include "runner/stack_capture.h"

#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <optional>

#include "common/atomic_file.h"
#include "common/errors.h"
#include "runner/process.h"

namespace runner {

namespace {

std::optional<std::string> FindInPath(const std::string& tool) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  dirs += ":/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = dirs.find(':', start);
    const std::string dir = dirs.substr(start, end == std::string::npos ? end : end - start);
    if (!dir.empty() && ::access((dir + "/" + tool).c_str(), X_OK) == 0) return dir + "/" + tool;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return std::nullopt;
}

struct Capture {
  const StackRequest* request = nullptr;
  std::optional<ChildProcess> child;
  std::string tool;  // the stack tool's name, as the result line says it
  std::string output;
  std::string result;  // set once done
};

size_t CountLines(const std::string& text) {
  size_t lines = 0;
  for (char c : text) lines += c == '\n' ? 1 : 0;
  return lines;
}

void Start(Capture& c, const std::map<std::string, std::string>& env) {
  const std::vector<std::string> command = StackCommand(c.request->pid);
  if (command.empty()) {
    c.result = "no stack tool: install elfutils (eu-stack) or gdb";
    return;
  }
  c.tool = command.front().substr(command.front().rfind('/') + 1);
  try {
    c.child.emplace(ChildProcess::Spawn({command, env, ""}));
  } catch (const common::Error& e) {
    c.result = std::string("could not run ") + command.front() + ": " + e.what();
  }
}

// Reads every capture's output until each has ended or the deadline passed.
void Collect(std::vector<Capture>& captures, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    std::vector<pollfd> fds;
    std::vector<Capture*> owners;
    for (Capture& c : captures) {
      if (c.child && c.child->output_fd() >= 0) {
        fds.push_back({c.child->output_fd(), POLLIN, 0});
        owners.push_back(&c);
      }
    }
    if (fds.empty()) break;
    if (poll(fds.data(), fds.size(), 100) <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      char buffer[65536];
      const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) owners[i]->output.append(buffer, static_cast<size_t>(n));
      if (n == 0) owners[i]->child->CloseOutput();
    }
  }
}

}  // namespace

std::vector<std::string> StackCommand(int pid) {
  const std::string id = std::to_string(pid);
  if (std::optional<std::string> eu = FindInPath("eu-stack")) return {*eu, "-p", id};
  if (std::optional<std::string> gdb = FindInPath("gdb")) {
    return {
        *gdb, "-p", id, "-batch", "-nx", "-ex", "set pagination off", "-ex", "thread apply all bt"};
  }
  return {};
}

std::vector<std::string> CaptureStacks(const std::vector<StackRequest>& requests,
                                       double timeout_s) {
  std::map<std::string, std::string> env = {{"PATH", "/usr/bin:/bin"}, {"LC_ALL", "C"}};
  if (const char* path = std::getenv("PATH")) env["PATH"] = path;
  std::vector<Capture> captures(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    captures[i].request = &requests[i];
    Start(captures[i], env);
  }
  Collect(captures, timeout_s);
  std::vector<std::string> results;
  for (Capture& c : captures) {
    if (c.child) {
      int status = 0;
      bool ended = c.child->TryReap(&status);
      // Its output ended; the process itself follows a moment later.
      for (int i = 0; i < 50 && !ended && c.child->output_fd() < 0; ++i) {
        ::usleep(20000);
        ended = c.child->TryReap(&status);
      }
      if (!ended) c.output += "\n(the stack tool did not finish within the time allowed)\n";
      c.result = std::to_string(CountLines(c.output)) + " lines from " + c.tool +
                 (ended ? "" : " (timed out)");
      c.child.reset();  // kills and reaps what is left
    }
    const std::string text = c.request->header + "\n\n" + c.output;
    if (std::optional<common::FileError> error = common::WriteFileAtomic(c.request->path, text))
      c.result += "; " + error->Describe();
    results.push_back("rank " + std::to_string(c.request->rank) + ": " + c.result);
  }
  return results;
}

}  // namespace runner
