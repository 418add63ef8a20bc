#include "core/event_parser.h"

#include <boost/json.hpp>
#include <string>

namespace intermission::core {
namespace {

namespace json = boost::json;

// Nesting deeper than this is not an event; it only costs stack.
constexpr std::size_t kMaxDepth = 32;

std::optional<std::string> get_string(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return std::string(v->get_string());
}

const json::object* get_object(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr ? v->if_object() : nullptr;
}

// CodeDeploy sends some objects as JSON text inside a string ("errorInformation":"{...}");
// the documented sample sends them as objects. Accept both; anything else is absent.
std::optional<json::object> get_embedded_object(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_object()) return v->get_object();
  if (!v->is_string()) return std::nullopt;
  json::parse_options opts;
  opts.max_depth = kMaxDepth;
  boost::system::error_code ec;
  json::value inner = json::parse(v->get_string(), ec, {}, opts);
  if (ec || !inner.is_object()) return std::nullopt;
  return std::move(inner.get_object());
}

std::optional<Time> get_time(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_string()) return parse_any_time(v->get_string());
  if (v->is_number()) {
    // Epoch seconds, up to the last time a store can write (the year 9999).
    const double ms = v->to_number<double>() * 1000.0;
    if (!(ms >= 0) || ms >= static_cast<double>(to_epoch_ms(kLatestTime) + 1)) return std::nullopt;
    return from_epoch_ms(static_cast<std::int64_t>(ms));
  }
  return std::nullopt;
}

// A CodeDeploy trigger message (deployment- or instance-level) as an object.
ParsedItem parse_codedeploy_message(const json::object& m, EventSource source) {
  if (m.contains("instanceId") || m.contains("instanceStatus")) {
    return Ignored{"instance-level CodeDeploy notification (only deployment-level ones matter)"};
  }
  auto id = get_string(m, "deploymentId");
  auto status_text = get_string(m, "status");
  if (!id || id->empty() || !status_text) {
    return Ignored{"JSON without deploymentId and status: not a CodeDeploy deployment message"};
  }
  auto status = parse_deployment_status(*status_text);
  if (!status) return Ignored{"CodeDeploy status '" + *status_text + "' is not a known status"};
  auto app = get_string(m, "applicationName");
  auto group = get_string(m, "deploymentGroupName");
  if (!app || !group) {
    return Ignored{"CodeDeploy message for " + *id + " names no application or deployment group"};
  }
  DeploymentEvent e;
  e.source = source;
  e.region = get_string(m, "region").value_or("");
  e.application = *app;
  e.deployment_group = *group;
  e.deployment_id = *id;
  e.status = *status;
  // The deployment's own time of this status: when it ended for an end, else when it began.
  // An end without completeTime is not dated by its start (that would place the end before
  // deployments that began meanwhile, and a failure would seem superseded by them): the
  // SNS Timestamp dates it, as it dates a message with no time of its own.
  e.time = is_terminal(*status) ? get_time(m, "completeTime") : get_time(m, "createTime");
  if (auto rb = get_embedded_object(m, "rollbackInformation")) {
    e.rollback_of = get_string(*rb, "RollbackTriggeringDeploymentId");
  }
  if (auto err = get_embedded_object(m, "errorInformation")) {
    e.error_code = get_string(*err, "ErrorCode");
    e.error_message = get_string(*err, "ErrorMessage");
  }
  return e;
}

ParsedItem parse_eventbridge(const json::object& o) {
  const auto source = get_string(o, "source").value_or("");
  const auto type = get_string(o, "detail-type").value_or("");
  if (source != "aws.codedeploy") return Ignored{"EventBridge event from '" + source + "'"};
  if (type == "CodeDeploy Instance State-change Notification") {
    return Ignored{"instance-level CodeDeploy notification (only deployment-level ones matter)"};
  }
  if (type != "CodeDeploy Deployment State-change Notification") {
    return Ignored{"EventBridge detail-type '" + type + "' is not a deployment state change"};
  }
  const json::object* d = get_object(o, "detail");
  if (d == nullptr) return Ignored{"EventBridge event without a detail object"};
  auto id = get_string(*d, "deploymentId");
  auto state = get_string(*d, "state");
  auto app = get_string(*d, "application");
  auto group = get_string(*d, "deploymentGroup");
  if (!id || !state || !app || !group) {
    return Ignored{
        "EventBridge CodeDeploy event without deploymentId, state, application or group"};
  }
  // As on the SNS path: an empty id names no deployment (it would raise the page for "").
  if (id->empty()) return Ignored{"EventBridge CodeDeploy event with an empty deploymentId"};
  auto status = parse_deployment_status(*state);
  if (!status) return Ignored{"EventBridge CodeDeploy state '" + *state + "' is not known"};
  DeploymentEvent e;
  e.source = EventSource::kEventBridge;
  e.region = get_string(*d, "region").value_or(get_string(o, "region").value_or(""));
  e.application = *app;
  e.deployment_group = *group;
  e.deployment_id = *id;
  e.status = *status;
  e.time = get_time(o, "time");
  e.message_id = get_string(o, "id").value_or("");
  return e;
}

ParsedItem parse_operator(const json::object& o) {
  auto env = get_string(o, "environment");
  auto action = get_string(o, "action");
  if (!env || env->empty() || !action) {
    return Ignored{"operator command needs 'environment' and 'action'"};
  }
  OperatorCommand c;
  c.environment = *env;
  if (*action == "on") {
    c.action = OperatorAction::kOn;
  } else if (*action == "off") {
    c.action = OperatorAction::kOff;
  } else {
    return Ignored{"operator action '" + *action + "' is not 'on' or 'off'"};
  }
  c.reason = get_string(o, "reason").value_or("");
  c.who = get_string(o, "who").value_or("");
  // A value that cannot be carried out makes the command refused (check_operator_command),
  // not ignored: the operator learns it was not done.
  if (const auto* f = o.if_contains("for"); f != nullptr) {
    auto d = f->is_string() ? read_duration(f->get_string())
                            : Result<Duration>(Error::invalid_input("'for' is not a string"));
    if (d)
      c.duration = *d;
    else
      c.problem = "operator 'for': " + d.error().message;
  }
  if (const auto* u = o.if_contains("until"); u != nullptr) {
    // An operator's time: with its zone when it is ISO 8601 (read_operator_time), or epoch
    // seconds, or CodeDeploy's Java date in UTC.
    const std::string_view text = u->is_string() ? std::string_view(u->get_string()) : "";
    if (text.size() > 4 && text[4] == '-') {
      auto t = read_operator_time(text);
      if (t)
        c.until = *t;
      else
        c.problem = "operator 'until': " + t.error().message;
    } else {
      c.until = get_time(o, "until");
      if (!c.until) {
        c.problem =
            "operator 'until' is not a time within the years 0000-9999 (epoch seconds, "
            "or a time with its zone like 2026-01-31T18:00:00Z)";
      }
    }
  }
  return c;
}

// An SNS message's fields as the envelope (Lambda's Records[].Sns or an HTTP delivery body).
SnsMessage sns_fields(const json::object& sns) {
  SnsMessage m;
  m.type = get_string(sns, "Type").value_or("Notification");
  m.message_id = get_string(sns, "MessageId").value_or("");
  m.topic_arn = get_string(sns, "TopicArn").value_or("");
  m.message = get_string(sns, "Message").value_or("");
  m.timestamp = get_string(sns, "Timestamp").value_or("");
  if (!sns.contains("Message")) m.type = "Notification without a Message";
  return m;
}

void parse_object(const json::object& o, std::vector<ParsedItem>& out) {
  if (const auto* records = o.if_contains("Records"); records != nullptr) {
    if (!records->is_array()) {
      out.emplace_back(Ignored{"'Records' is not an array"});
      return;
    }
    for (const auto& r : records->get_array()) {
      const json::object* record = r.if_object();
      const json::object* sns = record != nullptr ? get_object(*record, "Sns") : nullptr;
      if (sns == nullptr) {
        const auto src = record != nullptr ? get_string(*record, "EventSource") : std::nullopt;
        out.emplace_back(Ignored{"record from '" + src.value_or("?") + "' is not from SNS"});
        continue;
      }
      for (auto& item : events_from_sns(sns_fields(*sns), EventSource::kLambdaSns)) {
        out.push_back(std::move(item));
      }
    }
    return;
  }
  if (o.contains("Type") && o.contains("MessageId") && o.contains("TopicArn")) {
    for (auto& item : events_from_sns(sns_fields(o), EventSource::kSnsHttp)) {
      out.push_back(std::move(item));
    }
    return;
  }
  if (o.contains("detail-type") && o.contains("source")) {
    if (get_string(o, "source") == "aws.events" &&
        get_string(o, "detail-type") == "Scheduled Event") {
      out.emplace_back(TickRequest{});
    } else {
      out.emplace_back(parse_eventbridge(o));
    }
    return;
  }
  if (get_string(o, "intermission") == "tick") {
    out.emplace_back(TickRequest{});
    return;
  }
  if (const json::object* op = get_object(o, "operator"); op != nullptr) {
    out.emplace_back(parse_operator(*op));
    return;
  }
  if (o.contains("deploymentId")) {
    out.emplace_back(parse_codedeploy_message(o, EventSource::kCodeDeploy));
    return;
  }
  out.emplace_back(Ignored{"unrecognised event shape"});
}

void parse_value(const json::value& v, std::vector<ParsedItem>& out, std::size_t depth) {
  if (depth > 4) {
    out.emplace_back(Ignored{"events nested too deeply"});
    return;
  }
  if (const auto* a = v.if_array(); a != nullptr) {
    for (const auto& element : *a) parse_value(element, out, depth + 1);
    return;
  }
  if (const auto* o = v.if_object(); o != nullptr) {
    parse_object(*o, out);
    return;
  }
  out.emplace_back(Ignored{"JSON value is not an object or an array"});
}

}  // namespace

std::vector<ParsedItem> events_from_sns(const SnsMessage& m, EventSource source) {
  std::vector<ParsedItem> out;
  if (m.type == "Notification without a Message") {
    out.emplace_back(Ignored{"SNS notification without a Message"});
    return out;
  }
  if (m.type != "Notification") {
    out.emplace_back(Ignored{"SNS " + m.type +
                             " is not a notification (the serve daemon confirms "
                             "subscriptions for allowed topics)"});
    return out;
  }
  json::parse_options opts;
  opts.max_depth = kMaxDepth;
  boost::system::error_code ec;
  const json::value inner = json::parse(m.message, ec, {}, opts);
  if (ec || !inner.is_object()) {
    out.emplace_back(
        Ignored{"SNS message is not JSON, or not an object (a trigger test message?)"});
    return out;
  }
  const json::object& o = inner.get_object();
  ParsedItem item;
  if (o.contains("detail-type") || o.contains("source")) {
    // An EventBridge event forwarded through SNS: CodeDeploy's, nothing else (no ticks).
    item = parse_eventbridge(o);
  } else if (o.contains("deploymentId")) {
    item = parse_codedeploy_message(o, source);
  } else {
    item = Ignored{"SNS messages may carry CodeDeploy events only"};
  }
  if (auto* e = std::get_if<DeploymentEvent>(&item)) {
    // The SNS envelope knows the delivery's identity and time better than the inner message.
    e->source = source;
    if (!m.message_id.empty()) e->message_id = m.message_id;
    if (!e->time) e->time = parse_any_time(m.timestamp);
  }
  out.push_back(std::move(item));
  return out;
}

Result<std::vector<ParsedItem>> parse_events(std::string_view body) {
  json::parse_options opts;
  opts.max_depth = kMaxDepth;
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec, {}, opts);
  if (ec) return Error::invalid_input("malformed JSON: " + ec.message());
  std::vector<ParsedItem> out;
  parse_value(v, out, 0);
  return out;
}

}  // namespace intermission::core
