#include "adapters/backend/log_backend.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "testing/fakes.h"

namespace intermission::adapters {
namespace {

TEST(LogBackend, RecordsStepsAndObservesThemBackPerEnvironment) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("intermission-log-backend-" + std::to_string(::getpid()) + ".log");
  std::filesystem::remove(path);
  testing::ManualClock clock;
  LogBackend prod(path.string(), "prod", clock);
  LogBackend staging(path.string(), "staging", clock);

  auto first = prod.observe();
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(std::get<core::SwitchObservation>(*first).on);

  ASSERT_TRUE(prod.apply(core::SetSwitch{true, "deploying", std::nullopt}).ok());
  EXPECT_TRUE(std::get<core::SwitchObservation>(*prod.observe()).on);
  EXPECT_FALSE(std::get<core::SwitchObservation>(*staging.observe()).on);

  // A torn or foreign line does not change what is observed.
  std::ofstream(path, std::ios::app) << "{\"environment\":\"prod\",\"on\":fal\nnot json\n";
  EXPECT_TRUE(std::get<core::SwitchObservation>(*prod.observe()).on);

  ASSERT_TRUE(prod.apply(core::SetSwitch{false, "", std::nullopt}).ok());
  EXPECT_FALSE(std::get<core::SwitchObservation>(*prod.observe()).on);
  std::filesystem::remove(path);
}

TEST(LogBackend, UnwritablePathIsAnError) {
  testing::ManualClock clock;
  LogBackend b("/nonexistent/dir/steps.log", "prod", clock);
  auto st = b.apply(core::SetSwitch{true, "", std::nullopt});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("/nonexistent/dir/steps.log"), std::string::npos);
}

}  // namespace
}  // namespace intermission::adapters
