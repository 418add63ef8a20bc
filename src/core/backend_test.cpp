#include "core/backend.h"

#include <gtest/gtest.h>

namespace intermission::core {
namespace {

TEST(Planner, SwitchStepsOnlyWhenSomethingDiffers) {
  const PageContext page{"db upgrade", std::nullopt};
  EXPECT_TRUE(plan(true, SwitchObservation{true, "", true}, page).empty());
  EXPECT_TRUE(plan(false, SwitchObservation{false, "", true}, page).empty());
  const auto on = plan(true, SwitchObservation{false, "", true}, page);
  ASSERT_EQ(on.size(), 1u);
  EXPECT_TRUE(std::get<SetSwitch>(on[0]).on);
  EXPECT_EQ(std::get<SetSwitch>(on[0]).reason, "db upgrade");
  const auto off = plan(false, SwitchObservation{true, "", true}, page);
  ASSERT_EQ(off.size(), 1u);
  EXPECT_FALSE(std::get<SetSwitch>(off[0]).on);
  EXPECT_EQ(std::get<SetSwitch>(off[0]).reason, "");
}

TEST(Planner, LiveStateRightButDurableCopyWrongIsRepaired) {
  // HAProxy switched, but the map file write failed: a reload would lose the state.
  const auto steps = plan(true, SwitchObservation{true, "", false}, PageContext{});
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_TRUE(std::get<SetSwitch>(steps[0]).on);
}

}  // namespace
}  // namespace intermission::core
