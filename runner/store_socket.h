#pragma once
// The socket calls of the store server (runner/store_server.h), apart from its event loop:
// listening on exactly one address, naming an accepted connection, refusing one,
// and the process's open-files limit that bounds how many connections it can hold.

#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace runner::store_socket {

// A non-blocking socket listening on `address` (an IPv4 or IPv6 literal) and `port` (0: the OS
// picks); `*bound_port` is the port it got. Throws common::CommunicationError naming the address
// and port, and the fix, when it cannot listen.
//
// Its connections get TCP_NODELAY (replies are small and awaited), and keepalive probes after
// 60 s of silence, every 10 s, 6 unanswered ending the connection: a peer whose host vanished
// (power, cable, kernel panic) stops holding a connection after about 2 minutes. They are set on
// the listening socket, and Linux copies them into every accepted one: no system call per
// connection (tests/store/store_server_binding_test.cpp checks it).
[[nodiscard]] int Listen(const std::string& address, uint16_t port, uint16_t* bound_port);

// "10.0.0.7:41234", "[fd00::7]:41234"; a v4-mapped IPv6 peer is named by its IPv4 address.
[[nodiscard]] std::string PeerName(const sockaddr_storage& peer, socklen_t length);

// Closes with a reset instead of the orderly end: the refused client learns at once, and a flood
// of refused connections leaves no TIME_WAIT sockets behind.
void CloseAtOnce(int fd);

// Raises the soft limit on open files towards `wanted` (at most the hard limit) and returns the
// soft limit in force afterwards.
[[nodiscard]] uint64_t RaiseOpenFilesLimit(uint64_t wanted);

// Sends what the non-blocking socket `fd` takes now of `out`, erasing it from `out`; false when
// the connection failed (anything but EAGAIN or EINTR).
[[nodiscard]] bool SendSome(int fd, std::string& out);

// Why a connection epoll_ctl just refused (errno) is closed: a connection epoll does not watch
// would never be served, so it is closed and said rather than left silent.
[[nodiscard]] std::string Unwatched();

}  // namespace runner::store_socket
