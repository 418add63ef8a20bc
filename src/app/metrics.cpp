#include "app/metrics.h"

#include <cmath>
#include <cstdio>

namespace intermission::app {

const std::map<std::string, std::string>& metric_help() {
  static const std::map<std::string, std::string> kHelp = {
      {"intermission_events_total", "Inputs received, by source and outcome."},
      {"intermission_sns_verification_failures_total", "SNS messages refused, by reason."},
      {"intermission_switches_total", "Backend switches, by environment and direction."},
      {"intermission_notifications_total",
       "Notice deliveries ended, by target, notice kind and result (delivered, failed, dropped)."},
      {"intermission_switch_duration_seconds", "Time to converge a backend after a change."},
      {"intermission_backend_errors_total", "Failed backend convergences, by environment."},
      {"intermission_switches_deferred_total",
       "Convergences left to another process holding the environment's lease."},
      {"intermission_maintenance", "1 while an environment is in maintenance (last decision)."},
      {"intermission_http_requests_total", "HTTP requests answered, by listener and status."},
  };
  return kHelp;
}

std::string Metrics::label_text(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ",";
    out += labels[i].first + "=\"";
    for (const char c : labels[i].second) {
      if (c == '\\' || c == '"') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += "\"";
  }
  return out + "}";
}

void Metrics::count(const std::string& name, const Labels& labels, double by) {
  const std::lock_guard lock(mu_);
  Family& f = families_[name];
  f.type = "counter";
  f.samples[name + label_text(labels)] += by;
}

void Metrics::set(const std::string& name, const Labels& labels, double value) {
  const std::lock_guard lock(mu_);
  Family& f = families_[name];
  f.type = "gauge";
  f.samples[name + label_text(labels)] = value;
}

void Metrics::observe(const std::string& name, const Labels& labels, double seconds) {
  const std::lock_guard lock(mu_);
  Family& f = families_[name];
  f.type = "summary";
  f.samples[name + "_sum" + label_text(labels)] += seconds;
  f.samples[name + "_count" + label_text(labels)] += 1;
}

std::string Metrics::render() const {
  const std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    const auto help = metric_help().find(name);
    out += "# HELP " + name + " " + (help != metric_help().end() ? help->second : name) + "\n";
    out += "# TYPE " + name + " " + f.type + "\n";
    for (const auto& [sample, value] : f.samples) {
      char buf[64];
      if (value == std::floor(value) && std::fabs(value) < 1e15) {
        std::snprintf(buf, sizeof buf, "%.0f", value);
      } else {
        std::snprintf(buf, sizeof buf, "%.6f", value);
      }
      out += sample + " " + buf + "\n";
    }
  }
  return out;
}

}  // namespace intermission::app
