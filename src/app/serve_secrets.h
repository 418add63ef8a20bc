// Where the `serve` daemon's secrets (operator token, webhook secret) come from, and whether
// they are fit to use. A secret that is configured but unreadable or too short turns its
// feature off with a reason to log; it never turns it off silently, and never on with a weak key.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

namespace intermission::app {

// The shortest secret accepted (characters, after trailing whitespace is removed): 32, the
// length of `openssl rand -hex 16` (128 bits).
inline constexpr std::size_t kMinSecretLength = 32;

// One secret's possible sources, in the order they are tried.
struct SecretSource {
  std::string what;        // for messages: "operator token"
  std::string file;        // 1. a file named in the config; empty: none
  std::string credential;  // 2. a systemd credential: $CREDENTIALS_DIRECTORY/<credential>
  std::string env_var;     // 3. an environment variable
};

struct LoadedSecret {
  std::string value;    // empty: the feature is off
  std::string origin;   // where the value (or the problem) came from; empty: nothing configured
  std::string problem;  // set when something is configured but unusable (value is then empty)
};

using GetEnv = std::function<std::optional<std::string>(const std::string&)>;

// Tries the sources in order; the first one that is configured decides (a configured file that
// cannot be read is a problem, not a reason to fall back to the environment). A credential
// counts as configured when its file exists in $CREDENTIALS_DIRECTORY.
LoadedSecret load_secret(const SecretSource& source, const GetEnv& getenv);

}  // namespace intermission::app
