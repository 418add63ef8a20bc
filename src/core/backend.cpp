#include "core/backend.h"

namespace intermission::core {

std::string describe(const Step& step) {
  return std::visit(
      [](const auto& s) -> std::string {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, SetSwitch>) {
          std::string out = std::string("switch maintenance ") + (s.on ? "on" : "off");
          if (s.on && !s.reason.empty()) out += " (" + s.reason + ")";
          return out;
        }
      },
      step);
}

std::vector<Step> plan(bool desired_on, const Observation& observed, const PageContext& page) {
  return std::visit(
      [&](const auto& o) -> std::vector<Step> {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, SwitchObservation>) {
          if (o.on == desired_on && o.persisted) return {};
          return {SetSwitch{desired_on, desired_on ? page.reason : "", page.until}};
        }
      },
      observed);
}

}  // namespace intermission::core
