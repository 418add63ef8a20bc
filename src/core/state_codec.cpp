#include "core/state_codec.h"

#include <boost/json.hpp>

#include "core/text.h"

namespace intermission::core {
namespace {

namespace json = boost::json;

json::value opt_time(const std::optional<Time>& t) {
  return t ? json::value(format_iso8601(*t)) : json::value(nullptr);
}
// Every string is written as UTF-8, as JSON must be: a byte that is not (text an older version
// let in) becomes U+FFFD.
json::string text(std::string_view s) { return json::string(to_valid_utf8(s)); }
json::value opt_string(const std::optional<std::string>& s) {
  return s ? json::value(text(*s)) : json::value(nullptr);
}

// Reading is strict about types: a state we cannot fully read is an error, not a guess.
struct Reader {
  const json::object& o;
  std::string error;

  std::string str(std::string_view key) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || !v->is_string()) {
      fail(key);
      return {};
    }
    return to_valid_utf8(v->get_string());
  }
  std::optional<std::string> opt_str(std::string_view key) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (!v->is_string()) {
      fail(key);
      return std::nullopt;
    }
    return to_valid_utf8(v->get_string());
  }
  std::optional<Time> opt_time(std::string_view key) {
    auto s = opt_str(key);
    if (!s) return std::nullopt;
    auto t = parse_iso8601(*s);
    if (!t && beyond_year_9999(*s)) t = kLatestTime;
    if (!t) fail(key);
    return t;
  }
  // Versions before the bound wrote a far-future hold with a five-digit year, then could not
  // read it: read it as the last time there is, so the environment loads again.
  static bool beyond_year_9999(std::string_view s) {
    const std::size_t dash = s.find('-');
    if (dash == std::string_view::npos || dash < 5 || dash > 12) return false;
    for (std::size_t i = 0; i < dash; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
    }
    std::string normal = "9999" + std::string(s.substr(dash));
    return parse_iso8601(normal).has_value();
  }
  Time time(std::string_view key) {
    auto t = opt_time(key);
    if (!t) fail(key);
    return t.value_or(Time{});
  }
  bool boolean(std::string_view key) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || !v->is_bool()) {
      fail(key);
      return false;
    }
    return v->get_bool();
  }
  void fail(std::string_view key) {
    if (error.empty()) error = "field '" + std::string(key) + "' is missing or of the wrong type";
  }
};

}  // namespace

Status check_state_size(const EnvState& state, std::string_view encoded) {
  if (encoded.size() <= kMaxEncodedStateBytes) return {};
  std::size_t hold_bytes = state.hold ? state.hold->reason.size() + state.hold->who.size() : 0;
  return Error::invalid_input(
      "the ledger of '" + state.environment + "' would be " + std::to_string(encoded.size()) +
      " bytes, more than the " + std::to_string(kMaxEncodedStateBytes) +
      " a store writes (a DynamoDB item is at most 400 KB): " +
      std::to_string(state.deployments.size()) + " deployment records, " +
      std::to_string(hold_bytes) + " bytes of operator hold text, " +
      std::to_string(state.recent_message_ids.size()) + " recent message ids, " +
      std::to_string(state.forgotten.size()) + " forgotten deployment ids, " +
      std::to_string(state.windows.size()) +
      " scheduled windows. Shorten the hold's reason, or lift held failures (intermission off)");
}

json::value to_json(const DeploymentRecord& r) {
  return json::object{{"id", text(r.id)},
                      {"application", text(r.application)},
                      {"deployment_group", text(r.deployment_group)},
                      {"status", std::string(to_string(r.status))},
                      {"creator", opt_string(r.creator)},
                      {"rollback_of", opt_string(r.rollback_of)},
                      {"codedeploy", r.codedeploy},
                      {"first_seen", format_iso8601(r.first_seen)},
                      {"last_seen", format_iso8601(r.last_seen)},
                      {"ended_at", opt_time(r.ended_at)},
                      {"started", opt_time(r.started)},
                      {"finished", opt_time(r.finished)},
                      {"expired", r.expired},
                      {"dismissed", r.dismissed}};
}

json::value to_json(const Window& w) {
  return json::object{{"id", text(w.id)},
                      {"start", format_iso8601(w.start)},
                      {"end", format_iso8601(w.end)},
                      {"reason", text(w.reason)},
                      {"who", text(w.who)},
                      {"created", format_iso8601(w.created)},
                      {"started", w.started}};
}

json::value to_json(const AuditEntry& e) {
  return json::object{{"time", format_iso8601(e.time)},
                      {"environment", text(e.environment)},
                      {"kind", text(e.kind)},
                      {"message", text(e.message)},
                      {"who", text(e.who)},
                      {"deployment_id", text(e.deployment_id)}};
}

std::string encode_state(const EnvState& s) {
  json::object o;
  o["format"] = 1;
  json::array deployments;
  for (const auto& [id, r] : s.deployments) deployments.push_back(to_json(r));
  o["deployments"] = std::move(deployments);
  if (s.hold) {
    o["hold"] = json::object{{"on", s.hold->on},
                             {"reason", text(s.hold->reason)},
                             {"who", text(s.hold->who)},
                             {"since", format_iso8601(s.hold->since)},
                             {"until", opt_time(s.hold->until)}};
  } else {
    o["hold"] = nullptr;
  }
  o["applied"] = json::object{{"on", s.applied.on},
                              {"since", opt_time(s.applied.since)},
                              {"reason", text(s.applied.reason)}};
  json::array ids;
  for (const auto& id : s.recent_message_ids) ids.push_back(text(id));
  o["recent_message_ids"] = std::move(ids);
  json::array windows;
  for (const auto& [id, w] : s.windows) windows.push_back(to_json(w));
  o["windows"] = std::move(windows);
  o["last_window_id"] = s.last_window_id;
  json::object forgotten;
  for (const auto& [id, when] : s.forgotten) forgotten[text(id)] = format_iso8601(when);
  o["forgotten"] = std::move(forgotten);
  return json::serialize(o);
}

Result<EnvState> decode_state(std::string_view text, std::string environment,
                              std::int64_t version) {
  // Text is checked where it comes in, but an older version wrote text that is not UTF-8 as it
  // was (Boost.JSON copies a string's bytes), and a state it stored must load: otherwise its
  // environment is stuck. Its bad bytes are read as U+FFFD, like the writer's now.
  json::parse_options options;
  options.allow_invalid_utf8 = true;
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec, {}, options);
  if (ec) return Error::invalid_input("stored state is not JSON: " + ec.message());
  if (!v.is_object()) return Error::invalid_input("stored state is not a JSON object");
  const json::object& o = v.get_object();
  const auto* format = o.if_contains("format");
  if (format == nullptr || !format->is_int64() || format->get_int64() != 1) {
    return Error::invalid_input("stored state has an unknown format (written by a newer version?)");
  }
  EnvState s;
  s.environment = std::move(environment);
  s.version = version;
  std::string error;
  if (const auto* d = o.if_contains("deployments"); d != nullptr && d->is_array()) {
    for (const auto& item : d->get_array()) {
      if (!item.is_object()) return Error::invalid_input("stored deployment is not an object");
      Reader r{item.get_object(), {}};
      DeploymentRecord rec;
      rec.id = r.str("id");
      rec.application = r.str("application");
      rec.deployment_group = r.str("deployment_group");
      const auto status = parse_deployment_status(r.str("status"));
      if (!status) r.fail("status");
      rec.status = status.value_or(DeploymentStatus::kCreated);
      rec.creator = r.opt_str("creator");
      rec.rollback_of = r.opt_str("rollback_of");
      // Absent in states written before it existed: every record was CodeDeploy's then but
      // those of the webhook, which a lookup cannot find (the tick logs that, as it did).
      if (const auto* c = item.get_object().if_contains("codedeploy"); c != nullptr) {
        if (c->is_bool()) rec.codedeploy = c->get_bool();
        else r.fail("codedeploy");
      }
      rec.first_seen = r.time("first_seen");
      rec.last_seen = r.time("last_seen");
      rec.ended_at = r.opt_time("ended_at");
      rec.started = r.opt_time("started");  // absent in states written before they existed
      rec.finished = r.opt_time("finished");
      rec.expired = r.boolean("expired");
      rec.dismissed = r.boolean("dismissed");
      if (!r.error.empty()) return Error::invalid_input("stored deployment: " + r.error);
      s.deployments.emplace(rec.id, std::move(rec));
    }
  } else {
    return Error::invalid_input("stored state has no deployments list");
  }
  if (const auto* h = o.if_contains("hold"); h != nullptr && h->is_object()) {
    Reader r{h->get_object(), {}};
    Hold hold{r.boolean("on"), r.str("reason"), r.str("who"), r.time("since"), r.opt_time("until")};
    if (!r.error.empty()) return Error::invalid_input("stored hold: " + r.error);
    s.hold = std::move(hold);
  }
  if (const auto* a = o.if_contains("applied"); a != nullptr && a->is_object()) {
    Reader r{a->get_object(), {}};
    s.applied = Applied{r.boolean("on"), r.opt_time("since"), r.str("reason")};
    if (!r.error.empty()) return Error::invalid_input("stored applied state: " + r.error);
  }
  // Absent in states written before windows existed: none.
  if (const auto* ws = o.if_contains("windows"); ws != nullptr && !ws->is_null()) {
    if (!ws->is_array()) return Error::invalid_input("stored windows are not a list");
    for (const auto& item : ws->get_array()) {
      if (!item.is_object()) return Error::invalid_input("stored window is not an object");
      Reader r{item.get_object(), {}};
      Window w{r.str("id"), r.time("start"), r.time("end"), r.str("reason"),
               r.str("who"), r.time("created"), r.boolean("started")};
      if (!r.error.empty()) return Error::invalid_input("stored window: " + r.error);
      s.windows.emplace(w.id, std::move(w));
    }
  }
  if (const auto* n = o.if_contains("last_window_id"); n != nullptr && !n->is_null()) {
    if (!n->is_int64()) return Error::invalid_input("stored last_window_id is not a number");
    s.last_window_id = n->get_int64();
  }
  if (const auto* ids = o.if_contains("recent_message_ids"); ids != nullptr && ids->is_array()) {
    for (const auto& id : ids->get_array()) {
      if (id.is_string()) s.recent_message_ids.push_back(to_valid_utf8(id.get_string()));
    }
  }
  // Written since the replay window was kept (absent before): not there, none forgotten.
  if (const auto* f = o.if_contains("forgotten"); f != nullptr && !f->is_null()) {
    if (!f->is_object()) return Error::invalid_input("stored forgotten is not an object");
    for (const auto& [id, when] : f->get_object()) {
      const auto t = when.is_string() ? parse_iso8601(when.get_string()) : std::nullopt;
      if (!t) return Error::invalid_input("stored forgotten '" + std::string(id) + "' has no time");
      s.forgotten.emplace(to_valid_utf8(id), *t);
    }
  }
  return s;
}

}  // namespace intermission::core
