#include "adapters/store/dynamodb_store.h"

#include <boost/json.hpp>
#include <algorithm>
#include <cstdio>

#include "core/state_codec.h"

namespace intermission::adapters {
namespace {

namespace json = boost::json;

json::object S(const std::string& v) { return {{"S", v}}; }
json::object N(std::int64_t v) { return {{"N", std::to_string(v)}}; }

std::string key_of(const std::string& environment) { return "env#" + environment; }

json::object lease_key(const std::string& environment) {
  return {{"pk", S(key_of(environment))}, {"sk", S("lease")}};
}

std::string attr_s(const json::object& item, const char* name) {
  const auto* a = item.if_contains(name);
  if (a == nullptr || !a->is_object()) return {};
  const auto* s = a->get_object().if_contains("S");
  return s != nullptr && s->is_string() ? std::string(s->get_string()) : std::string();
}

std::optional<std::int64_t> attr_n(const json::object& item, const char* name) {
  const auto* a = item.if_contains(name);
  if (a == nullptr || !a->is_object()) return std::nullopt;
  const auto* n = a->get_object().if_contains("N");
  if (n == nullptr || !n->is_string()) return std::nullopt;
  try {
    return std::stoll(std::string(n->get_string()));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::size_t dynamodb_item_size(const json::object& item) {
  std::size_t size = 0;
  for (const auto& [name, value] : item) {
    size += name.size();
    if (!value.is_object()) continue;
    if (const auto* s = value.get_object().if_contains("S"); s != nullptr && s->is_string()) {
      size += s->get_string().size();
    } else if (value.get_object().contains("N")) {
      size += 21;
    }
  }
  return size;
}

json::object dynamodb_state_item(const std::string& environment, std::int64_t version,
                                 const std::string& encoded) {
  return json::object{{"pk", S(key_of(environment))},
                      {"sk", S("state")},
                      {"environment", S(environment)},
                      {"version", N(version)},
                      {"state", S(encoded)}};
}

json::value dynamodb_table_definition(const std::string& table_name) {
  return json::object{
      {"TableName", table_name},
      {"AttributeDefinitions", json::array{json::object{{"AttributeName", "pk"}, {"AttributeType", "S"}},
                                           json::object{{"AttributeName", "sk"}, {"AttributeType", "S"}}}},
      {"KeySchema", json::array{json::object{{"AttributeName", "pk"}, {"KeyType", "HASH"}},
                                json::object{{"AttributeName", "sk"}, {"KeyType", "RANGE"}}}},
      {"BillingMode", "PAY_PER_REQUEST"}};
}

DynamoDbStore::DynamoDbStore(aws::AwsClient& client, std::string table, core::Duration audit_ttl,
                             const core::Clock& clock, core::Logger& log)
    : client_(client), table_(std::move(table)), audit_ttl_(audit_ttl), clock_(clock), log_(log) {}

core::Result<core::EnvState> DynamoDbStore::load(const std::string& environment) {
  auto r = client_.json("GetItem",
                        json::object{{"TableName", table_},
                                     {"Key", json::object{{"pk", S(key_of(environment))},
                                                          {"sk", S("state")}}},
                                     {"ConsistentRead", true}});
  if (!r) return r.error().with_context("dynamodb " + table_);
  const auto* item = r->is_object() ? r->get_object().if_contains("Item") : nullptr;
  if (item == nullptr || !item->is_object()) {
    core::EnvState fresh;
    fresh.environment = environment;
    return fresh;
  }
  const auto version = attr_n(item->get_object(), "version");
  if (!version) return core::Error::invalid_input("dynamodb " + table_ + ": state without version");
  return core::decode_state(attr_s(item->get_object(), "state"), environment, *version);
}

core::Result<std::int64_t> DynamoDbStore::compare_and_set(
    const core::EnvState& state, std::int64_t expected_version,
    const std::vector<core::AuditEntry>& audit) {
  const std::int64_t next = expected_version + 1;
  const std::string encoded = core::encode_state(state);
  if (auto st = core::check_state_size(state, encoded); !st) return st.error();
  json::object item = dynamodb_state_item(state.environment, next, encoded);
  // A PutItem over the limit is a ValidationException that says little and is not retried:
  // refuse it here, saying which environment and how large.
  if (const std::size_t size = dynamodb_item_size(item); size > kDynamoDbItemBudget) {
    return core::Error::invalid_input("the ledger of '" + state.environment + "' would be a " +
                                      std::to_string(size) + "-byte DynamoDB item, over the " +
                                      std::to_string(kDynamoDbItemBudget) +
                                      " bytes this store writes (the limit is 400 KB)");
  }
  json::object put{{"TableName", table_}, {"Item", std::move(item)}};
  if (expected_version == 0) {
    put["ConditionExpression"] = "attribute_not_exists(pk)";
  } else {
    put["ConditionExpression"] = "#v = :expected";
    put["ExpressionAttributeNames"] = json::object{{"#v", "version"}};
    put["ExpressionAttributeValues"] = json::object{{":expected", N(expected_version)}};
  }
  auto r = client_.json("PutItem", put);
  if (!r) {
    if (r.error().code == core::ErrorCode::kConflict) {
      return core::Error::conflict(state.environment + " changed since version " +
                                   std::to_string(expected_version));
    }
    return r.error().with_context("dynamodb " + table_);
  }
  if (auto st = write_audit(state, next, audit); !st) {
    // The state is committed; only its audit lines are missing. Say so, do not fail the write.
    log_.error("state saved but its audit lines were not",
               {{"environment", state.environment}, {"error", st.error().message}});
  }
  return next;
}

core::Status DynamoDbStore::write_audit(const core::EnvState& state, std::int64_t version,
                                        const std::vector<core::AuditEntry>& audit) {
  const std::int64_t expires = core::to_epoch_ms(clock_.now() + audit_ttl_) / 1000;
  for (std::size_t start = 0; start < audit.size(); start += 25) {  // BatchWriteItem: 25 items
    json::array requests;
    for (std::size_t i = start; i < std::min(audit.size(), start + 25); ++i) {
      const auto& a = audit[i];
      char sk[96];
      std::snprintf(sk, sizeof sk, "audit#%013lld#%010lld#%03zu",
                    static_cast<long long>(core::to_epoch_ms(a.time)),
                    static_cast<long long>(version), i);
      requests.push_back(json::object{
          {"PutRequest",
           json::object{{"Item", json::object{{"pk", S(key_of(state.environment))},
                                              {"sk", S(sk)},
                                              {"time_ms", N(core::to_epoch_ms(a.time))},
                                              {"kind", S(a.kind)},
                                              {"message", S(a.message)},
                                              {"who", S(a.who)},
                                              {"deployment_id", S(a.deployment_id)},
                                              {"expires_at", N(expires)}}}}}});
    }
    json::object items{{table_, std::move(requests)}};
    for (int attempt = 0; attempt < 5 && !items.empty(); ++attempt) {
      auto r = client_.json("BatchWriteItem", json::object{{"RequestItems", items}});
      if (!r) return r.error().with_context("dynamodb " + table_ + " audit");
      const auto* left = r->get_object().if_contains("UnprocessedItems");
      items = left != nullptr && left->is_object() ? left->get_object() : json::object{};
    }
    if (!items.empty()) return core::Error::throttled("dynamodb audit: items left unprocessed");
  }
  return {};
}

core::Result<std::vector<core::AuditEntry>> DynamoDbStore::audit(const std::string& environment,
                                                                 std::size_t limit) {
  auto r = client_.json(
      "Query",
      json::object{{"TableName", table_},
                   {"KeyConditionExpression", "pk = :pk AND begins_with(sk, :a)"},
                   {"ExpressionAttributeValues",
                    json::object{{":pk", S(key_of(environment))}, {":a", S("audit#")}}},
                   {"ScanIndexForward", false},
                   {"Limit", static_cast<std::int64_t>(limit)}});
  if (!r) return r.error().with_context("dynamodb " + table_);
  std::vector<core::AuditEntry> out;
  if (const auto* items = r->get_object().if_contains("Items"); items != nullptr && items->is_array()) {
    for (const auto& v : items->get_array()) {
      if (!v.is_object()) continue;
      const auto& i = v.get_object();
      out.push_back({core::from_epoch_ms(attr_n(i, "time_ms").value_or(0)), environment,
                     attr_s(i, "kind"), attr_s(i, "message"), attr_s(i, "who"),
                     attr_s(i, "deployment_id")});
    }
  }
  std::reverse(out.begin(), out.end());  // oldest first, as the store contract says
  return out;
}

core::Result<std::vector<std::string>> DynamoDbStore::environments() {
  std::vector<std::string> out;
  json::value start;
  for (int page = 0; page < 1000; ++page) {
    json::object req{{"TableName", table_},
                     {"FilterExpression", "sk = :s"},
                     {"ExpressionAttributeValues", json::object{{":s", S("state")}}}};
    if (!start.is_null()) req["ExclusiveStartKey"] = start;
    auto r = client_.json("Scan", req);
    if (!r) return r.error().with_context("dynamodb " + table_);
    const auto& o = r->get_object();
    if (const auto* items = o.if_contains("Items"); items != nullptr && items->is_array()) {
      for (const auto& v : items->get_array()) {
        if (v.is_object()) out.push_back(attr_s(v.get_object(), "environment"));
      }
    }
    const auto* last = o.if_contains("LastEvaluatedKey");
    if (last == nullptr || !last->is_object()) break;
    start = *last;
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The lease is its own item (sk "lease") written with a condition that is the rule of
// core::lease_after: absent, run out, or already ours. When the condition fails, the item is
// read to say who holds it; if it went away meanwhile, the write is tried again.
core::Result<core::Lease> DynamoDbStore::acquire_lease(const std::string& environment,
                                                      const std::string& holder, core::Time now,
                                                      core::Time until) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    json::object item = lease_key(environment);
    item["holder"] = S(holder);
    item["until_ms"] = N(core::to_epoch_ms(until));
    // Stale lease items are removed by the table's TTL a day after they run out.
    item["expires_at"] = N(core::to_epoch_ms(until) / 1000 + 24 * 3600);
    auto put = client_.json(
        "PutItem",
        json::object{{"TableName", table_},
                     {"Item", std::move(item)},
                     {"ConditionExpression",
                      "attribute_not_exists(pk) OR #u <= :now OR #h = :me"},
                     {"ExpressionAttributeNames", json::object{{"#u", "until_ms"}, {"#h", "holder"}}},
                     {"ExpressionAttributeValues",
                      json::object{{":now", N(core::to_epoch_ms(now))}, {":me", S(holder)}}}});
    if (put) return core::Lease{holder, until};
    if (put.error().code != core::ErrorCode::kConflict) {
      return put.error().with_context("dynamodb " + table_ + " lease");
    }
    auto current = lease(environment);
    if (!current) return current.error();
    if (*current) return **current;
  }
  return core::Error::conflict("dynamodb " + table_ + ": the lease of " + environment +
                               " kept changing hands");
}

core::Result<std::optional<core::Lease>> DynamoDbStore::lease(const std::string& environment) {
  auto got = client_.json(
      "GetItem",
      json::object{{"TableName", table_},
                   {"Key", lease_key(environment)},
                   {"ConsistentRead", true}});
  if (!got) return got.error().with_context("dynamodb " + table_ + " lease");
  const auto* found = got->is_object() ? got->get_object().if_contains("Item") : nullptr;
  if (found == nullptr || !found->is_object()) return std::optional<core::Lease>();
  const auto until_ms = attr_n(found->get_object(), "until_ms");
  return std::optional<core::Lease>(core::Lease{attr_s(found->get_object(), "holder"),
                                                core::from_epoch_ms(until_ms.value_or(0))});
}

core::Status DynamoDbStore::release_lease(const std::string& environment,
                                          const std::string& holder) {
  auto r = client_.json(
      "DeleteItem",
      json::object{{"TableName", table_},
                   {"Key", lease_key(environment)},
                   {"ConditionExpression", "#h = :me"},
                   {"ExpressionAttributeNames", json::object{{"#h", "holder"}}},
                   {"ExpressionAttributeValues", json::object{{":me", S(holder)}}}},
      aws::CallKind::kCleanup);  // still made when the work ran out of time
  if (!r && r.error().code != core::ErrorCode::kConflict) {
    return r.error().with_context("dynamodb " + table_ + " lease");
  }
  return {};
}

}  // namespace intermission::adapters
