#include "common/cli_util.h"

#include <yaml-cpp/yaml.h>

#include <boost/program_options.hpp>
#include <boost/version.hpp>
#include <sstream>

#include "common/config_schema.h"
#include "common/errors.h"
#include "common/version.h"

namespace common {

std::string SuggestFlag(const boost::program_options::options_description& options,
                        const std::string& given) {
  std::string flag = given.substr(0, given.find('='));
  while (!flag.empty() && flag[0] == '-') flag.erase(0, 1);
  std::string best;
  size_t best_distance = 3;
  for (const auto& option : options.options()) {
    const std::string name = option->long_name();
    if (name.empty()) continue;
    size_t d = EditDistance(flag, name);
    if (d < best_distance) {
      best_distance = d;
      best = "--" + name;
    }
  }
  return best;
}

void ThrowUsage(const boost::program_options::options_description& options,
                const std::string& program, const std::exception& error,
                const std::string& bad_token) {
  std::string message = error.what();
  if (!bad_token.empty()) {
    std::string suggestion = SuggestFlag(options, bad_token);
    if (!suggestion.empty()) message += "; did you mean " + suggestion + "?";
  }
  throw UsageError(message + " (see " + program + " --help)");
}

std::string ExitCodeHelp() {
  std::ostringstream out;
  out << "Exit codes:\n";
  for (int code : {kExitOk, kExitLogsIncomplete, kExitUsage, kExitConfig, kExitEnvironment,
                   kExitRendezvous, kExitDiverged, kExitStopped, kExitRequeued, kExitCollateral,
                   kExitHung, kExitWorkerFailed, kExitWorkerSignaled, kExitInternal}) {
    out << "  " << (code < 10 ? " " : "") << code << "  " << ExitCodeName(code) << "\n";
  }
  return out.str();
}

std::string VersionLine(const std::string& program) {
  std::ostringstream out;
  out << program << " " << kProjectVersion << " (boost " << BOOST_VERSION / 100000 << "."
      << BOOST_VERSION / 100 % 1000 << ", C++ " << __cplusplus << ", " << __VERSION__ << ")";
  return out.str();
}

}  // namespace common
