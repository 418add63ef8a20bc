#include "app/status.h"

#include <gtest/gtest.h>

namespace intermission::app {
namespace {

core::AuditEntry line(const std::string& kind, const std::string& message) {
  core::AuditEntry a;
  a.environment = "prod";
  a.kind = kind;
  a.message = message;
  return a;
}

std::vector<std::string> messages(const std::vector<core::AuditEntry>& audit) {
  std::vector<std::string> out;
  for (const auto& a : audit) out.push_back(a.message);
  return out;
}

TEST(StatusRecent, LeavesDeliveredNoticesOutAndKeepsTheNewestOldestFirst) {
  const std::vector<core::AuditEntry> audit = {
      line("hold", "h1"),         line("switched", "s1"),      line("notified", "n1"),
      line("notified", "n2"),     line("notify-failed", "f1"), line("lifted", "l1"),
      line("switched", "s2"),     line("notified", "n3"),      line("notify-dropped", "d1"),
  };
  EXPECT_EQ(messages(status_recent(audit, 4)),
            (std::vector<std::string>{"f1", "l1", "s2", "d1"}));
  EXPECT_EQ(messages(status_recent(audit, 100)),
            (std::vector<std::string>{"h1", "s1", "f1", "l1", "s2", "d1"}));
  EXPECT_TRUE(status_recent({}, 10).empty());
  EXPECT_TRUE(status_recent(audit, 0).empty());
}

}  // namespace
}  // namespace intermission::app
