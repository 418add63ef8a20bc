#include "adapters/store/dynamodb_store.h"

#include <gtest/gtest.h>

#include <limits>

#include "core/config.h"
#include "core/state_codec.h"

namespace intermission::adapters {
namespace {
namespace json = boost::json;

TEST(DynamoDbItemSize, CountsNamesAndValuesAndNumbersAtTheirLargest) {
  // aws-behaviour.md §16: attribute names and values in UTF-8 bytes; a number at most 21.
  const json::object item{{"pk", json::object{{"S", "env#prod"}}},
                          {"v", json::object{{"N", "7"}}},
                          {"text", json::object{{"S", "caf\xc3\xa9"}}}};
  EXPECT_EQ(dynamodb_item_size(item), (2 + 8) + (1 + 21) + (4 + 5));
}

TEST(DynamoDbItemSize, EveryStateTheCoreLetsThroughFitsTheItemBudget) {
  // The core refuses a state over kMaxEncodedStateBytes for every store; for DynamoDB that
  // must mean the item fits, whatever the environment's name and version.
  const std::string name(core::kMaxEnvironmentName, 'n');
  const std::string largest(core::kMaxEncodedStateBytes, 'x');
  const auto item = dynamodb_state_item(name, std::numeric_limits<std::int64_t>::max(), largest);
  EXPECT_LE(dynamodb_item_size(item), kDynamoDbItemBudget);
  EXPECT_GT(dynamodb_item_size(item), core::kMaxEncodedStateBytes) << "the item holds the state";
  // The store's own check is the second line: it refuses what would not fit.
  const std::string over(kDynamoDbItemBudget, 'x');
  EXPECT_GT(dynamodb_item_size(dynamodb_state_item("prod", 2, over)), kDynamoDbItemBudget);
}

}  // namespace
}  // namespace intermission::adapters
