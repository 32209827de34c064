// The servers the load generator measures (bench/store_load.h): started as child processes,
// their port read from their first line, their CPU time and memory read from /proc.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/store_load.h"
#include "runner/store_server.h"

namespace store_load {

namespace {

// PyTorch's own TCPStore server, hosted the way rank 0 hosts it (1.13 in Debian 12; from 2.4 on
// the libuv server by default).
const char* kTorchServer =
    "import sys, torch.distributed as d\n"
    "s = d.TCPStore('127.0.0.1', 0, is_master=True, wait_for_workers=False)\n"
    "print('port=%d' % s.port, flush=True)\n"
    "sys.stdin.read()\n";

// The first line of `fd` within `timeout_s`, without its newline; empty on end or timeout.
std::string ReadLine(int fd, double timeout_s) {
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char c = 0;
    const ssize_t n = read(fd, &c, 1);
    if (n <= 0) break;
    if (c == '\n') return line;
    line += c;
  }
  return {};
}

}  // namespace

Server StartServer(Target target, const std::string& self, const std::string& python,
                   int max_connections) {
  std::vector<std::string> args;
  if (target != Target::kTorch) {
    args = {self, "serve", std::to_string(max_connections)};
  } else {
    args = {python, "-c", kTorchServer};
  }
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("store_load: pipe: ") + std::strerror(errno));
  }
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  Server server;
  server.pid = pid;
  server.stdin_fd = in[1];
  const std::string line = ReadLine(out[0], 60);
  close(out[0]);
  if (line.rfind("port=", 0) != 0) {
    StopServer(server);
    throw std::runtime_error("store_load: '" + args[0] + " " + args[1] +
                             "' did not print its port (port=N) within 60 s; got '" + line + "'");
  }
  server.port = static_cast<uint16_t>(std::stoi(line.substr(5)));
  return server;
}

std::string TorchVersion(const std::string& python) {
  const std::string command =
      "'" + python + "' -c 'import torch; print(torch.__version__)' 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {};
  char line[256] = {};
  const bool got = std::fgets(line, sizeof(line), pipe) != nullptr;
  pclose(pipe);
  std::string version = got ? line : "";
  while (!version.empty() && std::isspace(static_cast<unsigned char>(version.back())))
    version.pop_back();
  return version;
}

void StopServer(Server& server) {
  if (server.pid <= 0) return;
  close(server.stdin_fd);
  for (int i = 0; i < 500; ++i) {
    if (waitpid(server.pid, nullptr, WNOHANG) == server.pid) {
      server.pid = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(server.pid, SIGKILL);
  waitpid(server.pid, nullptr, 0);
  server.pid = -1;
}

double CpuSeconds(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
  }
  return ticks / double(sysconf(_SC_CLK_TCK));
}

double RssMiB(pid_t pid, const char* name) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(file, line)) {
    if (line.rfind(name, 0) == 0) return std::stod(line.substr(std::strlen(name))) / 1024.0;
  }
  return 0;
}

int Serve(int max_connections) {
  runner::StoreServerOptions options;
  options.max_connections = size_t(max_connections);
  try {
    runner::StoreServer server(
        "127.0.0.1", 0, [](const std::string& line) { std::cerr << line << std::endl; }, options);
    std::cout << "port=" << server.port() << std::endl;
    char buffer[256];
    while (true) {
      const ssize_t n = read(STDIN_FILENO, buffer, sizeof(buffer));
      if (n == 0 || (n < 0 && errno != EINTR)) break;
    }
  } catch (const std::exception& e) {
    std::cerr << "store_load serve: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}

uint64_t RaiseFileLimit(uint64_t wanted) {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur >= wanted) return limit.rlim_cur;
  rlimit raised{wanted, std::max<rlim_t>(limit.rlim_max, wanted)};
  if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return wanted;  // root may raise the hard limit
  raised = {std::min<rlim_t>(wanted, limit.rlim_max), limit.rlim_max};
  if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return raised.rlim_cur;
  return limit.rlim_cur;
}

}  // namespace store_load
