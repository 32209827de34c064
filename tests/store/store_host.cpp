// store_host [ADDRESS [PORT]]: test-only host for runner::StoreServer, so stock PyTorch clients can
// be pointed at it from another process. Prints "port=<N>" on stdout once listening, logs to
// stderr, and serves until stdin reaches its end or SIGTERM/SIGINT arrives.

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "runner/store_server.h"

int main(int argc, char** argv) {
  const std::string address = argc > 1 ? argv[1] : "127.0.0.1";
  const long port = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 0;
  if (port < 0 || port > 65535) {
    std::cerr << "store_host: bad port '" << argv[2] << "'\n";
    return 2;
  }

  // Block the stop signals before the server's thread starts, so only signalfd sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  const int signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
  if (signal_fd < 0) {
    std::cerr << "store_host: signalfd: " << std::strerror(errno) << "\n";
    return 1;
  }

  try {
    runner::StoreServer server(address, static_cast<uint16_t>(port),
                               [](const std::string& line) { std::cerr << line << std::endl; });
    std::cout << "port=" << server.port() << std::endl;

    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {signal_fd, POLLIN, 0}};
    while (true) {
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        std::cerr << "store_host: poll: " << std::strerror(errno) << "\n";
        return 1;
      }
      if (fds[1].revents & POLLIN) {
        signalfd_siginfo info{};
        (void)!read(signal_fd, &info, sizeof(info));
        std::cerr << "store_host: signal " << info.ssi_signo << ", stopping" << std::endl;
        break;
      }
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buffer[256];
        const ssize_t n = read(STDIN_FILENO, buffer, sizeof(buffer));
        if (n <= 0 && !(n < 0 && errno == EINTR)) {
          std::cerr << "store_host: stdin closed, stopping" << std::endl;
          break;
        }
      }
      if (fds[0].revents & POLLNVAL) break;  // no stdin at all
    }
  } catch (const std::exception& e) {
    std::cerr << "store_host: " << e.what() << std::endl;
    return 1;
  }
  close(signal_fd);
  return 0;
}
