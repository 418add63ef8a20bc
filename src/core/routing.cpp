#include "core/routing.h"

#include <charconv>

namespace intermission::core {
namespace {

bool match_from(std::string_view p, std::size_t pi, std::string_view t, std::size_t ti,
                std::vector<std::string>* captures) {
  while (pi < p.size()) {
    const char c = p[pi];
    if (c == '*') {
      // Shortest first, so earlier stars take as little as they can.
      for (std::size_t len = 0; ti + len <= t.size(); ++len) {
        const std::size_t mark = captures != nullptr ? captures->size() : 0;
        if (captures != nullptr) captures->emplace_back(t.substr(ti, len));
        if (match_from(p, pi + 1, t, ti + len, captures)) return true;
        if (captures != nullptr) captures->resize(mark);
      }
      return false;
    }
    if (ti >= t.size()) return false;
    if (c == '?') {
      ++pi;
      ++ti;
      continue;
    }
    char literal = c;
    if (c == '\\' && pi + 1 < p.size()) literal = p[++pi];
    if (literal != t[ti]) return false;
    ++pi;
    ++ti;
  }
  return ti == t.size();
}

std::size_t count_stars(std::string_view p) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\') {
      ++i;
    } else if (p[i] == '*') {
      ++n;
    }
  }
  return n;
}

// Expands the template; returns nullopt and sets `error` when it is malformed.
std::optional<std::string> expand(std::string_view tmpl, std::string_view application,
                                  std::string_view group, const std::vector<std::string>& stars,
                                  std::size_t star_count, std::string* error) {
  std::string out;
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] == '}') {
      if (error != nullptr) *error = "'}' without '{'";
      return std::nullopt;
    }
    if (tmpl[i] != '{') {
      out += tmpl[i];
      continue;
    }
    const std::size_t close = tmpl.find('}', i);
    if (close == std::string_view::npos) {
      if (error != nullptr) *error = "'{' without '}'";
      return std::nullopt;
    }
    const std::string_view name = tmpl.substr(i + 1, close - i - 1);
    i = close;
    if (name == "application") {
      out += application;
    } else if (name == "group") {
      out += group;
    } else {
      std::size_t n = 0;
      const auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), n);
      if (ec != std::errc() || ptr != name.data() + name.size() || n == 0 || n > star_count) {
        if (error != nullptr) {
          *error = "placeholder {" + std::string(name) + "} is not {application}, {group} or {1}..{" +
                   std::to_string(star_count) + "} (one per '*' in deployment_group)";
        }
        return std::nullopt;
      }
      if (n <= stars.size()) out += stars[n - 1];
    }
  }
  return out;
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text,
                std::vector<std::string>* captures) {
  if (captures != nullptr) captures->clear();
  return match_from(pattern, 0, text, 0, captures);
}

bool has_placeholders(std::string_view environment_template) {
  return environment_template.find('{') != std::string_view::npos;
}

std::string check_route(const Route& route) {
  if (route.environment.empty()) return "environment is empty";
  std::string error;
  const std::size_t stars = count_stars(route.deployment_group);
  if (!expand(route.environment, "", "", {}, stars, &error)) return error;
  return "";
}

std::optional<RouteMatch> route_deployment(const std::vector<Route>& routes,
                                           std::string_view application,
                                           std::string_view deployment_group) {
  std::vector<std::string> group_stars;
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const Route& r = routes[i];
    if (!glob_match(r.application, application)) continue;
    if (!glob_match(r.deployment_group, deployment_group, &group_stars)) continue;
    auto env = expand(r.environment, application, deployment_group, group_stars,
                      group_stars.size(), nullptr);
    if (!env || env->empty()) continue;
    return RouteMatch{*env, i};
  }
  return std::nullopt;
}

}  // namespace intermission::core
