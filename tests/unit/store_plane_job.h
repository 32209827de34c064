#pragma once
// A job of agents as threads over one real StoreServer on loopback, for the store control
// plane's tests (runner/control_plane_store.h).

#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "runner/control_plane.h"
#include "runner/control_plane_store.h"
#include "runner/store_server.h"

namespace runner::testing_support {

struct Job {
  std::shared_ptr<StoreServer> store = std::make_shared<StoreServer>("127.0.0.1", 0);

  StoreControlPlaneOptions Options(int rank, int size) const {
    StoreControlPlaneOptions o;
    o.rank = rank;
    o.size = size;
    o.host = "host" + std::to_string(rank);
    o.master_addr = "127.0.0.1";
    o.master_port = store->port();
    o.master_source = "MASTER_ADDR:MASTER_PORT";
    o.rendezvous_timeout_s = 10;
    o.heartbeat_s = 0.05;
    o.lost_after_s = 0.5;
    o.poll_s = 0.01;
    o.request_timeout_s = 5;
    if (rank == 0) o.hosted = store;
    return o;
  }

  // Runs `body` on `size` agents, each on its own thread, and returns what each returned.
  template <typename T>
  std::vector<T> Run(int size, const std::function<T(ControlPlane&)>& body) const {
    std::vector<std::future<T>> futures;
    for (int r = 0; r < size; ++r) {
      futures.push_back(std::async(std::launch::async, [this, r, size, &body] {
        std::unique_ptr<ControlPlane> plane = MakeStoreControlPlane(Options(r, size));
        return body(*plane);
      }));
    }
    std::vector<T> out;
    for (auto& f : futures) out.push_back(f.get());
    return out;
  }
};

}  // namespace runner::testing_support
