#pragma once
// The c10d store load generator (bench/store_load_main.cpp): one process holding N client sockets
// that replay the c10d start-up pattern against a store server, in either wire dialect, and the
// servers it measures, each started fresh per run as a child process so its CPU time and peak RSS
// (/proc/<pid>/stat, /proc/<pid>/status) belong to that run alone.
//
// Per client: connect (from one of several loopback source addresses, so ephemeral ports do not
// run short), VALIDATE first in the PyTorch 2.2+ dialect, ADD 1 to a counter; the client whose ADD
// returns N SETs the release key; every client WAITs for the release key, then GETs the counter,
// the release key and the configuration keys the generator set before the clients started. Every
// reply is checked: the ADD results are 1..N, each once; every GET returns what was set. Then one
// client sends GETs one after another while the others stay connected and idle.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace store_load {

enum class Dialect { kV1, kV2 };  // PyTorch 1.13 (no handshake), PyTorch 2.2+ (VALIDATE first)
// kBaseline: the runner's store as another build of this program hosts it (--baseline PATH), to
// compare two versions of the store in one run.
enum class Target { kRunner, kTorch, kBaseline };

struct RunConfig {
  Target target = Target::kRunner;
  Dialect dialect = Dialect::kV1;
  int clients = 1000;
  int config_keys = 3;       // keys set before the clients start, each GET by every client
  int max_connecting = 512;  // connects in flight at once
  int source_addresses = 8;  // 127.0.0.2 ... 127.0.0.(1+n)
  double timeout_s = 120;    // the run fails when its clients are not all done by then
  // Then, with every client still connected, one client's GETs one after another: a request's
  // cost to a server that holds N connections, almost all of them idle.
  int round_trips = 1000;
  pid_t server_pid = -1;  // whose CPU time each phase costs
};

struct RunResult {
  int done = 0;                  // clients that completed every step with the right values
  int failed = 0;                // clients that saw an error, a wrong value or the timeout
  std::string first_error;       // what went wrong first, for the report
  double connect_s = 0;          // start -> last client connected
  double barrier_s = 0;          // start -> last client released from its WAIT
  double total_s = 0;            // start -> last client's GETs answered
  double round_trip_us = 0;      // a GET's round trip afterwards (median), N connections open
  double round_trip_cpu_us = 0;  // the server's CPU time per such GET
  double server_cpu_s = 0;       // server's user + system time, start -> last GET answered
  double server_rss_mib = 0;     // server's peak RSS (VmHWM) at the end
  double server_base_mib = 0;    // server's RSS before the run
  double load_cpu_s = 0;         // this generator's own user + system time (same cores)
  bool ok() const { return failed == 0 && first_error.empty(); }
};

// A store server running as a child process.
struct Server {
  pid_t pid = -1;
  uint16_t port = 0;
  int stdin_fd = -1;  // closing it stops the server
};

// Starts the target's server listening on 127.0.0.1 and reads the port it printed. `self` is the
// program whose `self serve` hosts the runner's store; `python` runs PyTorch's TCPStore. Throws
// std::runtime_error naming the command when it does not start.
Server StartServer(Target target, const std::string& self, const std::string& python,
                   int max_connections);
// The torch version `python` imports ("1.13.0a0+git..."); empty when it imports none.
std::string TorchVersion(const std::string& python);
// Closes its stdin, waits for it (SIGKILL after 5 s).
void StopServer(Server& server);
// User + system CPU seconds of `pid` (/proc/<pid>/stat); RSS and peak RSS in MiB (status).
double CpuSeconds(pid_t pid);
double RssMiB(pid_t pid, const char* field);  // "VmRSS:" or "VmHWM:"

// Hosts the runner's StoreServer on 127.0.0.1 (port printed as "port=N") until stdin ends.
int Serve(int max_connections);

// Sets the keys every client will GET, over one blocking connection; then runs the clients. Fills
// all of RunResult but the RSS fields and load_cpu_s.
RunResult RunClients(uint16_t port, const RunConfig& config);

// Raises RLIMIT_NOFILE (soft and, where allowed, hard) to at least `wanted`; returns the soft
// limit in force afterwards. Children inherit it.
uint64_t RaiseFileLimit(uint64_t wanted);

}  // namespace store_load
