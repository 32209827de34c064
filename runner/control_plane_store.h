#pragma once
// The control plane over the job's store (TCP), for agents started by hand on each machine the
// torchrun way (NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT): no MPI. The node-0 agent hosts the
// store on MASTER_ADDR:MASTER_PORT before anyone meets; every agent, node 0 included, is a
// client of it (runner/store_client.h). Keys live under /runner/ (the workers' under /worker/).
//
//   rendezvous   /runner/nnodes (node 0's NNODES, set first), /runner/join/<r> (ADD: a second
//                agent with the same NODE_RANK sees 2), /runner/agent/<r> (host, pid), then
//                /runner/joined counted up to NNODES within launch.rendezvous_timeout_s: the
//                last to join sets /runner/joined/go, which the others WAIT for (an agent that
//                aborts the rendezvous sets it too)
//   collectives  a gather: /runner/c<seq>/<r> values and /runner/c<seq>/n arrivals, the last
//                to arrive sets /runner/c<seq>/go, which node 0 WAITs for at the store; a
//                scatter: node 0 sets /runner/c<seq>/<r>, which agent r WAITs for; a broadcast:
//                /runner/c<seq>/v; seq counts calls, the same on every agent because every
//                agent calls them in the same order. No agent reads every agent's value
//   notices      /runner/a<attempt>/nn (ADD) and /runner/a<attempt>/n<k> = "<sender>\n<text>"
//                (forwarded by node 0: "<sender>,0\n<text>"), read by every agent but those
//                named; to node 0 alone /runner/a<attempt>/fn and /f<k>;
//                /runner/a<attempt>/done (EnterDone), /runner/a<attempt>/end/{n,go}
//                (EndAttempt: once every agent is there nobody sends, so nn is final)
//   liveness     /runner/alive/<r> bumped every heartbeat by a thread of each agent; node 0's
//                thread declares an agent whose counter stands still for lost_after_s lost
//                (/runner/lost names it); /runner/bye/<r> when an agent ends normally;
//                /runner/beat_from/<r>: the address:port its liveness connection comes from,
//                so node 0 names an agent whose connection closed without a bye at once
//   abort        /runner/abort: code, node rank, host and reason; the others end with that code
//
// Requests per agent: about 1 / poll_s while workers run (one MULTI_GET per poll; PollInterval
// lengthens it past 1,000 agents so node 0 answers at most ~10,000 polls a second), 1 / heartbeat_s
// for liveness (node 0: 2), and while waiting in a collective one WAIT per 0.5 s (the store
// answers it the moment the key is set; between two, the abort and lost keys are read). Node 0's
// store serves NNODES times that.

#include <functional>
#include <memory>
#include <string>

#include "runner/control_plane.h"

namespace runner {

class StoreServer;

struct StoreControlPlaneOptions {
  int rank = 0;  // NODE_RANK
  int size = 1;  // NNODES
  std::string host;
  std::string master_addr;  // as given: a name or an address
  int master_port = 0;
  std::string master_source;  // "MASTER_ADDR:MASTER_PORT" or "--master"
  double rendezvous_timeout_s = 300;
  double heartbeat_s = 0.5;
  double lost_after_s = 5;
  double poll_s = 0.1;
  double request_timeout_s = 30;
  std::shared_ptr<StoreServer> hosted;  // node 0: the store, already listening
};

// How often each of `agents` agents polls node 0's store while workers run: 0.1 s, and in jobs
// of over 1,000 agents agents / 10,000 s, so that node 0's store answers at most about 10,000
// polls a second (one costs it about 22 us: a fifth of a core), at the price of notices reaching
// agents that much later (0.4 s at 4,000 agents).
[[nodiscard]] double PollInterval(int agents);

// Meets the other agents (blocks until all NNODES have joined). Throws common::EnvironmentError
// (a second agent with this NODE_RANK, NNODES disagreeing) or common::CommunicationError (the
// master unreachable, nodes missing at the timeout; the message names them).
[[nodiscard]] std::unique_ptr<ControlPlane> MakeStoreControlPlane(
    const StoreControlPlaneOptions& options);

// Node 0: listens on MASTER_ADDR:MASTER_PORT. Throws common::CommunicationError naming the
// address, port and what to do when the port is taken or the address is not this machine's.
// Warnings (a loopback address in a multi-machine job) go to `warn`.
[[nodiscard]] std::shared_ptr<StoreServer> HostJobStore(
    const StoreControlPlaneOptions& options, const std::function<void(const std::string&)>& warn,
    const std::function<void(const std::string&)>& store_log);

}  // namespace runner
