// store_load: the c10d store at thousands of clients (bench/store_load.h, bench/README.md).
//
//   store_load [--targets runner,torch] [--dialects v1,v2] [--clients 1000,4000,16000,32000]
//              [--repeats 3] [--timeout-s 120] [--python /usr/bin/python3] [--config-keys 3]
//              [--sources 8] [--round-trips 2000] [--server-cap N] [--baseline PATH]
//   store_load serve MAX_CONNECTIONS      (hosts the runner's store; used by the line above)
//
// Runs are interleaved: for each repeat, each client count, each dialect, each target. PyTorch's
// server runs in the dialect of its own version's clients: v1 before 2.2 (Debian 12's 1.13), v2
// from 2.2 on (named torch-<major.minor> in the output). One line per run, then a
// median/min/max table. Exit codes: 0 every run of the runner's store completed with the right
// values, 1 one did not (or the set-up failed), 2 usage. PyTorch's server is the comparison: its
// failures are reported, not an error. --server-cap caps the runner's store below the clients (to
// see a run fail); by default it holds them all. --targets ...,baseline --baseline PATH adds the
// store as another build of this program hosts it (an older commit, say).

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "bench/store_load.h"

namespace store_load {
namespace {

struct Options {
  std::vector<Target> targets = {Target::kRunner, Target::kTorch};
  std::vector<Dialect> dialects = {Dialect::kV1, Dialect::kV2};
  std::vector<int> clients = {1000, 4000, 16000, 32000};
  int repeats = 3;
  int server_cap = 0;  // the runner's max_connections; 0: clients + 64
  RunConfig base;
  std::string python = "/usr/bin/python3";
  std::string baseline;  // another build of store_load, for Target::kBaseline
};

std::vector<std::string> Split(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

[[noreturn]] void Usage(const std::string& why) {
  std::cerr
      << "store_load: " << why
      << "\nusage: store_load [--targets runner,torch] [--dialects v1,v2] "
         "[--clients 1000,4000] [--repeats N] [--timeout-s S] [--python PATH] "
         "[--config-keys N] [--sources N] [--round-trips N] [--server-cap N] [--baseline PATH]\n";
  std::exit(2);
}

int Positive(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < 1 || value > 1000000) {
    Usage(flag + " '" + text + "': expected a whole number in [1, 1000000]");
  }
  return int(value);
}

void SetList(Options& o, const std::string& flag, const std::string& value) {
  if (flag == "--targets") {
    o.targets.clear();
    for (const std::string& t : Split(value)) {
      if (t != "runner" && t != "torch" && t != "baseline") {
        Usage("--targets: '" + t + "' is not runner, torch or baseline");
      }
      o.targets.push_back(t == "runner"  ? Target::kRunner
                          : t == "torch" ? Target::kTorch
                                         : Target::kBaseline);
    }
  } else if (flag == "--dialects") {
    o.dialects.clear();
    for (const std::string& d : Split(value)) {
      if (d != "v1" && d != "v2") Usage("--dialects: '" + d + "' is not v1 or v2");
      o.dialects.push_back(d == "v1" ? Dialect::kV1 : Dialect::kV2);
    }
  } else {
    o.clients.clear();
    for (const std::string& n : Split(value)) o.clients.push_back(Positive(flag, n));
  }
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) Usage(flag + " needs a value");
    const std::string value = argv[i + 1];
    if (flag == "--targets" || flag == "--dialects" || flag == "--clients") {
      SetList(o, flag, value);
    } else if (flag == "--repeats") {
      o.repeats = Positive(flag, value);
    } else if (flag == "--timeout-s") {
      o.base.timeout_s = Positive(flag, value);
    } else if (flag == "--baseline") {
      o.baseline = value;
    } else if (flag == "--python") {
      o.python = value;
    } else if (flag == "--config-keys") {
      o.base.config_keys = Positive(flag, value);
    } else if (flag == "--sources") {
      o.base.source_addresses = std::min(Positive(flag, value), 250);
    } else if (flag == "--round-trips") {
      o.base.round_trips = Positive(flag, value);
    } else if (flag == "--server-cap") {
      o.server_cap = Positive(flag, value);
    } else {
      Usage("unknown flag '" + flag + "'");
    }
  }
  if (o.targets.empty() || o.dialects.empty() || o.clients.empty()) Usage("an empty list");
  if (o.baseline.empty() !=
      (std::count(o.targets.begin(), o.targets.end(), Target::kBaseline) == 0)) {
    Usage("--baseline PATH and the target baseline go together");
  }
  return o;
}

// PyTorch's server as the output names it, and the one dialect it runs in (SetTorch).
std::string torch_name = "torch";
Dialect torch_dialect = Dialect::kV1;

// From the version `python` imports: "torch-1.13" speaks v1, "torch-2.11" v2. Returns false when
// it imports no torch.
bool SetTorch(const std::string& python) {
  const std::string version = TorchVersion(python);
  int major = 0;
  int minor = 0;
  if (std::sscanf(version.c_str(), "%d.%d", &major, &minor) != 2) return false;
  torch_name = "torch-" + std::to_string(major) + "." + std::to_string(minor);
  torch_dialect = major > 2 || (major == 2 && minor >= 2) ? Dialect::kV2 : Dialect::kV1;
  return true;
}

std::string Name(Target t) {
  return t == Target::kRunner ? "runner" : t == Target::kTorch ? torch_name : "baseline";
}
const char* Name(Dialect d) { return d == Dialect::kV1 ? "v1" : "v2"; }

double OwnCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

RunResult Measure(const RunConfig& config, const std::string& self, const Options& o) {
  const int cap = o.server_cap > 0 ? o.server_cap : config.clients + 64;
  const std::string& program = config.target == Target::kBaseline ? o.baseline : self;
  Server server = StartServer(config.target, program, o.python, cap);
  RunResult result;
  const double base_mib = RssMiB(server.pid, "VmRSS:");
  const double own_before = OwnCpuSeconds();
  try {
    RunConfig with_pid = config;
    with_pid.server_pid = server.pid;
    result = RunClients(server.port, with_pid);
  } catch (...) {
    StopServer(server);
    throw;
  }
  result.server_rss_mib = RssMiB(server.pid, "VmHWM:");
  result.server_base_mib = base_mib;
  result.load_cpu_s = OwnCpuSeconds() - own_before;
  StopServer(server);
  return result;
}

using Key = std::tuple<int, int, int>;  // clients, dialect, target

std::string Stat(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  const double median = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  char text[96];
  std::snprintf(text, sizeof(text), "%.3f (%.3f-%.3f)", median, values.front(), values.back());
  return text;
}

void PrintTable(const std::map<Key, std::vector<RunResult>>& runs) {
  std::printf(
      "\n| clients | dialect | server | complete | connect s | barrier s | total s | server CPU s "
      "| peak RSS MiB | GET round trip us | server CPU per GET us |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& [key, results] : runs) {
    std::vector<double> columns[7];
    int complete = 0;
    for (const RunResult& r : results) {
      complete += r.ok() ? 1 : 0;
      const double values[7] = {r.connect_s,        r.barrier_s,      r.total_s,
                                r.server_cpu_s,     r.server_rss_mib, r.round_trip_us,
                                r.round_trip_cpu_us};
      for (int i = 0; i < 7; ++i) columns[i].push_back(values[i]);
    }
    std::printf("| %d | %s | %s | %d/%zu |", std::get<0>(key), Name(Dialect(std::get<1>(key))),
                Name(Target(std::get<2>(key))).c_str(), complete, results.size());
    for (const std::vector<double>& column : columns) std::printf(" %s |", Stat(column).c_str());
    std::printf("\n");
  }
}

void PrintRun(int repeat, const RunConfig& c, const RunResult& r) {
  std::printf(
      "repeat=%d clients=%d dialect=%s server=%s done=%d failed=%d connect_s=%.3f barrier_s=%.3f "
      "total_s=%.3f round_trip_us=%.1f (server cpu %.1f) server_cpu_s=%.2f server_rss_mib=%.1f "
      "(before %.1f) "
      "load_cpu_s=%.2f%s%s\n",
      repeat, c.clients, Name(c.dialect), Name(c.target).c_str(), r.done, r.failed, r.connect_s,
      r.barrier_s, r.total_s, r.round_trip_us, r.round_trip_cpu_us, r.server_cpu_s,
      r.server_rss_mib, r.server_base_mib, r.load_cpu_s,
      r.ok() ? "" : " FAILED: ", r.first_error.c_str());
  std::fflush(stdout);
}

int Main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "serve") return Serve(Positive("serve", argv[2]));
  const Options o = Parse(argc, argv);
  if (std::count(o.targets.begin(), o.targets.end(), Target::kTorch) > 0 && !SetTorch(o.python)) {
    std::cerr << "store_load: " << o.python << " imports no torch (target torch); install "
              << "python3-torch, pass --python, or leave torch out of --targets\n";
    return 1;
  }
  const int most = *std::max_element(o.clients.begin(), o.clients.end());
  // Children inherit the limit: PyTorch's server needs some room besides its connections.
  const uint64_t files = RaiseFileLimit(uint64_t(most) + 1024);
  if (files < uint64_t(most) + 64) {
    std::cerr << "store_load: " << most << " clients need " << most + 64
              << " open files here and as many in the server, and the limit is " << files
              << " (ulimit -n; the hard limit, ulimit -Hn, rises only with CAP_SYS_RESOURCE); "
                 "raise it or use fewer clients\n";
    return 1;
  }
  char self[4096] = {};
  if (readlink("/proc/self/exe", self, sizeof(self) - 1) <= 0) return 1;
  std::map<Key, std::vector<RunResult>> runs;
  bool runner_ok = true;
  for (int repeat = 1; repeat <= o.repeats; ++repeat) {
    for (int clients : o.clients) {
      for (Dialect dialect : o.dialects) {
        for (Target target : o.targets) {
          if (target == Target::kTorch && dialect != torch_dialect) continue;
          RunConfig config = o.base;
          std::tie(config.clients, config.dialect, config.target) =
              std::tuple(clients, dialect, target);
          const RunResult r = Measure(config, self, o);
          PrintRun(repeat, config, r);
          runs[Key(clients, int(dialect), int(target))].push_back(r);
          if (target == Target::kRunner && !r.ok()) runner_ok = false;
        }
      }
    }
  }
  PrintTable(runs);
  return runner_ok ? 0 : 1;
}

}  // namespace
}  // namespace store_load

int main(int argc, char** argv) {
  try {
    return store_load::Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
