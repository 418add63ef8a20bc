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

ElbObservation serving_app() {
  ElbObservation o;
  o.page_instances = {"i-page"};
  o.group_attached = true;
  o.group_state = "InService";
  o.app_in_service = 2;
  return o;
}

std::vector<std::string> described(const std::vector<Step>& steps) {
  std::vector<std::string> out;
  for (const auto& s : steps) out.push_back(describe(s));
  return out;
}

TEST(ElbPlanner, OnIsRegisterThenWaitThenDetachNeverDetachFirst) {
  const auto steps = plan(true, serving_app(), PageContext{});
  EXPECT_EQ(described(steps),
            (std::vector<std::string>{
                "register page instance(s) i-page with the load balancer",
                "wait until page instance(s) i-page are InService",
                "detach the Auto Scaling group from the load balancer"}));
}

TEST(ElbPlanner, OnResumesWhereAnInterruptedRunStopped) {
  ElbObservation registered = serving_app();
  registered.page_registered = {"i-page"};
  EXPECT_EQ(plan(true, registered, {}).size(), 2u) << "wait, then detach";
  registered.page_in_service = {"i-page"};
  EXPECT_EQ(described(plan(true, registered, {})),
            std::vector<std::string>{"detach the Auto Scaling group from the load balancer"});
  registered.group_attached = false;
  EXPECT_TRUE(plan(true, registered, {}).empty()) << "done: a repeated run does nothing";
}

TEST(ElbPlanner, OffIsAttachThenWaitThenDeregister) {
  ElbObservation in_maintenance;
  in_maintenance.page_instances = {"i-page", "i-page2"};
  in_maintenance.page_registered = {"i-page", "i-page2"};
  in_maintenance.page_in_service = {"i-page", "i-page2"};
  in_maintenance.min_app_in_service = 2;
  EXPECT_EQ(described(plan(false, in_maintenance, {})),
            (std::vector<std::string>{
                "attach the Auto Scaling group to the load balancer",
                "wait until 2 of the group's instances are InService",
                "deregister page instance(s) i-page, i-page2 from the load balancer"}));
  in_maintenance.group_attached = true;
  in_maintenance.app_in_service = 2;
  EXPECT_EQ(plan(false, in_maintenance, {}).size(), 1u);
  EXPECT_TRUE(plan(false, serving_app(), {}).empty());
}

}  // namespace
}  // namespace intermission::core
