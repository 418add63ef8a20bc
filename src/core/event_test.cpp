#include "core/event.h"

#include <gtest/gtest.h>

namespace intermission::core {
namespace {

using std::chrono::minutes;

TEST(OperatorCommandCheck, RefusesWhatTheCliRefusesWhicheverFrontEndItCameThrough) {
  const Time now = *parse_iso8601("2026-06-01T12:00:00Z");
  OperatorCommand c;
  c.environment = "prod";
  c.reason = "caf\xc3\xa9 closed";
  EXPECT_TRUE(check_operator_command(c, now).ok());
  c.until = now + minutes(1);
  EXPECT_TRUE(check_operator_command(c, now).ok());

  const auto refused = [&now](const OperatorCommand& cmd, const std::string& words) {
    const auto st = check_operator_command(cmd, now);
    ASSERT_FALSE(st.ok()) << words;
    EXPECT_EQ(st.error().code, ErrorCode::kRefused) << st.error().message;
    EXPECT_NE(st.error().message.find(words), std::string::npos) << st.error().message;
  };
  OperatorCommand past = c;
  past.until = *parse_iso8601("2001-01-01T00:00:00Z");
  refused(past, "in the past");
  OperatorCommand both = c;
  both.duration = minutes(30);
  refused(both, "not both");
  OperatorCommand zero = c;
  zero.until.reset();
  zero.duration = Duration(0);
  refused(zero, "longer than 0s");
  OperatorCommand latin1 = c;
  latin1.reason = "caf\xe9 closed";
  refused(latin1, "the reason is not valid UTF-8");
  OperatorCommand who = c;
  who.who = "j\xf6rg";
  refused(who, "who is not valid UTF-8");
  OperatorCommand nameless = c;
  nameless.environment.clear();
  refused(nameless, "environment");
  OperatorCommand problem = c;
  problem.problem = "operator 'for' value 'soon' is not a duration";
  refused(problem, "'soon'");
  // A hold's text is shown on the page and kept in the one stored item: bounded as a window's.
  OperatorCommand longest = c;
  longest.reason = std::string(kMaxOperatorText, 'r');
  longest.who = std::string(kMaxOperatorText, 'w');
  EXPECT_TRUE(check_operator_command(longest, now).ok());
  OperatorCommand long_reason = c;
  long_reason.reason = std::string(kMaxOperatorText + 1, 'r');
  refused(long_reason, "at most 500 bytes");
  OperatorCommand long_who = c;
  long_who.who = std::string(kMaxOperatorText + 1, 'w');
  refused(long_who, "at most 500 bytes");
}

}  // namespace
}  // namespace intermission::core
