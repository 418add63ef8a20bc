#include "adapters/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "adapters/unique_fd.h"

namespace intermission::adapters {
namespace {

ProcessRequest shell(const std::string& script,
                     std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  ProcessRequest r;
  r.argv = {"/bin/sh", "-c", script};
  r.timeout = timeout;
  return r;
}

TEST(Process, OutputStatusAndEnvironment) {
  auto r = shell("printf out; printf err >&2; exit 3");
  auto got = run_process(r);
  EXPECT_EQ(got.how, ProcessOutcome::How::kExited);
  EXPECT_EQ(got.code, 3);
  EXPECT_EQ(got.out, "out");
  EXPECT_EQ(got.err, "err");
  EXPECT_FALSE(got.succeeded());
  EXPECT_EQ(got.describe(r), "exited with status 3");

  r = shell("printf %s \"$ONLY\"; read line || printf ' stdin is empty'");
  r.env = std::vector<std::string>{"ONLY=this"};
  got = run_process(r);
  EXPECT_TRUE(got.succeeded());
  EXPECT_EQ(got.out, "this stdin is empty");

  r = shell("kill -TERM $$");
  got = run_process(r);
  EXPECT_EQ(got.how, ProcessOutcome::How::kSignalled);
  EXPECT_EQ(got.describe(r), "was killed by signal 15");
}

TEST(Process, StderrForTheLogAndForAnError) {
  auto got =
      run_process(shell("printf 'first\\n\\n  \\nsecond\\r\\n' >&2; i=0; "
                        "while [ $i -lt 60 ]; do echo line $i >&2; i=$((i+1)); done"));
  const auto lines = got.stderr_lines();
  ASSERT_EQ(lines.size(), 50u) << "the first 50 non-blank lines";
  EXPECT_EQ(lines[0], "first");
  EXPECT_EQ(lines[1], "second");
  EXPECT_EQ(lines[2], "line 0");
  const std::string tail = got.stderr_tail();
  EXPECT_EQ(tail.size(), 303u) << "the last 300 characters, marked as cut";
  EXPECT_EQ(tail.rfind("...", 0), 0u);
  EXPECT_EQ(tail.substr(tail.size() - 7), "line 59");
  got = run_process(shell("printf '  \\n' >&2"));
  EXPECT_TRUE(got.stderr_lines().empty());
  EXPECT_EQ(got.stderr_tail(), "");
}

TEST(Process, ACommandThatCannotRunIsNamedAsSuch) {
  ProcessRequest r;
  r.argv = {"intermission-no-such-command"};
  auto got = run_process(r);
  EXPECT_EQ(got.how, ProcessOutcome::How::kNotStarted);
  EXPECT_EQ(got.code, ENOENT);
  EXPECT_EQ(got.describe(r), "was not found");
  const std::string plain = ::testing::TempDir() + "intermission-not-executable";
  { const UniqueFd f(::open(plain.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)); }
  r.argv = {plain};
  got = run_process(r);
  ::unlink(plain.c_str());
  EXPECT_EQ(got.how, ProcessOutcome::How::kNotStarted);
  EXPECT_EQ(got.code, EACCES) << got.describe(r);
  EXPECT_EQ(got.describe(r), "could not be run: Permission denied");
}

// A helper that hangs, or that prints without end, is killed: the caller gets on.
TEST(Process, AHangingOrRunawayHelperIsKilled) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = shell("exec sleep 30", std::chrono::milliseconds(300));
  auto got = run_process(r);
  EXPECT_EQ(got.how, ProcessOutcome::How::kTimedOut);
  EXPECT_EQ(got.describe(r), "did not finish within 300 ms");
  r = shell("exec yes");
  r.output_limit = 100000;
  got = run_process(r);
  EXPECT_EQ(got.how, ProcessOutcome::How::kTooMuchOutput);
  EXPECT_GT(got.out.size(), 100000u);
  EXPECT_LT(got.out.size(), 100000u + 8192u) << "stops reading at the limit";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

// A helper whose pipes poll() can no longer watch is killed, and the log says why rather
// than blaming the helper for a deadline it did not miss.
TEST(Process, AHelperThatCannotBeWatchedIsNotCalledSlow) {
  ProcessRequest r;
  ProcessOutcome lost;
  lost.how = ProcessOutcome::How::kLost;
  lost.code = ENOMEM;
  EXPECT_EQ(lost.describe(r),
            "was killed: its output could not be watched (Cannot allocate memory)");
}

// Descriptors of ours that are not close-on-exec (as Asio's sockets are not) do not reach the
// helper: it could otherwise keep a listening socket of the daemon open after the daemon ends.
TEST(Process, OurDescriptorsStayOurs) {
  const UniqueFd leaky(::open("/dev/null", O_RDONLY));  // no O_CLOEXEC
  ASSERT_GE(leaky.fd, 3);
  auto r = shell("if [ -e /proc/self/fd/" + std::to_string(leaky.fd) +
                 " ]; then echo leaked; fi; ls /proc/self/fd | wc -l");
  const auto got = run_process(r);
  ASSERT_TRUE(got.succeeded()) << got.err;
  EXPECT_EQ(got.out.find("leaked"), std::string::npos);
  EXPECT_EQ(std::stoi(got.out), 4) << "0, 1, 2 and the one ls opens to read the folder";
}

}  // namespace
}  // namespace intermission::adapters
