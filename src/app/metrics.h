// The daemon's counters and gauges, rendered in the Prometheus text exposition format
// (version 0.0.4). Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace intermission::app {

class Metrics {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  void count(const std::string& name, const Labels& labels, double by = 1);
  void set(const std::string& name, const Labels& labels, double value);
  // A duration observation: name_sum and name_count.
  void observe(const std::string& name, const Labels& labels, double seconds);

  // The whole exposition, with HELP and TYPE lines for every family.
  std::string render() const;

 private:
  struct Family {
    std::string type;  // counter | gauge | summary
    std::map<std::string, double> samples;  // rendered label set (with suffix) -> value
  };
  static std::string label_text(const Labels& labels);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

// The help text of each metric the daemon exports.
const std::map<std::string, std::string>& metric_help();

}  // namespace intermission::app
