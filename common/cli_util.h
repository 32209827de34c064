#pragma once
// Small helpers both command lines share.

#include <string>
#include <vector>

namespace boost::program_options {
class options_description;
}

namespace common {

// The closest long flag of `options` to `given` ("--dry-runn" -> "--dry-run"), or "".
[[nodiscard]] std::string SuggestFlag(const boost::program_options::options_description& options,
                                      const std::string& given);

// Turns a Boost.Program_options error into common::UsageError with a suggestion and a pointer to
// --help, for `program` ("runner").
[[noreturn]] void ThrowUsage(const boost::program_options::options_description& options,
                             const std::string& program, const std::exception& error,
                             const std::string& bad_token);

// The text of the exit-code table (common/exit_codes.h), for --help.
[[nodiscard]] std::string ExitCodeHelp();

// Project version and the versions of the libraries it was built with.
[[nodiscard]] std::string VersionLine(const std::string& program);

}  // namespace common
