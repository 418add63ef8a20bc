// Routing: which environment a deployment belongs to, from its application and deployment
// group names. Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"

namespace intermission::core {

// Glob match: '*' matches any run of characters (possibly empty), '?' exactly one, and
// '\' makes the next character literal. On a match, `captures` (if given) receives the text of
// each '*' in order; earlier stars take as little as they can, so "*-*" on "prod-web-1" gives
// {"prod", "web-1"}: the old recipe's "prefix before the first dash".
bool glob_match(std::string_view pattern, std::string_view text,
                std::vector<std::string>* captures = nullptr);

// True when the environment template uses placeholders ({1}, {group}, ...).
bool has_placeholders(std::string_view environment_template);

// Errors in a template ("{x}" unknown, unbalanced braces, a star number beyond the patterns),
// or an empty string when it is valid for `route`.
std::string check_route(const Route& route);

struct RouteMatch {
  std::string environment;
  std::size_t route_index = 0;
};

// The first route whose patterns both match; nullopt when none does.
std::optional<RouteMatch> route_deployment(const std::vector<Route>& routes,
                                           std::string_view application,
                                           std::string_view deployment_group);

}  // namespace intermission::core
