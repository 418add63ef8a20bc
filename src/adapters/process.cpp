#include "adapters/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "adapters/unique_fd.h"

extern char** environ;

namespace intermission::adapters {
namespace {

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  p.reserve(strings.size() + 1);
  for (auto& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

}  // namespace

std::string ProcessOutcome::describe(const ProcessRequest& request) const {
  switch (how) {
    case How::kExited: return "exited with status " + std::to_string(code);
    case How::kSignalled: return "was killed by signal " + std::to_string(code);
    case How::kTimedOut:
      return "did not finish within " + std::to_string(request.timeout.count()) + " ms";
    case How::kTooMuchOutput:
      return "printed more than " + std::to_string(request.output_limit) + " bytes";
    case How::kLost:
      return "was killed: its output could not be watched (" + std::string(std::strerror(code)) +
             ")";
    case How::kNotStarted:
      return code == ENOENT ? std::string("was not found")
                            : "could not be run: " + std::string(std::strerror(code));
  }
  return "?";
}

std::string ProcessOutcome::stderr_tail() const {
  const std::size_t first = err.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  std::string last = err.substr(first, err.find_last_not_of(" \t\r\n") + 1 - first);
  if (last.size() > 300) last = "..." + last.substr(last.size() - 300);
  return last;
}

std::vector<std::string> ProcessOutcome::stderr_lines(std::size_t max) const {
  std::vector<std::string> lines;
  std::size_t at = 0;
  while (at < err.size() && lines.size() < max) {
    const std::size_t end = std::min(err.find('\n', at), err.size());
    std::string line = err.substr(at, end - at);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) lines.push_back(std::move(line));
    at = end + 1;
  }
  return lines;
}

ProcessOutcome run_process(const ProcessRequest& request) {
  ProcessOutcome outcome;
  if (request.argv.empty()) {
    outcome.code = EINVAL;
    return outcome;
  }
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    outcome.code = errno;
    return outcome;
  }
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    outcome.code = errno;
    return outcome;
  }
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);

  std::vector<std::string> argv = request.argv;
  std::vector<std::string> env;
  if (request.env) {
    env = *request.env;
  } else {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  }
  auto argv_p = pointers(argv);
  auto env_p = pointers(env);

  // posix_spawnp, not fork: safe in a threaded process, and a command that cannot be run
  // (ENOENT, EACCES) is its result. Every descriptor above stderr is closed in the child
  // (glibc 2.34+): the daemon's listening sockets are not close-on-exec under Asio.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!request.inherit_stdin) {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&actions, out_write.fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_write.fd, 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  pid_t pid = 0;
  const int spawned =
      ::posix_spawnp(&pid, argv_p[0], &actions, nullptr, argv_p.data(), env_p.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(std::exchange(out_write.fd, -1));
  ::close(std::exchange(err_write.fd, -1));
  if (spawned != 0) {
    outcome.code = spawned;
    return outcome;
  }

  const auto deadline = std::chrono::steady_clock::now() + request.timeout;
  pollfd fds[2] = {{out_read.fd, POLLIN, 0}, {err_read.fd, POLLIN, 0}};
  int open = 2;
  std::optional<ProcessOutcome::How> killed;
  int lost_errno = 0;
  while (open > 0 && !killed) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      killed = ProcessOutcome::How::kTimedOut;
      break;
    }
    const int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) {
      lost_errno = errno;
      killed = ProcessOutcome::How::kLost;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buf[4096];
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        (i == 0 ? outcome.out : outcome.err).append(buf, static_cast<std::size_t>(got));
        if (outcome.out.size() + outcome.err.size() > request.output_limit) {
          killed = ProcessOutcome::How::kTooMuchOutput;
        }
      } else if (got == 0 || errno != EINTR) {
        fds[i].fd = -1;  // closed with out_read / err_read
        --open;
      }
    }
  }
  if (killed) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (killed) {
    outcome.how = *killed;
    outcome.code = lost_errno;
  } else if (WIFEXITED(status)) {
    outcome.how = ProcessOutcome::How::kExited;
    outcome.code = WEXITSTATUS(status);
  } else {
    outcome.how = ProcessOutcome::How::kSignalled;
    outcome.code = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  }
  return outcome;
}

}  // namespace intermission::adapters
