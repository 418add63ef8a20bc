// The shared state store in AWS: one DynamoDB table. The state of an environment is one item
// written with a conditional PutItem on its version (compare-and-set: a failed condition is a
// kConflict, re-read and re-decided, never retried blindly); audit entries are items beside
// it with a TTL attribute.
//
// Table: partition key `pk` (S), sort key `sk` (S). State: pk "env#<name>", sk "state",
// `version` (N), `state` (S, JSON), `environment` (S). Audit: same pk, sk
// "audit#<epoch ms, 13 digits>#<version>#<n>", `expires_at` (N, epoch seconds: the TTL).
//
// Audit items are written right after the state commits (BatchWriteItem), not in the same
// transaction: DynamoDB has TransactWriteItems, but the emulator the tests use (dynalite
// 4.0.0) does not, and we ship only what we test. A process that dies between the two loses
// that change's audit lines, never the state.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string>

#include "adapters/aws/aws_client.h"
#include "core/log.h"
#include "core/store.h"

namespace intermission::adapters {

// The CreateTable input the store expects (also printed by `intermission dynamodb-table`
// and matched against the CloudFormation template in a test).
boost::json::value dynamodb_table_definition(const std::string& table_name);

// An item's size as DynamoDB counts it against its 400 KB limit: each attribute's name and
// value in UTF-8 bytes, a number at most 21 bytes (aws-behaviour.md §16). Only S and N values.
std::size_t dynamodb_item_size(const boost::json::object& item);
// The largest item the store writes: 400 KB less a margin for what our count may miss.
inline constexpr std::size_t kDynamoDbItemBudget = 400 * 1024 - 4 * 1024;
// The item that holds an environment's state (`encoded`, state_codec JSON) at `version`.
boost::json::object dynamodb_state_item(const std::string& environment, std::int64_t version,
                                        const std::string& encoded);

class DynamoDbStore final : public core::Store {
 public:
  // `client` (a DynamoDB client) and `clock` must outlive the store.
  DynamoDbStore(aws::AwsClient& client, std::string table, core::Duration audit_ttl,
                const core::Clock& clock, core::Logger& log);

  core::Result<core::EnvState> load(const std::string& environment) override;
  core::Result<std::int64_t> compare_and_set(const core::EnvState& state,
                                             std::int64_t expected_version,
                                             const std::vector<core::AuditEntry>& audit) override;
  core::Result<std::vector<core::AuditEntry>> audit(const std::string& environment,
                                                    std::size_t limit) override;
  core::Result<std::vector<std::string>> environments() override;
  core::Result<core::Lease> acquire_lease(const std::string& environment,
                                          const std::string& holder, core::Time now,
                                          core::Time until) override;
  core::Status release_lease(const std::string& environment, const std::string& holder) override;
  core::Result<std::optional<core::Lease>> lease(const std::string& environment) override;

 private:
  core::Status write_audit(const core::EnvState& state, std::int64_t version,
                           const std::vector<core::AuditEntry>& audit);

  aws::AwsClient& client_;
  std::string table_;
  core::Duration audit_ttl_;
  const core::Clock& clock_;
  core::Logger& log_;
};

}  // namespace intermission::adapters
