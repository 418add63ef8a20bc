#include "adapters/aws/credentials.h"

#include <array>
#include <boost/json.hpp>
#include <cstdio>
#include <fstream>
#include <pugixml.hpp>
#include <sstream>

#include "adapters/process.h"

namespace intermission::adapters::aws {
namespace {

// Refresh this long before temporary credentials expire.
constexpr auto kRefreshMargin = std::chrono::minutes(5);
// Cached credentials are used after a failed refresh only while they stay valid this long (a
// request signed now must still be valid when AWS reads it).
constexpr auto kValidityMargin = std::chrono::seconds(2);
// After a failed refresh, the cached credentials are used without a new attempt this long, so
// an STS or endpoint outage does not add a timeout to every call.
constexpr auto kRetryAfterFailure = std::chrono::seconds(10);
// role_arn -> source_profile -> ... chains longer than this are refused (a loop, surely).
constexpr int kMaxProfileChain = 8;
constexpr const char* kContainerHost = "http://169.254.170.2";
constexpr const char* kImdsDefault = "http://169.254.169.254";

std::string env_or(const Getenv& getenv, const std::string& name) {
  auto v = getenv(name);
  return v ? *v : std::string();
}

core::Result<std::string> read_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::Error::config(what + " " + path + " cannot be read");
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  if (text.empty()) return core::Error::config(what + " " + path + " is empty");
  return text;
}

// The host of an http(s) URL ("[fd00:ec2::23]" keeps its brackets), and its scheme.
std::pair<std::string, std::string> scheme_and_host(const std::string& url) {
  const std::size_t colon = url.find("://");
  if (colon == std::string::npos) return {"", ""};
  std::string scheme = url.substr(0, colon);
  std::string rest = url.substr(colon + 3);
  rest = rest.substr(0, rest.find('/'));
  if (!rest.empty() && rest.front() == '[') return {scheme, rest.substr(0, rest.find(']') + 1)};
  return {scheme, rest.substr(0, rest.find(':'))};
}

// AWS_CONTAINER_CREDENTIALS_FULL_URI over plain http only to the container agents' addresses
// or loopback, as the SDKs allow (sdkref "Container credential provider").
bool allowed_container_url(const std::string& url) {
  const auto [scheme, host] = scheme_and_host(url);
  if (scheme == "https") return !host.empty();
  if (scheme != "http") return false;
  return host == "169.254.170.2" || host == "169.254.170.23" || host == "[fd00:ec2::23]" ||
         host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

// A profile's optional AssumeRole parameters, in the order of the call's input shape
// (DurationSeconds before ExternalId), as botocore sends them.
FormParams assume_role_extra(const Profile& p) {
  FormParams extra;
  if (const IniValue* duration = p.find("duration_seconds")) {
    extra.emplace_back("DurationSeconds", duration->value);
  }
  if (const IniValue* external = p.find("external_id")) {
    extra.emplace_back("ExternalId", external->value);
  }
  return extra;
}

}  // namespace

const Service& sts_service() {
  static const Service kS{"sts", "STS", "2011-06-15", "", ""};
  return kS;
}

core::Result<Credentials> parse_credentials_json(const std::string& body, std::string source) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) {
    return core::Error::unavailable(source + " credentials: the reply is not a JSON object");
  }
  const auto& o = v.get_object();
  auto str = [&o](const char* key) -> std::string {
    const auto* x = o.if_contains(key);
    return x != nullptr && x->is_string() ? std::string(x->get_string()) : std::string();
  };
  Credentials c;
  c.access_key = str("AccessKeyId");
  c.secret_key = str("SecretAccessKey");
  c.session_token = str("Token");
  c.source = std::move(source);
  if (const std::string exp = str("Expiration"); !exp.empty()) {
    c.expiration = core::parse_iso8601(exp);
    if (!c.expiration) {
      return core::Error::unavailable(c.source + " credentials: Expiration '" + exp +
                                      "' is not a UTC time");
    }
  }
  if (c.access_key.empty() || c.secret_key.empty()) {
    return core::Error::unavailable(c.source +
                                    " credentials: AccessKeyId or SecretAccessKey "
                                    "missing from the reply");
  }
  return c;
}

core::Result<Credentials> parse_process_output(std::string_view output, const std::string& where,
                                               std::string source) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(output, ec);
  if (ec || !v.is_object()) {
    return core::Error::config(where + ": the output is not a JSON object");
  }
  const auto& o = v.get_object();
  const auto* version = o.if_contains("Version");
  if (version == nullptr || !version->is_int64() || version->get_int64() != 1) {
    return core::Error::config(where + ": the output must have \"Version\": 1");
  }
  auto str = [&o, &where](const char* key, bool required) -> core::Result<std::string> {
    const auto* x = o.if_contains(key);
    if (x == nullptr || x->is_null()) {
      if (required) return core::Error::config(where + ": \"" + key + "\" missing from the output");
      return std::string();
    }
    if (!x->is_string()) return core::Error::config(where + ": \"" + key + "\" is not a string");
    return std::string(x->get_string());
  };
  Credentials c;
  c.source = std::move(source);
  auto key = str("AccessKeyId", true);
  if (!key) return key.error();
  auto secret = str("SecretAccessKey", true);
  if (!secret) return secret.error();
  auto token = str("SessionToken", false);
  if (!token) return token.error();
  auto expiration = str("Expiration", false);
  if (!expiration) return expiration.error();
  if (key->empty() || secret->empty()) {
    return core::Error::config(where + ": AccessKeyId and SecretAccessKey must not be empty");
  }
  c.access_key = std::move(*key);
  c.secret_key = std::move(*secret);
  c.session_token = std::move(*token);
  if (!expiration->empty()) {
    c.expiration = core::parse_iso8601(*expiration);
    if (!c.expiration) {
      return core::Error::config(where + ": Expiration '" + *expiration +
                                 "' is not an ISO 8601 UTC time");
    }
  }
  return c;
}

core::Result<Credentials> parse_sts_credentials(std::string_view xml, const std::string& action,
                                                std::string source) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size())) {
    return core::Error::unavailable("sts " + action + ": the reply is not XML");
  }
  const auto creds = doc.child((action + "Response").c_str())
                         .child((action + "Result").c_str())
                         .child("Credentials");
  Credentials c;
  c.access_key = creds.child_value("AccessKeyId");
  c.secret_key = creds.child_value("SecretAccessKey");
  c.session_token = creds.child_value("SessionToken");
  c.source = std::move(source);
  const std::string exp = creds.child_value("Expiration");
  c.expiration = core::parse_iso8601(exp);
  if (c.access_key.empty() || c.secret_key.empty() || c.session_token.empty() || !c.expiration) {
    return core::Error::unavailable("sts " + action +
                                    ": the reply has no complete Credentials (AccessKeyId, "
                                    "SecretAccessKey, SessionToken, Expiration)");
  }
  return c;
}

CredentialsProvider::CredentialsProvider(Getenv getenv, const core::Clock& clock, core::Logger* log,
                                         std::string region)
    : getenv_(std::move(getenv)), clock_(clock), log_(log), region_(std::move(region)) {}

core::Result<Credentials> CredentialsProvider::get() {
  const core::Time now = clock_.now();
  const bool valid =
      cached_ && (!cached_->expiration || now + kValidityMargin < *cached_->expiration);
  if (cached_ && (!cached_->expiration || now + kRefreshMargin < *cached_->expiration)) {
    return *cached_;
  }
  if (valid && retry_after_ && now < *retry_after_) return *cached_;
  auto fresh = fetch();
  if (fresh) {
    cached_ = *fresh;
    retry_after_.reset();
    return fresh;
  }
  if (valid) {
    // The SDKs do the same: a refresh ahead of expiry that fails keeps what still works.
    retry_after_ = now + kRetryAfterFailure;
    if (log_ != nullptr) {
      log_->warn("AWS credentials refresh failed; using the cached ones until they expire",
                 {{"source", cached_->source},
                  {"expires", core::format_iso8601(*cached_->expiration)},
                  {"error", fresh.error().message}});
    }
    return *cached_;
  }
  if (cached_) {
    return fresh.error().with_context("the cached AWS credentials (" + cached_->source +
                                      ") expired at " + core::format_iso8601(*cached_->expiration) +
                                      " and could not be refreshed");
  }
  return fresh.error();
}

core::Result<Credentials> CredentialsProvider::fetch() {
  // 1. The environment.
  auto environment = from_environment();
  if (!environment) return environment.error();
  if (*environment) return **environment;
  // 2. Web identity from the environment (EKS IRSA): both variables, as the SDKs require.
  const std::string token_file = env_or(getenv_, "AWS_WEB_IDENTITY_TOKEN_FILE");
  const std::string role_arn = env_or(getenv_, "AWS_ROLE_ARN");
  if (!token_file.empty() && !role_arn.empty()) {
    return assume_role_with_web_identity(role_arn, token_file,
                                         session_name(env_or(getenv_, "AWS_ROLE_SESSION_NAME")),
                                         "AWS_WEB_IDENTITY_TOKEN_FILE");
  }
  // 3. The shared config and credentials files.
  auto profile = from_profile();
  if (!profile) return profile.error();
  if (*profile) return **profile;
  // 4. Container credentials (ECS task role, EKS Pod Identity).
  if (!env_or(getenv_, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").empty() ||
      !env_or(getenv_, "AWS_CONTAINER_CREDENTIALS_FULL_URI").empty()) {
    return from_container();
  }
  // 5. EC2 instance metadata.
  if (env_or(getenv_, "AWS_EC2_METADATA_DISABLED") == "true") {
    return core::Error::config(
        "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile in "
        "~/.aws/credentials or ~/.aws/config, web identity (AWS_WEB_IDENTITY_TOKEN_FILE + "
        "AWS_ROLE_ARN), or run with a container or instance role");
  }
  auto imds = from_instance_metadata();
  if (!imds) {
    return core::Error::config(
        "no AWS credentials: none in the environment, no web identity, "
        "no profile with credentials, no container credentials, and "
        "instance metadata failed (" +
        imds.error().message + ")");
  }
  return imds;
}

std::string CredentialsProvider::session_name(const std::string& configured) const {
  if (!configured.empty()) return configured;
  return "intermission-" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                              clock_.now().time_since_epoch())
                                              .count());
}

core::Result<std::optional<Credentials>> CredentialsProvider::from_profile() {
  auto files = load_shared_files(getenv_);
  if (!files) return files.error();
  const auto profile = find_profile(files->credentials, files->config, files->profile);
  if (!profile) {
    if (files->explicit_profile) {
      return core::Error::config("AWS profile '" + files->profile + "' (AWS_PROFILE) is in " +
                                 "neither " + files->credentials.path + " nor " +
                                 files->config.path);
    }
    return std::optional<Credentials>();
  }
  // IAM Identity Center (SSO) needs the CLI's login cache and the SSO portal API: not here.
  for (const char* key : {"sso_session", "sso_start_url", "sso_account_id"}) {
    if (const IniValue* sso = profile->find(key); sso != nullptr) {
      return core::Error::config(sso->where + ": profile " + files->profile +
                                 " uses IAM Identity Center (SSO), which is not supported: give "
                                 "it a credential_process, a role_arn or keys instead");
    }
  }
  // A profile with nothing about credentials (only a region, say) leaves it to the next source.
  if (profile->find("role_arn") == nullptr && profile->find("aws_access_key_id") == nullptr &&
      profile->find("aws_secret_access_key") == nullptr &&
      profile->find("credential_process") == nullptr) {
    return std::optional<Credentials>();
  }
  auto c = resolve_profile(*files, files->profile, 0);
  if (!c) return c.error();
  return std::optional<Credentials>(std::move(*c));
}

core::Result<Credentials> CredentialsProvider::resolve_profile(const SharedFiles& files,
                                                               const std::string& name, int depth) {
  const auto p = find_profile(files.credentials, files.config, name);
  if (!p) {
    return core::Error::config("AWS profile '" + name + "' is in neither " +
                               files.credentials.path + " nor " + files.config.path);
  }
  const std::string source = "profile " + name;
  auto static_keys = [&p,
                      &source](bool credentials_file) -> core::Result<std::optional<Credentials>> {
    const IniValue* key = p->find("aws_access_key_id");
    const IniValue* secret = p->find("aws_secret_access_key");
    if (key == nullptr && secret == nullptr) return std::optional<Credentials>();
    const bool here =
        p->from_credentials_file.at(key != nullptr ? "aws_access_key_id" : "aws_secret_access_key");
    if (here != credentials_file) return std::optional<Credentials>();
    if (key == nullptr || secret == nullptr) {
      return core::Error::config((key != nullptr ? key : secret)->where + ": profile " + p->name +
                                 " needs both aws_access_key_id and aws_secret_access_key");
    }
    const IniValue* token = p->find("aws_session_token");
    return std::optional<Credentials>(Credentials{
        key->value, secret->value, token != nullptr ? token->value : "", std::nullopt, source});
  };
  if (const IniValue* role = p->find("role_arn")) {
    const IniValue* session = p->find("role_session_name");
    const std::string session_name_value = session_name(session != nullptr ? session->value : "");
    const IniValue* from = p->find("source_profile");
    const IniValue* credential_source = p->find("credential_source");
    if (from != nullptr && credential_source != nullptr) {
      return core::Error::config(credential_source->where + ": profile " + name +
                                 " has both source_profile and credential_source; give one");
    }
    if (credential_source != nullptr) {
      auto base = from_credential_source(credential_source->value, credential_source->where);
      if (!base) return base.error();
      return assume_role(role->value, session_name_value, assume_role_extra(*p), *base,
                         role->where);
    }
    if (from != nullptr) {
      if (depth >= kMaxProfileChain) {
        return core::Error::config(from->where + ": source_profile chain longer than " +
                                   std::to_string(kMaxProfileChain) + " (a loop?)");
      }
      core::Result<Credentials> base = core::Error::internal("unset");
      if (from->value == name) {
        // A profile that is its own source uses its own keys (as the CLI does).
        auto keys = static_keys(true);
        if (keys && !*keys) keys = static_keys(false);
        if (!keys) return keys.error();
        if (!*keys) {
          return core::Error::config(from->where + ": profile " + name +
                                     " is its own source_profile but has no keys");
        }
        base = **keys;
      } else {
        base = resolve_profile(files, from->value, depth + 1);
      }
      if (!base) return base.error().with_context(from->where + ": source_profile " + from->value);
      return assume_role(role->value, session_name_value, assume_role_extra(*p), *base,
                         role->where);
    }
    if (const IniValue* file = p->find("web_identity_token_file")) {
      return assume_role_with_web_identity(role->value, file->value, session_name_value,
                                           file->where);
    }
    return core::Error::config(role->where +
                               ": role_arn needs source_profile, credential_source or "
                               "web_identity_token_file");
  }
  // The CLI's order within a profile: keys in the credentials file, credential_process, keys in
  // the config file.
  auto keys = static_keys(true);
  if (!keys) return keys.error();
  if (*keys) return **keys;
  if (const IniValue* process = p->find("credential_process")) {
    return from_process(process->value, "credential_process at " + process->where, name);
  }
  keys = static_keys(false);
  if (!keys) return keys.error();
  if (*keys) return **keys;
  return core::Error::config("AWS profile '" + name +
                             "' has no credentials (keys, role_arn or "
                             "credential_process) in " +
                             files.credentials.path + " or " + files.config.path);
}

core::Result<std::optional<Credentials>> CredentialsProvider::from_environment() const {
  const std::string key = env_or(getenv_, "AWS_ACCESS_KEY_ID");
  const std::string secret = env_or(getenv_, "AWS_SECRET_ACCESS_KEY");
  if (key.empty() && secret.empty()) return std::optional<Credentials>();
  if (key.empty() || secret.empty()) {
    return core::Error::config("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together");
  }
  return std::optional<Credentials>(
      Credentials{key, secret, env_or(getenv_, "AWS_SESSION_TOKEN"), std::nullopt, "environment"});
}

core::Result<Credentials> CredentialsProvider::from_credential_source(const std::string& source,
                                                                      const std::string& where) {
  // The three values botocore knows (its CanonicalNameCredentialSourcer).
  const std::string context = where + ": credential_source " + source;
  if (source == "Environment") {
    auto c = from_environment();
    if (!c) return c.error().with_context(context);
    if (!*c) {
      return core::Error::config(context +
                                 ": AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set");
    }
    return **c;
  }
  if (source == "EcsContainer") {
    auto c = from_container();
    if (!c) return c.error().with_context(context);
    return c;
  }
  if (source == "Ec2InstanceMetadata") {
    auto c = from_instance_metadata();
    if (!c) return c.error().with_context(context);
    return c;
  }
  return core::Error::config(where + ": credential_source '" + source +
                             "' is not Environment, EcsContainer or Ec2InstanceMetadata");
}

core::Result<Credentials> CredentialsProvider::assume_role(const std::string& role_arn,
                                                           const std::string& session_name,
                                                           const FormParams& extra_params,
                                                           const Credentials& source,
                                                           const std::string& where) {
  const std::string region = region_.empty() ? "us-east-1" : region_;
  const std::string url = resolve_endpoint(sts_service(), region, getenv_);
  FormParams params{{"RoleArn", role_arn}, {"RoleSessionName", session_name}};
  params.insert(params.end(), extra_params.begin(), extra_params.end());
  const std::string body = form_body("AssumeRole", sts_service().api_version, params);
  const SigV4 sign{region, "sts", source.access_key, source.secret_key, source.session_token};
  auto r = sts_http_.request(
      "POST", url, {"Content-Type: application/x-www-form-urlencoded; charset=utf-8"}, body, sign);
  const std::string context = "sts AssumeRole " + role_arn + " (" + where + ")";
  if (!r) return r.error().with_context(context);
  if (r->status != 200)
    return to_error(parse_query_error(static_cast<int>(r->status), r->body), context);
  auto c = parse_sts_credentials(r->body, "AssumeRole", "assume-role " + role_arn);
  if (!c) return c.error().with_context(where);
  return c;
}

core::Result<Credentials> CredentialsProvider::assume_role_with_web_identity(
    const std::string& role_arn, const std::string& token_file, const std::string& session_name,
    const std::string& where) {
  // Read on every refresh: the kubelet rotates the projected token file.
  auto token = read_file(token_file, "web identity token file (" + where + ")");
  if (!token) return token.error();
  const std::string region = region_.empty() ? "us-east-1" : region_;
  const std::string url = resolve_endpoint(sts_service(), region, getenv_);
  const std::string body = form_body(
      "AssumeRoleWithWebIdentity", sts_service().api_version,
      {{"RoleArn", role_arn}, {"RoleSessionName", session_name}, {"WebIdentityToken", *token}});
  // Unsigned: the token is the proof (STS API reference, AssumeRoleWithWebIdentity).
  auto r = sts_http_.request(
      "POST", url, {"Content-Type: application/x-www-form-urlencoded; charset=utf-8"}, body);
  const std::string context = "sts AssumeRoleWithWebIdentity " + role_arn;
  if (!r) return r.error().with_context(context);
  if (r->status != 200)
    return to_error(parse_query_error(static_cast<int>(r->status), r->body), context);
  return parse_sts_credentials(r->body, "AssumeRoleWithWebIdentity", "web-identity " + role_arn);
}

core::Result<Credentials> CredentialsProvider::from_process(const std::string& command,
                                                            const std::string& where,
                                                            const std::string& profile) {
  // Through the shell, so quoting in the setting works as a user expects. It reads our stdin
  // (a helper may ask for an MFA code on the terminal); what it prints on stderr goes to the
  // log, and the end of it into the error when it fails, as the CLI reports it. The CLI waits
  // for ever: a daemon cannot, so it is killed at process_timeout_.
  ProcessRequest run;
  run.argv = {"/bin/sh", "-c", command};
  run.inherit_stdin = true;
  run.timeout = process_timeout_;
  run.output_limit = 1024 * 1024;
  const ProcessOutcome got = run_process(run);
  if (log_ != nullptr) {
    for (const std::string& line : got.stderr_lines()) {
      log_->warn("credential_process stderr", {{"where", where}, {"line", line}});
    }
  }
  if (!got.succeeded()) {
    const std::string last = got.stderr_tail();
    return core::Error::unavailable(where + ": '" + command + "' " + got.describe(run) +
                                    (last.empty() ? "" : ": " + last));
  }
  return parse_process_output(got.out, where, "profile " + profile + " credential_process");
}

core::Result<Credentials> CredentialsProvider::from_container() {
  std::string url = env_or(getenv_, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
  const std::string relative = env_or(getenv_, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  if (!relative.empty()) {
    url = kContainerHost + relative;
  } else if (!allowed_container_url(url)) {
    return core::Error::config("AWS_CONTAINER_CREDENTIALS_FULL_URI " + url +
                               " must be https, or http to loopback or a container agent "
                               "address (169.254.170.2, 169.254.170.23, fd00:ec2::23)");
  }
  std::vector<std::string> headers;
  // The token file (EKS Pod Identity) wins over the variable, and is read at every fetch: the
  // agent rotates it.
  if (const std::string file = env_or(getenv_, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
      !file.empty()) {
    auto token = read_file(file, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (!token) return token.error();
    if (token->find_first_of("\r\n") != std::string::npos) {
      return core::Error::config("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE " + file +
                                 " holds more than one line");
    }
    headers.push_back("Authorization: " + *token);
  } else if (auto token = getenv_("AWS_CONTAINER_AUTHORIZATION_TOKEN"); token && !token->empty()) {
    headers.push_back("Authorization: " + *token);
  }
  auto r = http_.request("GET", url, headers, "");
  if (!r) return r.error().with_context("container credentials");
  if (r->status != 200) {
    return core::Error::unavailable("container credentials: HTTP " + std::to_string(r->status) +
                                    " from " + url);
  }
  return parse_credentials_json(r->body, "container");
}

core::Result<Credentials> CredentialsProvider::from_instance_metadata() {
  std::string base = env_or(getenv_, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (base.empty()) base = kImdsDefault;
  if (base.back() == '/') base.pop_back();
  // IMDSv2: a session token first (PUT), then every GET carries it.
  auto token = http_.request("PUT", base + "/latest/api/token",
                             {"X-aws-ec2-metadata-token-ttl-seconds: 21600"}, "");
  if (!token) return token.error().with_context("instance metadata token");
  if (token->status != 200) {
    return core::Error::unavailable("instance metadata token: HTTP " +
                                    std::to_string(token->status));
  }
  const std::string auth = "X-aws-ec2-metadata-token: " + token->body;
  auto role =
      http_.request("GET", base + "/latest/meta-data/iam/security-credentials/", {auth}, "");
  if (!role) return role.error().with_context("instance metadata role");
  std::string name = role->body.substr(0, role->body.find('\n'));
  if (role->status != 200 || name.empty()) {
    return core::Error::unavailable("instance metadata: no IAM role attached to this instance");
  }
  auto creds =
      http_.request("GET", base + "/latest/meta-data/iam/security-credentials/" + name, {auth}, "");
  if (!creds) return creds.error().with_context("instance metadata credentials");
  if (creds->status != 200) {
    return core::Error::unavailable("instance metadata credentials: HTTP " +
                                    std::to_string(creds->status));
  }
  return parse_credentials_json(creds->body, "instance-metadata");
}

}  // namespace intermission::adapters::aws
