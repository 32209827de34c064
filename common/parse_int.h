#pragma once
// The one strict integer parser that the config, the runner's environment detection and the
// trainer's worker contract share. Strict: the whole text is a base-10 integer that fits int64 —
// no spaces, no hex or octal prefix, no trailing characters, no empty text. Callers word the
// error themselves (they know the variable or key and the fix), so this only says yes or no.

#include <cstdint>
#include <optional>
#include <string_view>

namespace common {

// Whether a leading '+' is accepted (config values, as YAML writes them) or not (environment
// variables, as schedulers and the runner write them).
enum class PlusSign { kReject, kAccept };

// `text` as an int64, or nullopt when it is not exactly an optional sign and decimal digits, or
// does not fit int64.
[[nodiscard]] std::optional<int64_t> ParseInt64(std::string_view text,
                                                PlusSign plus = PlusSign::kReject);

}  // namespace common
