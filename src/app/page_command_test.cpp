#include "app/page_command.h"

#include <gtest/gtest.h>

#include <sstream>

namespace intermission::app {
namespace {

struct PageRun {
  int code;
  std::string err;
};

PageRun page_main(const std::vector<std::string>& args) {
  std::istringstream in;
  std::ostringstream out;
  std::ostringstream err;
  CliIo io{in, out, err, [](const std::string&) { return std::optional<std::string>(); }, {}};
  const int code = run_page_main(args, io);
  return {code, err.str()};
}

// intermission-page takes the words `intermission` would have been given after its name.
TEST(PageMain, TakesIntermissionsWordsGlobalOptionsFirst) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--log-level", "error", "page", "--bogus"},
           {"--log-level=error", "page", "--bogus"},
           {"page", "--bogus"},
           {"--bogus"}}) {
    const PageRun r = page_main(args);
    EXPECT_EQ(r.code, kExitUsage);
    EXPECT_NE(r.err.find("--bogus"), std::string::npos) << r.err;
  }
}

TEST(PageMain, EnvironmentNeedsTheFullBinary) {
  const PageRun r = page_main({"page", "--environment", "prod"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("intermission page --environment"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace intermission::app
