// Runs a helper command to the end, with a deadline and a cap on what it prints (adapters
// only): AWS credential_process and Kubernetes exec plugins. A daemon cannot wait for ever on
// a helper that hangs, nor keep what a runaway one prints.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace intermission::adapters {

struct ProcessRequest {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH when it has no '/'
  // The environment ("NAME=value"); ours when unset.
  std::optional<std::vector<std::string>> env;
  // The helper may ask its user something on our terminal (an MFA code for a credential
  // process): it reads our stdin. Otherwise it reads /dev/null.
  bool inherit_stdin = false;
  std::chrono::milliseconds timeout{60000};
  std::size_t output_limit = 4 * 1024 * 1024;  // stdout and stderr together
};

struct ProcessOutcome {
  enum class How {
    kExited,         // `code` is its exit status
    kSignalled,      // `code` is the signal that ended it
    kTimedOut,       // killed at the deadline
    kTooMuchOutput,  // killed once it had printed more than the limit
    kNotStarted,     // `code` is the errno of the spawn (ENOENT: not found)
    kLost,           // killed because poll() failed: `code` is its errno
  };
  How how = How::kNotStarted;
  int code = 0;
  std::string out, err;

  [[nodiscard]] bool succeeded() const { return how == How::kExited && code == 0; }
  // "exited with status 3", "was killed by signal 9", "did not finish within 60000 ms", ...
  [[nodiscard]] std::string describe(const ProcessRequest& request) const;
  // The last 300 characters of what it printed on stderr, trimmed: for an error message.
  [[nodiscard]] std::string stderr_tail() const;
  // The first `max` non-blank lines it printed on stderr: for the log.
  [[nodiscard]] std::vector<std::string> stderr_lines(std::size_t max = 50) const;
};

// Starts the command with no file descriptor of ours but the three standard ones (none of
// the daemon's sockets leak into it), reads its stdout and stderr until both close, and
// waits for it. At the deadline or the output limit it is killed (SIGKILL) and reaped.
ProcessOutcome run_process(const ProcessRequest& request);

}  // namespace intermission::adapters
