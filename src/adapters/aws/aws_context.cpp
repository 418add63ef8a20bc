#include "adapters/aws/aws_context.h"

namespace intermission::adapters::aws {

AwsContext::AwsContext(std::string configured_region, Getenv getenv, const core::Clock& clock,
                       core::Logger& log, RetryPolicy retry, Sleeper sleeper)
    : configured_region_(std::move(configured_region)),
      getenv_(getenv),
      profile_region_(profile_region(getenv)),
      log_(log),
      retry_(retry),
      sleeper_(std::move(sleeper)),
      credentials_(std::move(getenv), clock, &log,
                   resolve_region(configured_region_, getenv_).value_or(profile_region_)) {}

core::Result<AwsClient*> AwsContext::client(const Service& service, const std::string& region) {
  auto r = resolve_region(region.empty() ? configured_region_ : region, getenv_);
  if (!r && !profile_region_.empty()) r = profile_region_;
  if (!r) {
    return core::Error::config(
        "no AWS region: set aws.region in the config, AWS_REGION, or "
        "region in the AWS profile (~/.aws/config)");
  }
  const auto key = std::make_pair(service.endpoint_prefix + "/" + service.api_version +
                                      service.json_target,
                                  *r);
  auto it = clients_.find(key);
  if (it == clients_.end()) {
    auto c = std::make_unique<AwsClient>(service, *r, resolve_endpoint(service, *r, getenv_),
                                         credentials_, log_, retry_, sleeper_, [this] {
                                           return CallDeadlines{deadline_, cleanup_deadline_};
                                         });
    it = clients_.emplace(key, std::move(c)).first;
  }
  return it->second.get();
}

}  // namespace intermission::adapters::aws
