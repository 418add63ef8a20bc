#include "app/cli.h"

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "adapters/aws/codedeploy_lookup.h"
#include "adapters/backend/factory.h"
#include "adapters/config/yaml_config.h"
#include "adapters/haproxy/config_snippet.h"
#include "adapters/haproxy/protocol.h"
#include "adapters/kube/client.h"
#include "adapters/log/json_logger.h"
#include "adapters/nginx/config_snippet.h"
#include "adapters/sns/verifier.h"
#include "adapters/store/dynamodb_store.h"
#include "adapters/store/factory.h"
#include "adapters/store/postgres_store.h"
#include "app/args.h"
#include "app/lambda_command.h"
#include "app/nginx_page.h"
#include "app/notifications.h"
#include "app/page_command.h"
#include "app/page_ledger.h"
#include "app/serve_command.h"
#include "app/status.h"
#include "core/controller.h"
#include "core/event_parser.h"
#include "core/state_codec.h"
#include "core/text.h"
#include "page/assets.h"

namespace intermission::app {
namespace {

using core::Result;

constexpr const char* kDefaultConfig = "/etc/intermission/config.yaml";

constexpr const char* kMainHelp = R"(intermission - a maintenance page that follows your deployments

Usage: intermission [--config FILE] [--log-level LEVEL] COMMAND [ARGS]

Commands:
  on ENV [--reason R] [--for D | --until T] [--who W]
                          operator hold: maintenance on (until lifted, or for D)
  off ENV [--for D | --until T] [--reason R] [--who W]
                          lift maintenance now; with --for/--until keep it off that long
  schedule ENV --at T (--for D | --until T) [--reason R] [--who W]
  schedule ENV --list [--json] | --cancel ID | --change ID [--at T] [--for D | --until T] [--reason R]
                          scheduled maintenance windows: up at T, down at the end, by themselves
  status [ENV] [--json] [--no-observe]
                          what each environment is, why, since when, active deployments
  handle [FILE|-] [--dry-run] [--json]
                          process one event (any supported shape) as the Lambda would
  tick [ENV] [--dry-run]  periodic work: expiries, CodeDeploy re-checks, repair drift
  lease break ENV [--who W] [--reason R]
                          give up the switching lease a dead process left (audited)
  serve                   the daemon: SNS endpoint, webhook, operator API, status, metrics
  lambda                  the AWS Lambda custom runtime loop (the zip's bootstrap)
  store migrate           create or migrate the configured store's schema
  dynamodb-table NAME     print the CreateTable input the dynamodb store expects
  sns-verify FILE [--certs DIR] [--offline] [--ca FILE] [--topics ARNS]
                          check an SNS message's signature as the endpoint does
  page [--listen ADDRS] [--page FILE | --page-dir DIR] [--assets DIR] ...
                          the maintenance page server (503 + Retry-After on every path)
  haproxy-config ENV [--frontend F] [--page-server ADDR] [--bypass-cidr LIST]
                 [--bypass-secret S | --no-secret]
                          print the haproxy.cfg lines for ENV (map switch, page, bypass)
  nginx-config ENV [--page-server ADDR] [--bypass-cidr LIST] [--bypass-secret S | --no-secret]
               [--exempt PATHS] [--health-path P] [--part http|server]
                          print the nginx.conf lines for ENV (state file, page, bypass)
  check-config            validate the configuration; every mistake with file:line:column
  help [COMMAND]          this text, or a command's

Options:
  --config FILE       the configuration (default: $INTERMISSION_CONFIG, else
                      /etc/intermission/config.yaml)
  --log-level LEVEL   debug, info, warn, error (JSON lines on stderr)

Exit codes:
  0  done (including events acknowledged and ignored)
  1  the store or a backend failed; retrying may help
  2  usage error
  3  the configuration is invalid
  4  the input could not be read or is not JSON
)";

const std::map<std::string, std::string>& command_help() {
  static const std::map<std::string, std::string> kHelp = {
      {"on", R"(Usage: intermission on ENV [--reason R] [--for D | --until T] [--who W]

Puts ENV into maintenance now and keeps it there, whatever deployments do, until
`intermission off ENV` or until the hold ends (--for 30m, --until 2026-01-01T10:00:00Z or
2026-01-01T11:00:00+01:00: a time needs Z or its offset from UTC; second 60 only as a leap
second, 23:59:60 UTC, read as the next second).
--reason is shown on the page. --who defaults to $SUDO_USER or $USER. Text must be UTF-8.
)"},
      {"off", R"(Usage: intermission off ENV [--for D | --until T] [--reason R] [--who W]

Lifts maintenance on ENV now: ends an operator hold, and the deployments running or failed
right now stop counting. Deployments that start later raise the page again, unless --for or
--until is given: then the page stays off until that time whatever happens.
)"},
      {"schedule",
       R"(Usage: intermission schedule ENV --at T (--for D | --until T) [--reason R] [--who W]
       intermission schedule ENV --list [--json]
       intermission schedule ENV --cancel ID [--who W]
       intermission schedule ENV --change ID [--at T] [--for D | --until T] [--reason R] [--who W]

A scheduled maintenance window: the page goes up at T and down at its end by itself (the
daemon wakes at those moments; with cron, at the next `intermission tick`). T is a time with
its zone (2026-01-31T02:00:00Z for UTC, 2026-01-31T03:00:00+01:00 with an offset; one
without a zone is refused) or a delay from now (+2h, +0s); --until is such a time, --for a
duration from the start. --reason is shown on the page. A window in the past, ending before
it starts, or more than 36500 days ahead is refused (exit 2); at most 50 per environment.
An operator's hold wins over a window both ways; `intermission off` ends the window in
progress (not the ones to come). --list shows the upcoming and active windows with their ids;
--change keeps what it is not given (a window that has started keeps its start).
)"},
      {"status", R"(Usage: intermission status [ENV] [--json] [--no-observe]

Shows for each environment (or ENV): on or off, why, since when, the expected end, the
deployments that keep the page up, and what the backend reports now (--no-observe skips
asking the backend). --json prints one JSON document for scripts.
)"},
      {"handle", R"(Usage: intermission handle [FILE|-] [--dry-run] [--json]
                              [--verify [--certs DIR] [--offline] [--ca FILE] [--topics ARNS] [--at TIME]]

Processes one input exactly as the Lambda function would: a Lambda SNS event, an SNS HTTP
body (or a whole HTTP request with headers), a bare CodeDeploy message, an EventBridge event,
an operator command ({"operator":{"environment":..,"action":"on"|"off",..}}), or a JSON array
of these. Reads standard input when FILE is - or absent. Inputs that are not deployment-level
CodeDeploy events are acknowledged and ignored (exit 0) with a log line. An SNS message (a
Lambda record or an HTTP body) may carry CodeDeploy events only: never operator commands or
ticks.
--dry-run records nothing, changes nothing, and prints the steps it would apply.
--verify  the input must be SNS: every message (each Lambda record on its own) is verified
          as sns-verify does (same options), and only the events of verified messages are
          acted on; one that fails refuses the input (exit 4).
)"},
      {"tick", R"(Usage: intermission tick [ENV] [--dry-run]

The periodic work (run it every few minutes from cron or a timer): ends expired holds,
expires deployments active longer than max_duration, asks CodeDeploy about deployments still
active (heals lost notifications), and repairs a backend that drifted from the decision.
)"},
      {"lease", R"(Usage: intermission lease break ENV [--who W] [--reason R]

Breaks ENV's switching lease, which a process that died in the middle of a switch leaves
behind until it runs out (store.lease); `status` shows who holds it. Refused while the
holder is alive on this host (its id is host/pid.start/random: a pid that was reused by
another process since does not count); a holder on another host cannot
be checked from here: make sure it is gone. The break is written to the audit trail. Run
`intermission tick ENV` afterwards to converge at once.
)"},
      {"sns-verify", R"(Usage: intermission sns-verify FILE|- [--certs DIR] [--offline] [--ca FILE]
                                  [--topics ARN,...] [--at TIME]

Checks an SNS message (an HTTP body, a saved HTTP request, or a Lambda SNS event, each of whose
records is checked on its own) exactly as the endpoint does, and prints `valid` (exit 0) or
`invalid: <reason>` (exit 1): SignatureVersion 1 (SHA1withRSA) or 2 (SHA256withRSA) only; the
topic in the allow-list (--topics), its region a region name; SigningCertURL exactly
https://sns.<topic's region>.amazonaws.com[.cn]/SimpleNotificationService-<hex>.pem, checked
before anything is fetched; the Timestamp within the last hour and not in the future; the
certificate fetched from that URL over HTTPS (TLS verified with the system's roots, or
--ca FILE), one PEM certificate, valid, issued to SNS's signing name (sns.amazonaws.com,
sns-signing.<region>.amazonaws.com, sns-<region>.amazonaws.com.cn), key usage allowing
signatures; the signature over the fields SNS signs. See docs/sns.md.
  --certs DIR   certificates by file name (SimpleNotificationService-<hex>.pem), trusted as
                yours; looked up before any fetch
  --offline     fetch nothing: certificates only from DIR; validity judged at the message's
                Timestamp and no Timestamp window (a saved message)
  --at TIME     judge at TIME (UTC, 2026-03-06T20:00:00Z) instead of now or the Timestamp
)"},
      {"store", R"txt(Usage: intermission store migrate [--config FILE]

Creates the configured store's schema, or brings it to the version this intermission uses
(PostgreSQL: versioned migrations in one transaction, under an advisory lock, so replicas
starting together migrate once; a schema newer than this build is refused). Prints the
version. Every command migrates on first use too; run this before rolling out a new version.
)txt"},
      {"dynamodb-table", R"txt(Usage: intermission dynamodb-table NAME

Prints the CreateTable input (JSON) of the table the dynamodb store expects, for
`aws dynamodb create-table --cli-input-json "$(intermission dynamodb-table intermission)"`.
The CloudFormation template in deploy/ creates the same table (and enables its TTL on
`expires_at`).
)txt"},
      {"serve", R"(Usage: intermission serve [--config FILE]

The long-running daemon. Public listener (serve.listen, default 127.0.0.1:9300; put TLS in
front of it): POST /sns (SNS HTTP(S) subscription: every message's signature is verified,
subscriptions are confirmed only for serve.sns.topics), POST /webhook (deploy pipelines:
HMAC-SHA256 of "TIMESTAMP.BODY" in X-Intermission-Signature: sha256=..., Unix seconds in
X-Intermission-Timestamp, replays refused). Admin listener (serve.admin_listen, default
127.0.0.1:9301): GET / (status page), GET /metrics (Prometheus), /api/environments[/ENV]
and POST /api/environments/ENV/on|off with "Authorization: Bearer TOKEN".
Events are recorded before the answer; switches run right after, and on every tick
(serve.tick_interval). SIGTERM finishes the switch in progress; SIGHUP reloads the config
(a bad one is refused and the old one kept).
)"},
      {"lambda", R"(Usage: intermission lambda

The AWS Lambda custom runtime (provided.al2023): the zip's bootstrap runs it. Reads the
config from INTERMISSION_CONFIG_YAML (YAML text), else --config / INTERMISSION_CONFIG, else
$LAMBDA_TASK_ROOT/config.yaml. Logs JSON lines to stdout (INTERMISSION_LOG_LEVEL).
An event that cannot be parsed is logged and acknowledged; a store or backend failure is
reported as an error so SNS/Lambda retry the event.
)"},
      {"page", R"(Usage: intermission page [options]

Serves the maintenance page: every path and method gets 503 with the page, Retry-After and
Cache-Control: no-store; the health path gets 200 (GET and HEAD) so the load balancer keeps
this host healthy; clients that prefer application/json get a small JSON body.

  --listen ADDRS        comma-separated, e.g. 0.0.0.0:80,[::]:80 (default 127.0.0.1:8081)
  --page FILE           your own HTML; {{reason}}, {{until}}, {{until_iso}}, {{retry_after}}
                        are replaced (HTML-escaped)
  --page-dir DIR        pages per language: maintenance.html, maintenance.<lang>.html (de,
                        pt-BR; chosen by Accept-Language), optional message.txt and
                        message.<lang>.txt (the words when there is no reason; also JSON)
  --default-language L  the language of maintenance.html (default en; Content-Language)
  --assets DIR          files served under the assets prefix (loaded at start)
  --assets-prefix P     default /_intermission/
  --health PATH         default /healthz
  --reason TEXT         what the page says (default: a generic sentence)
  --until TIME          expected end, UTC (2026-01-31T18:00:00Z): shown, and Retry-After
  --retry-after D       Retry-After when the end is unknown (default 2m)
  --environment ENV     follow ENV's ledger (with --config) for the reason and expected end
  --port-file FILE      write the bound port there (useful with port 0)
  --threads N           N threads, each with its own listener on the port (SO_REUSEPORT)
  --idle-timeout D      close a connection idle (or sending its request) this long (15s)
  --write-timeout D     close a connection that does not read its response this long (15s)
  --max-connections N   accept at most N at once; more are closed at once (20000)

SIGHUP re-reads --page, --page-dir and --assets (open connections get the new page with their next
request; a file that cannot be read is refused and the old page kept). SIGTERM stops
accepting, lets requests in progress finish (up to 5 s), and exits.
)"},
      {"haproxy-config", R"(Usage: intermission haproxy-config ENV [options]

Prints, with comments, the lines to add to haproxy.cfg for ENV (whose backend is haproxy):
the runtime API socket, the map lookup that switches maintenance, the route to the page
server, and bypass rules by source address and by a secret cookie or header.

  --frontend F          the name of your frontend (default www)
  --page-server ADDR    where `intermission page` listens (default 127.0.0.1:8081)
  --bypass-cidr LIST    comma-separated sources that always see the app (10.0.0.0/8,...)
  --bypass-secret S     the cookie/header value that bypasses (default: a random one)
  --no-secret           no cookie/header bypass
)"},
      {"nginx-config", R"(Usage: intermission nginx-config ENV [options]

Prints, with comments, the lines to add to nginx.conf for ENV (whose backend is nginx): for
the http {} block, bypass by source address and by a secret cookie or header; for the server
{} block, the maintenance decision (the state file, tested on every request: no reload per
switch), the health path and exempt paths passed to the application, the page with a fallback
page of nginx's own, and the local probe location. The page is proxied to `intermission page`,
or, when the backend has `page_dir`, served by nginx from the files intermission writes there
at every switch on (page.html, page.json, assets/: no page server to run).

  --page-server ADDR    where `intermission page` listens (default 127.0.0.1:8081; not
                        with page_dir)
  --bypass-cidr LIST    comma-separated sources that always see the app (10.0.0.0/8,...)
  --bypass-secret S     the cookie/header value that bypasses (default: a random one)
  --no-secret           no cookie/header bypass
  --exempt PATHS        comma-separated path prefixes that always reach the app
                        (/webhooks/,/.well-known/acme-challenge/)
  --health-path P       passed to the app, for its load balancer (default /healthz)
  --part http|server    print only that part, without comments (for scripts)
)"},
      {"check-config", R"(Usage: intermission check-config [--config FILE]

Validates the configuration and prints every mistake as FILE:LINE:COLUMN: FIELD: MESSAGE.
Exit 0 when valid, 3 when not.
)"},
  };
  return kHelp;
}

int usage_error(CliIo& io, const std::string& command, const std::string& message) {
  io.err << "intermission " << command << ": " << message << "\n";
  io.err << "Try: intermission help " << command << "\n";
  return kExitUsage;
}

// Everything a command that acts needs, built from the config.
struct Runtime {
  adapters::LoadedConfig loaded;
  adapters::SystemClock clock;
  std::unique_ptr<adapters::JsonLogger> log;
  std::unique_ptr<core::Store> store;
  std::unique_ptr<adapters::aws::AwsContext> aws;
  std::unique_ptr<adapters::aws::CodeDeployLookup> lookup;
  std::unique_ptr<adapters::DefaultBackendFactory> backends;
  adapters::ThreadSleeper sleeper;
  adapters::SeededRandom random;
  GetEnv getenv;
  // Notifications (docs/notifications.md), made by the first controller(): the notifier's
  // own store connection for the audit lines of its deliveries, and the notifier. Last, so
  // they go first.
  std::unique_ptr<core::Store> notify_store;
  std::unique_ptr<adapters::HttpNotifier> notifier;

  Runtime() = default;
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  // After the command's switches: their notices get up to notifications.timeout to go out
  // (the switch is done already; this only delays the exit), what is left is dropped.
  ~Runtime() {
    if (notifier && !notifier->wait_idle(loaded.config.notifications.timeout)) {
      log->warn("exiting with notices undelivered; they are dropped");
    }
  }

  core::Controller controller() {
    start_notifier();
    return core::Controller(
        loaded.config, {*store, *backends, clock, *log, lookup.get(), adapters::lease_holder_id(),
                        &sleeper, &random, notifier.get()});
  }

 private:
  void start_notifier() {
    if (notifier || loaded.config.notifications.targets.empty()) return;
    LoadedTargets targets = load_notify_targets(loaded.config.notifications, getenv);
    for (const auto& p : targets.problems) {
      log->error("notification target left out", {{"problem", p}});
    }
    auto opened = adapters::open_store(loaded.config.store, aws.get(), clock, *log);
    if (!opened) {
      log->error("notifications off: the store cannot be opened for their audit lines",
                 {{"error", opened.error().message}});
      return;
    }
    notify_store = std::move(*opened);
    notifier = std::make_unique<adapters::HttpNotifier>(
        std::move(targets.targets), notifier_options(loaded.config.notifications), clock,
        [this](const adapters::DeliveryReport& r) {
          record_delivery(r, *notify_store, *log, clock.now());
        });
  }
};

std::string config_path(const Args& global, CliIo& io) {
  if (auto c = global.option("--config")) return *c;
  if (auto e = io.getenv("INTERMISSION_CONFIG"); e && !e->empty()) return *e;
  return kDefaultConfig;
}

// Loads the config; on mistakes prints them all and returns nullopt (exit 3).
bool load_config(const std::string& path, CliIo& io, adapters::LoadedConfig& out) {
  out = adapters::load_config_file(path);
  if (out.errors.empty()) return true;
  for (const auto& e : out.errors) io.err << e.to_string() << "\n";
  io.err << out.errors.size() << (out.errors.size() == 1 ? " mistake" : " mistakes") << " in "
         << path << "\n";
  return false;
}

// Returns an exit code when the runtime cannot be built.
std::optional<int> make_runtime(const Args& global, CliIo& io, core::LogLevel default_level,
                                Runtime& rt) {
  if (!load_config(config_path(global, io), io, rt.loaded)) return kExitConfig;
  core::LogLevel level = default_level;
  if (auto l = global.option("--log-level")) {
    auto parsed = adapters::parse_log_level(*l);
    if (!parsed) {
      io.err << "intermission: --log-level must be debug, info, warn or error\n";
      return kExitUsage;
    }
    level = *parsed;
  }
  rt.log = std::make_unique<adapters::JsonLogger>(stderr, rt.clock, level);
  rt.getenv = io.getenv;
  const core::AwsConfig& aws = rt.loaded.config.aws;
  if (aws.present || adapters::uses_aws(rt.loaded.config)) {
    adapters::aws::RetryPolicy retry;
    retry.max_attempts = aws.max_attempts;
    rt.aws = std::make_unique<adapters::aws::AwsContext>(aws.region, io.getenv, rt.clock, *rt.log,
                                                         retry);
  }
  auto store = adapters::open_store(rt.loaded.config.store, rt.aws.get(), rt.clock, *rt.log);
  if (!store) {
    io.err << "intermission: store: " << store.error().message << "\n";
    return store.error().code == core::ErrorCode::kConfig ? kExitConfig : kExitFailed;
  }
  rt.store = std::move(*store);
  if (aws.present && aws.codedeploy_lookup) {
    auto client = rt.aws->client(adapters::aws::codedeploy_service());
    if (!client) {
      io.err << "intermission: " << client.error().message << "\n";
      return kExitConfig;
    }
    rt.lookup = std::make_unique<adapters::aws::CodeDeployLookup>(**client);
  }
  rt.backends = std::make_unique<adapters::DefaultBackendFactory>(
      rt.clock, rt.aws.get(),
      [&c = rt.clock](const auto& source, const auto& step) {
        return build_nginx_page(source, step, c.now());
      },
      [&l = *rt.log](const std::string& kubeconfig, const std::string& context) {
        return adapters::kube::open_api(kubeconfig, context, l);
      });
  return std::nullopt;
}

// Who an operator command is by: --who, else $SUDO_USER, $USER or $LOGNAME, else "operator".
// Refused (kRefused) when it is not UTF-8, naming where it came from: it is stored and shown.
Result<std::string> operator_who(const Args& a, CliIo& io) {
  if (auto w = a.option("--who")) {
    if (auto st = core::check_utf8(*w, "--who"); !st) return st.error();
    return *w;
  }
  for (const char* name : {"SUDO_USER", "USER", "LOGNAME"}) {
    if (auto v = io.getenv(name); v && !v->empty()) {
      const std::string field = "$" + std::string(name) + " (the default of --who)";
      if (auto st = core::check_utf8(*v, field); !st) {
        return core::Error::refused(st.error().message + ", or give --who");
      }
      return *v;
    }
  }
  return std::string("operator");
}

// The text of option `name` (--reason), if given; refused when it is not UTF-8.
Result<std::optional<std::string>> text_option(const Args& a, const char* name) {
  auto v = a.option(name);
  if (v) {
    if (auto st = core::check_utf8(*v, name); !st) return st.error();
  }
  return v;
}

std::string describe_outcome(const core::Outcome& o, bool dry_run) {
  if (o.ignored) return "ignored: " + o.note;
  std::string out = o.environment + ": maintenance " + (o.decision.on ? "on" : "off");
  if (!o.decision.reasons.empty()) out += " (" + o.decision.reason_text() + ")";
  if (!o.note.empty()) out += "; " + o.note;
  if (dry_run) {
    if (o.planned.empty()) out += "; nothing to do";
    for (const auto& s : o.planned) out += "\n  would " + core::describe(s);
  } else {
    for (const auto& s : o.applied) out += "\n  applied: " + core::describe(s);
  }
  return out;
}

boost::json::value outcome_json(const core::Outcome& o) {
  boost::json::array planned;
  for (const auto& s : o.planned) planned.emplace_back(core::describe(s));
  boost::json::array applied;
  for (const auto& s : o.applied) applied.emplace_back(core::describe(s));
  boost::json::array why;
  for (const auto& r : o.decision.reasons) why.emplace_back(r);
  return boost::json::object{{"environment", o.environment},
                             {"ignored", o.ignored},
                             {"recorded", o.recorded},
                             {"deferred", o.deferred},
                             {"note", o.note},
                             {"on", o.decision.on},
                             {"why", std::move(why)},
                             {"planned", std::move(planned)},
                             {"applied", std::move(applied)}};
}

// An SNS HTTP delivery saved with its request line and headers: the body follows the first
// empty line. Anything else is taken as it is.
std::string strip_http_envelope(const std::string& text) {
  const bool http = text.rfind("POST ", 0) == 0 || text.rfind("PUT ", 0) == 0;
  const auto line_end = text.find('\n');
  if (!http || line_end == std::string::npos ||
      text.substr(0, line_end).find(" HTTP/1.") == std::string::npos) {
    return text;
  }
  for (const char* sep : {"\r\n\r\n", "\n\n"}) {
    const auto pos = text.find(sep);
    if (pos != std::string::npos) return text.substr(pos + std::string_view(sep).size());
  }
  return text;
}

int report_failure(CliIo& io, const std::string& command, const core::Error& e) {
  io.err << "intermission " << command << ": "
         << (e.code == core::ErrorCode::kRefused ? "refused: " : "") << e.message << "\n";
  if (e.code == core::ErrorCode::kNotFound || e.code == core::ErrorCode::kRefused) {
    return kExitUsage;
  }
  if (e.code == core::ErrorCode::kConfig) return kExitConfig;
  return kExitFailed;
}

// The input a command reads: the file at `source`, or standard input for "-". On failure
// prints why (naming the command) and returns nullopt.
std::optional<std::string> read_input(const std::string& command, const std::string& source,
                                      CliIo& io) {
  std::ostringstream s;
  if (source == "-") {
    s << io.in.rdbuf();
    return s.str();
  }
  std::ifstream f(source, std::ios::binary);
  if (!f) {
    io.err << "intermission " << command << ": cannot read " << source << ": "
           << std::strerror(errno) << "\n";
    return std::nullopt;
  }
  s << f.rdbuf();
  return s.str();
}

// "a,b,,c" -> {"a", "b", "c"}.
std::vector<std::string> split_commas(const std::string& list) {
  std::vector<std::string> out;
  for (std::size_t start = 0; start < list.size();) {
    std::size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    if (comma > start) out.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

int cmd_check_config(const Args& global, const Args&, CliIo& io) {
  adapters::LoadedConfig loaded;
  const std::string path = config_path(global, io);
  if (!load_config(path, io, loaded)) return kExitConfig;
  io.out << path << ": valid (" << loaded.config.environments.size() << " environment"
         << (loaded.config.environments.size() == 1 ? "" : "s") << ", "
         << loaded.config.routes.size() << " route" << (loaded.config.routes.size() == 1 ? "" : "s")
         << ")\n";
  return kExitOk;
}

int cmd_operator(const Args& global, const Args& a, CliIo& io, core::OperatorAction action) {
  const std::string name = action == core::OperatorAction::kOn ? "on" : "off";
  core::OperatorCommand c;
  c.environment = a.positional[0];
  c.action = action;
  auto reason = text_option(a, "--reason");
  if (!reason) return usage_error(io, name, reason.error().message);
  c.reason = reason->value_or("");
  auto who = operator_who(a, io);
  if (!who) return usage_error(io, name, who.error().message);
  c.who = *who;
  if (auto f = a.option("--for")) {
    auto d = core::read_duration(*f);
    if (!d) return usage_error(io, name, "--for " + d.error().message);
    c.duration = *d;
  }
  if (auto u = a.option("--until")) {
    auto t = core::read_operator_time(*u);
    if (!t) return usage_error(io, name, "--until " + t.error().message);
    c.until = *t;
  }
  Runtime rt;
  if (auto code = make_runtime(global, io, core::LogLevel::kWarn, rt)) return *code;
  // The core's one check of an operator command, as for `handle`, the Lambda and the API.
  if (auto st = core::check_operator_command(c, rt.clock.now()); !st) {
    return usage_error(io, name, st.error().message);
  }
  auto controller = rt.controller();
  auto o = controller.handle(c);
  if (!o) return report_failure(io, name, o.error());
  io.out << describe_outcome(*o, false) << "\n";
  return kExitOk;
}

int cmd_schedule(const Args& global, const Args& a, CliIo& io) {
  const std::string env = a.positional[0];
  const int modes =
      (a.flag("--list") ? 1 : 0) + (a.option("--cancel") ? 1 : 0) + (a.option("--change") ? 1 : 0);
  if (modes > 1) return usage_error(io, "schedule", "give one of --list, --cancel, --change");
  core::WindowCommand c;
  c.environment = env;
  auto who = operator_who(a, io);
  if (!who) return usage_error(io, "schedule", who.error().message);
  c.who = *who;
  auto reason = text_option(a, "--reason");
  if (!reason) return usage_error(io, "schedule", reason.error().message);
  c.reason = *reason;
  if (auto at = a.option("--at")) {
    if (auto st = core::read_window_start(*at, c); !st) {
      return usage_error(io, "schedule", "--at: " + st.error().message);
    }
  }
  if (auto f = a.option("--for")) {
    auto d = core::read_duration(*f);
    if (!d) return usage_error(io, "schedule", "--for " + d.error().message);
    c.duration = *d;
  }
  if (auto u = a.option("--until")) {
    if (c.duration) return usage_error(io, "schedule", "give --for or --until, not both");
    if (auto st = core::read_window_end(*u, c); !st) {
      return usage_error(io, "schedule", "--until: " + st.error().message);
    }
  }
  if (a.option("--cancel")) {
    c.action = core::WindowAction::kCancel;
    c.id = *a.option("--cancel");
  } else if (a.option("--change")) {
    c.action = core::WindowAction::kChange;
    c.id = *a.option("--change");
  } else if (!a.flag("--list")) {
    if (!c.start && !c.start_in) return usage_error(io, "schedule", "--at is required");
    if (!c.end && !c.duration) return usage_error(io, "schedule", "--for or --until is required");
  }
  Runtime rt;
  if (auto code = make_runtime(global, io, core::LogLevel::kWarn, rt)) return *code;
  const core::EnvironmentConfig* config = rt.loaded.config.environment(env);
  if (config == nullptr) {
    return usage_error(io, "schedule", "no environment '" + env + "' in " + rt.loaded.config.file);
  }
  if (a.flag("--list")) {
    auto state = rt.store->load(env);
    if (!state) return report_failure(io, "schedule", state.error());
    const core::Time now = rt.clock.now();
    const auto windows = core::upcoming_windows(*state, now);
    if (a.flag("--json")) {
      boost::json::array list;
      for (const auto& w : windows) {
        boost::json::value v = core::to_json(w);
        v.as_object()["active"] = w.start <= now;
        list.push_back(std::move(v));
      }
      io.out << boost::json::serialize(
                    boost::json::object{{"environment", env}, {"windows", std::move(list)}})
             << "\n";
      return kExitOk;
    }
    if (windows.empty()) io.out << env << ": no windows scheduled\n";
    for (const auto& w : windows) {
      io.out << w.id << "  " << core::format_iso8601(w.start) << "  " << core::format_iso8601(w.end)
             << (w.start <= now ? "  active" : "  upcoming") << "  by " << w.who
             << (w.reason.empty() ? "" : ": " + w.reason) << "\n";
    }
    return kExitOk;
  }
  auto controller = rt.controller();
  auto o = controller.handle_window(c);
  if (!o) {
    // Only the window rules refuse (kRefused, exit 2); a store that cannot read or write the
    // ledger is a failure (exit 1), whatever its code.
    return report_failure(io, "schedule", o.error());
  }
  const char* done = c.action == core::WindowAction::kSchedule ? "scheduled"
                     : c.action == core::WindowAction::kChange ? "changed"
                                                               : "cancelled";
  io.out << env << ": window " << o->note << " " << done << "\n"
         << describe_outcome(*o, false) << "\n";
  return kExitOk;
}

int cmd_lease(const Args& global, const Args& a, CliIo& io) {
  if (a.positional[0] != "break") {
    return usage_error(io, "lease", "unknown subcommand '" + a.positional[0] + "' (break)");
  }
  const std::string name = a.positional[1];
  auto by = operator_who(a, io);
  if (!by) return usage_error(io, "lease", by.error().message);
  auto reason = text_option(a, "--reason");
  if (!reason) return usage_error(io, "lease", reason.error().message);
  Runtime rt;
  if (auto code = make_runtime(global, io, core::LogLevel::kWarn, rt)) return *code;
  if (!rt.loaded.config.environment(name)) {
    return usage_error(io, "lease", "no environment '" + name + "' in " + rt.loaded.config.file);
  }
  auto current = rt.store->lease(name);
  if (!current) return report_failure(io, "lease", current.error());
  if (!*current) {
    io.out << name << ": no switching lease is held\n";
    return kExitOk;
  }
  const core::Lease held = **current;
  if (adapters::lease_holder_alive_here(held.holder)) {
    io.err << "intermission lease: refused: " << held.holder
           << " is alive on this host; it gives the lease up when its switch ends (or stop it "
              "first)\n";
    return kExitFailed;
  }
  const std::string who = *by;
  const core::Time now = rt.clock.now();
  std::string message = "switching lease of " + name + " held by " + held.holder + " (until " +
                        core::format_iso8601(held.until) + ") broken by " + who;
  if (const auto& r = *reason; r && !r->empty()) message += ": " + *r;
  // The audit line goes in first, with the state unchanged: a break is never unrecorded.
  for (int attempt = 0;; ++attempt) {
    auto state = rt.store->load(name);
    if (!state) return report_failure(io, "lease", state.error());
    auto written = rt.store->compare_and_set(
        *state, state->version, {core::AuditEntry{now, name, "lease-broken", message, who, ""}});
    if (written) break;
    if (written.error().code != core::ErrorCode::kConflict || attempt == 8) {
      return report_failure(io, "lease", written.error());
    }
  }
  if (auto st = rt.store->release_lease(name, held.holder); !st) {
    return report_failure(io, "lease", st.error());
  }
  rt.log->warn(message, {{"environment", name}, {"who", who}});
  io.out << name << ": " << message << "\nRun `intermission tick " << name
         << "` to converge now.\n";
  return kExitOk;
}

int cmd_status(const Args& global, const Args& a, CliIo& io) {
  Runtime rt;
  if (auto code = make_runtime(global, io, core::LogLevel::kWarn, rt)) return *code;
  const auto& config = rt.loaded.config;
  std::vector<std::string> names;
  if (!a.positional.empty()) {
    if (!config.environment(a.positional[0])) {
      return usage_error(io, "status",
                         "no environment '" + a.positional[0] + "' in " + config.file);
    }
    names.push_back(a.positional[0]);
  } else {
    for (const auto& [n, e] : config.environments) names.push_back(n);
  }
  std::vector<EnvironmentStatus> envs;
  int code = kExitOk;
  for (const auto& n : names) {
    EnvironmentStatus s;
    s.config = config.environment(n);
    auto state = rt.store->load(n);
    if (!state) {
      // Shown on its line; the other environments are still reported.
      s.error = state.error().message;
      code = kExitFailed;
      envs.push_back(std::move(s));
      continue;
    }
    s.state = std::move(*state);
    if (auto recent = rt.store->audit(n, kStatusAuditRead)) {
      s.recent = status_recent(*recent, kStatusRecent);
    }
    if (auto lease = rt.store->lease(n)) s.lease = *lease;
    auto backend = rt.backends->make(*s.config);
    if (backend) {
      s.backend = (*backend)->describe();
      if (!a.flag("--no-observe")) s.observed = (*backend)->observe();
    } else {
      s.backend = "(" + backend.error().message + ")";
    }
    envs.push_back(std::move(s));
  }
  const core::Time now = rt.clock.now();
  if (a.flag("--json")) {
    io.out << boost::json::serialize(status_json(envs, now)) << "\n";
  } else {
    io.out << status_text(envs, now);
  }
  return code;
}

core::Result<std::vector<core::SnsMessage>> verify_sns_input(
    const std::string& text, const Args& a, CliIo& io,
    const std::vector<std::string>& default_topics = {});

int cmd_handle(const Args& global, const Args& a, CliIo& io) {
  const std::string source = a.positional.empty() ? "-" : a.positional[0];
  const bool dry_run = a.flag("--dry-run");
  if (a.flag("--verify") && !dry_run && (a.flag("--offline") || a.option("--at"))) {
    // A message judged at another time than now (a saved one, its certificate perhaps expired,
    // outside the Timestamp window) may be shown, never acted on: that would be a replay.
    io.err << "intermission handle: --offline and --at judge a message in the past: "
              "only with --dry-run\n";
    return kExitUsage;
  }
  const auto text = read_input("handle", source, io);
  if (!text) return kExitBadInput;
  Runtime rt;
  if (auto code = make_runtime(global, io, core::LogLevel::kInfo, rt)) return *code;
  core::Result<std::vector<core::ParsedItem>> items = std::vector<core::ParsedItem>{};
  if (a.flag("--verify")) {
    // AWS signs messages on anyone's topic: only the topics we trust (--topics, else the
    // daemon's serve.sns.topics) are acted on, as the daemon does.
    const auto& topics = rt.loaded.config.serve.sns_topics;
    if (!a.option("--topics") && topics.empty()) {
      io.err << "intermission handle: --verify needs the topics it trusts: --topics ARNS or "
                "serve.sns.topics in the configuration\n";
      return kExitUsage;
    }
    // Only what was verified is acted on: the events of the verified messages, built from
    // those messages alone (CodeDeploy only); one refused record refuses the input.
    auto messages = verify_sns_input(*text, a, io, topics);
    if (!messages) {
      io.err << "intermission handle: " << source << ": not verified: " << messages.error().message
             << "\n";
      return kExitBadInput;
    }
    for (const auto& m : *messages) {
      for (auto& item : core::events_from_sns(
               m, m.lambda ? core::EventSource::kLambdaSns : core::EventSource::kSnsHttp)) {
        items->push_back(std::move(item));
      }
    }
  } else {
    items = core::parse_events(strip_http_envelope(*text));
  }
  if (!items) {
    io.err << "intermission handle: " << source << ": " << items.error().message << "\n";
    return kExitBadInput;
  }
  auto controller = rt.controller();
  // A refused operator command refuses the input before any of it is acted on.
  for (const auto& item : *items) {
    if (auto st = controller.check(item); !st) return report_failure(io, "handle", st.error());
  }
  boost::json::array results;
  int code = kExitOk;
  for (const auto& item : *items) {
    auto outcomes = controller.handle_all(item, dry_run);
    if (!outcomes) {
      code = report_failure(io, "handle", outcomes.error());
      if (code != kExitFailed) return code;
      continue;  // later items may concern other environments
    }
    for (const auto& o : *outcomes) {
      if (a.flag("--json")) {
        results.push_back(outcome_json(o));
      } else {
        io.out << describe_outcome(o, dry_run) << "\n";
      }
    }
  }
  if (a.flag("--json")) io.out << boost::json::serialize(results) << "\n";
  return code;
}

// A random hex secret for the bypass cookie, from the kernel's generator.
std::string random_secret() {
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  unsigned char bytes[16] = {};
  urandom.read(reinterpret_cast<char*>(bytes), sizeof bytes);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (const unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

int cmd_haproxy_config(const Args& global, const Args& a, CliIo& io) {
  adapters::LoadedConfig loaded;
  const std::string path = config_path(global, io);
  if (!load_config(path, io, loaded)) return kExitConfig;
  const core::EnvironmentConfig* env = loaded.config.environment(a.positional[0]);
  if (env == nullptr) {
    return usage_error(io, "haproxy-config", "no environment '" + a.positional[0] + "' in " + path);
  }
  if (env->backend.type != "haproxy") {
    return usage_error(io, "haproxy-config",
                       "environment '" + env->name + "' does not use the haproxy backend");
  }
  auto setting = [&](const std::string& name) {
    const core::ConfigNode* n = env->backend.settings.find(name);
    return n != nullptr ? n->scalar : std::string();
  };
  adapters::haproxy::SnippetOptions o;
  o.environment = env->name;
  o.socket = setting("socket");
  o.map = setting("map");
  o.key = setting("key").empty() ? env->name : setting("key");
  if (auto f = a.option("--frontend")) o.frontend = *f;
  if (auto p = a.option("--page-server")) o.page_server = *p;
  if (auto c = a.option("--bypass-cidr")) o.bypass_cidrs = split_commas(*c);
  if (!a.flag("--no-secret"))
    o.bypass_secret = a.option("--bypass-secret").value_or(random_secret());
  for (const auto& token : o.bypass_cidrs) {
    if (!adapters::haproxy::safe_token(token)) {
      return usage_error(io, "haproxy-config", "'" + token + "' is not a CIDR");
    }
  }
  if (!o.bypass_secret.empty() && !adapters::haproxy::safe_token(o.bypass_secret)) {
    return usage_error(io, "haproxy-config", "the secret must not contain spaces or quotes");
  }
  io.out << adapters::haproxy::haproxy_snippet(o);
  return kExitOk;
}

int cmd_nginx_config(const Args& global, const Args& a, CliIo& io) {
  adapters::LoadedConfig loaded;
  const std::string path = config_path(global, io);
  if (!load_config(path, io, loaded)) return kExitConfig;
  const core::EnvironmentConfig* env = loaded.config.environment(a.positional[0]);
  if (env == nullptr) {
    return usage_error(io, "nginx-config", "no environment '" + a.positional[0] + "' in " + path);
  }
  if (env->backend.type != "nginx") {
    return usage_error(io, "nginx-config",
                       "environment '" + env->name + "' does not use the nginx backend");
  }
  auto backend_setting = [&](const std::string& name) {
    const core::ConfigNode* n = env->backend.settings.find(name);
    return n != nullptr ? n->scalar : std::string();
  };
  adapters::nginx::SnippetOptions o;
  o.environment = env->name;
  o.state_file = backend_setting("state_file");
  o.page_dir = backend_setting("page_dir");
  if (!backend_setting("assets_prefix").empty()) {
    o.assets_prefix = backend_setting("assets_prefix");
  }
  if (auto r = core::parse_duration(backend_setting("retry_after"))) {
    o.retry_after_seconds = static_cast<int>(std::chrono::ceil<std::chrono::seconds>(*r).count());
  }
  for (const auto& [ext, type] : page::known_content_types()) o.asset_types.emplace_back(ext, type);
  if (!o.page_dir.empty() && a.option("--page-server")) {
    return usage_error(io, "nginx-config",
                       "environment '" + env->name +
                           "' has page_dir: nginx serves the page from "
                           "files there, and --page-server does not apply");
  }
  if (auto p = a.option("--page-server")) o.page_server = *p;
  if (auto c = a.option("--bypass-cidr")) o.bypass_cidrs = split_commas(*c);
  if (auto e = a.option("--exempt")) o.exempt = split_commas(*e);
  if (auto h = a.option("--health-path")) o.health_path = *h;
  if (!a.flag("--no-secret"))
    o.bypass_secret = a.option("--bypass-secret").value_or(random_secret());
  std::vector<std::string> tokens = o.bypass_cidrs;
  tokens.insert(tokens.end(), o.exempt.begin(), o.exempt.end());
  tokens.push_back(o.page_server);
  tokens.push_back(o.health_path);
  if (!o.bypass_secret.empty()) tokens.push_back(o.bypass_secret);
  for (const auto& token : tokens) {
    if (!adapters::nginx::safe_token(token)) {
      return usage_error(io, "nginx-config",
                         "'" + token +
                             "' cannot go into nginx.conf (spaces, quotes, ';', braces, "
                             "'$', '#' and '\\' are not allowed)");
    }
  }
  const std::string part = a.option("--part").value_or("");
  if (part == "http") {
    io.out << adapters::nginx::nginx_http_part(o);
  } else if (part == "server") {
    io.out << adapters::nginx::nginx_server_part(o);
  } else if (part.empty()) {
    io.out << adapters::nginx::nginx_snippet(o);
  } else {
    return usage_error(io, "nginx-config", "--part is http or server, not '" + part + "'");
  }
  return kExitOk;
}

int cmd_dynamodb_table(const Args&, const Args& a, CliIo& io) {
  io.out << boost::json::serialize(adapters::dynamodb_table_definition(a.positional[0])) << "\n";
  return kExitOk;
}

// Verifies every SNS message of `text` (each record of a Lambda event on its own) as the
// endpoint does, with the sns-verify options of `a` (--certs, --offline, --ca, --topics,
// --at; `default_topics` when there is no --topics). Returns the messages, or the first
// refusal ("Records[1]: ...").
core::Result<std::vector<core::SnsMessage>> verify_sns_input(
    const std::string& text, const Args& a, CliIo& io,
    const std::vector<std::string>& default_topics) {
  auto messages = core::parse_sns_messages(strip_http_envelope(text));
  if (!messages) return messages.error();
  adapters::sns::VerifyOptions o;
  o.allowed_topics = default_topics;
  if (auto topics = a.option("--topics")) o.allowed_topics = split_commas(*topics);
  std::optional<core::Time> at;
  if (auto t = a.option("--at")) {
    at = core::parse_iso8601(*t);
    if (!at) return core::Error::invalid_input("--at '" + *t + "' is not a UTC time");
  }
  const bool offline = a.flag("--offline");
  if (offline && !a.option("--certs"))
    return core::Error::invalid_input("--offline needs --certs DIR");
  std::unique_ptr<adapters::sns::CertSource> certs;
  if (offline) {
    certs = std::make_unique<adapters::sns::DirectoryCertSource>(*a.option("--certs"));
  } else {
    certs = std::make_unique<adapters::sns::HttpsCertSource>(
        a.option("--certs"), a.option("--ca").value_or(""),
        io.getenv("AWS_ENDPOINT_URL_SNS").value_or(""));
  }
  for (std::size_t i = 0; i < messages->size(); ++i) {
    const auto& m = (*messages)[i];
    if (offline && !at) {
      // Offline, a saved message is judged at the time it says it was sent (the certificate
      // may have expired since); the Timestamp window is not checked.
      auto sent = core::parse_iso8601(m.timestamp);
      if (!sent) return core::Error::invalid_input("Timestamp '" + m.timestamp + "' is not a time");
      o.at = *sent;
      o.now.reset();
    } else {
      o.at = at.value_or(adapters::SystemClock().now());
      o.now = o.at;  // a live message: its Timestamp must be recent, not in the future
    }
    if (auto st = adapters::sns::verify_sns(m, *certs, o); !st) {
      return messages->size() == 1 ? st.error()
                                   : st.error().with_context("Records[" + std::to_string(i) + "]");
    }
  }
  return messages;
}

int cmd_sns_verify(const Args&, const Args& a, CliIo& io) {
  const auto text = read_input("sns-verify", a.positional[0], io);
  if (!text) return kExitBadInput;
  auto verdict = verify_sns_input(*text, a, io);
  if (verdict) {
    io.out << "valid\n";
    return kExitOk;
  }
  io.out << "invalid: " << verdict.error().message << "\n";
  return kExitFailed;
}

int cmd_store(const Args& global, const Args& a, CliIo& io) {
  if (a.positional[0] != "migrate") {
    return usage_error(io, "store", "unknown store command '" + a.positional[0] + "' (migrate)");
  }
  Runtime rt;  // opening the store creates or migrates its schema
  if (auto code = make_runtime(global, io, core::LogLevel::kWarn, rt)) return *code;
  const core::StoreConfig& c = rt.loaded.config.store;
  if (auto* pg = dynamic_cast<adapters::PostgresStore*>(rt.store.get())) {
    auto v = pg->schema_version();
    if (!v) {
      io.err << "intermission store migrate: " << v.error().message << "\n";
      return kExitFailed;
    }
    io.out << "postgresql: schema at version " << *v << "\n";
  } else if (c.type == "sqlite") {
    io.out << "sqlite " << (c.path.empty() ? adapters::kDefaultSqlitePath : c.path)
           << ": schema ready\n";
  } else {
    io.out << c.type << ": nothing to migrate (the table is created with `dynamodb-table` or the "
           << "CloudFormation stack)\n";
  }
  return kExitOk;
}

int cmd_tick(const Args& global, const Args& a, CliIo& io) {
  Runtime rt;
  if (auto code = make_runtime(global, io, core::LogLevel::kInfo, rt)) return *code;
  std::vector<std::string> names;
  if (!a.positional.empty()) {
    names.push_back(a.positional[0]);
  } else {
    for (const auto& [n, e] : rt.loaded.config.environments) names.push_back(n);
  }
  auto controller = rt.controller();
  int code = kExitOk;
  for (const auto& n : names) {
    auto o = controller.tick(n, a.flag("--dry-run"));
    if (!o) {
      code = report_failure(io, "tick", o.error());
      continue;  // one broken environment must not stop the others' expiries
    }
    io.out << describe_outcome(*o, a.flag("--dry-run")) << "\n";
  }
  return code;
}

}  // namespace

int run_cli(const std::vector<std::string>& args, CliIo& io) {
  try {
    // Global options come before the command.
    std::size_t i = 0;
    std::vector<std::string> global_argv;
    while (i < args.size() && args[i].rfind("--", 0) == 0) {
      if (args[i] == "--help" || args[i] == "-h") {
        io.out << kMainHelp;
        return kExitOk;
      }
      global_argv.push_back(args[i]);
      if (args[i].find('=') == std::string::npos && i + 1 < args.size()) {
        global_argv.push_back(args[++i]);
      }
      ++i;
    }
    auto global = parse_args(global_argv, {{"--config", "--log-level"}, {}, 0, 0});
    if (!global) {
      io.err << "intermission: " << global.error().message << "\n" << kMainHelp;
      return kExitUsage;
    }
    if (i == args.size()) {
      io.err << kMainHelp;
      return kExitUsage;
    }
    const std::string command = args[i];
    std::vector<std::string> rest(args.begin() + static_cast<long>(i) + 1, args.end());
    if (command == "help" || command == "--help") {
      if (!rest.empty() && command_help().contains(rest[0])) {
        io.out << command_help().at(rest[0]);
      } else {
        io.out << kMainHelp;
      }
      return kExitOk;
    }
    for (const auto& r : rest) {
      if (r == "--help" || r == "-h") {
        const auto it = command_help().find(command);
        io.out << (it != command_help().end() ? it->second : kMainHelp);
        return kExitOk;
      }
    }
    // Options allowed after the command too, for convenience: --config, --log-level.
    const std::set<std::string> global_options = {"--config", "--log-level"};
    auto spec_with_globals = [&](ArgSpec spec) {
      spec.options.insert(global_options.begin(), global_options.end());
      return spec;
    };
    struct Command {
      ArgSpec spec;
      std::function<int(const Args&, const Args&)> run;
    };
    const std::map<std::string, Command> commands = {
        {"on",
         {spec_with_globals({{"--reason", "--for", "--until", "--who"}, {}, 1, 1}),
          [&](const Args& g, const Args& a) {
            return cmd_operator(g, a, io, core::OperatorAction::kOn);
          }}},
        {"off",
         {spec_with_globals({{"--reason", "--for", "--until", "--who"}, {}, 1, 1}),
          [&](const Args& g, const Args& a) {
            return cmd_operator(g, a, io, core::OperatorAction::kOff);
          }}},
        {"schedule",
         {spec_with_globals(
              {{"--at", "--for", "--until", "--reason", "--who", "--cancel", "--change"},
               {"--list", "--json"},
               1,
               1}),
          [&](const Args& g, const Args& a) { return cmd_schedule(g, a, io); }}},
        {"status",
         {spec_with_globals({{}, {"--json", "--no-observe"}, 0, 1}),
          [&](const Args& g, const Args& a) { return cmd_status(g, a, io); }}},
        {"handle",
         {spec_with_globals({{"--certs", "--ca", "--topics", "--at"},
                             {"--dry-run", "--json", "--verify", "--offline"},
                             0,
                             1}),
          [&](const Args& g, const Args& a) { return cmd_handle(g, a, io); }}},
        {"tick",
         {spec_with_globals({{}, {"--dry-run"}, 0, 1}),
          [&](const Args& g, const Args& a) { return cmd_tick(g, a, io); }}},
        {"lease",
         {spec_with_globals({{"--who", "--reason"}, {}, 2, 2}),
          [&](const Args& g, const Args& a) { return cmd_lease(g, a, io); }}},
        {"haproxy-config",
         {spec_with_globals({{"--frontend", "--page-server", "--bypass-cidr", "--bypass-secret"},
                             {"--no-secret"},
                             1,
                             1}),
          [&](const Args& g, const Args& a) { return cmd_haproxy_config(g, a, io); }}},
        {"nginx-config",
         {spec_with_globals({{"--page-server", "--bypass-cidr", "--bypass-secret", "--exempt",
                              "--health-path", "--part"},
                             {"--no-secret"},
                             1,
                             1}),
          [&](const Args& g, const Args& a) { return cmd_nginx_config(g, a, io); }}},
        {"sns-verify",
         {spec_with_globals({{"--certs", "--ca", "--topics", "--at"}, {"--offline"}, 1, 1}),
          [&](const Args& g, const Args& a) { return cmd_sns_verify(g, a, io); }}},
        {"store",
         {spec_with_globals({{}, {}, 1, 1}),
          [&](const Args& g, const Args& a) { return cmd_store(g, a, io); }}},
        {"dynamodb-table",
         {spec_with_globals({{}, {}, 1, 1}),
          [&](const Args& g, const Args& a) { return cmd_dynamodb_table(g, a, io); }}},
        {"serve",
         {spec_with_globals({{}, {}, 0, 0}),
          [&](const Args& g, const Args& a) { return run_serve(g, a, io); }}},
        {"lambda",
         {spec_with_globals({{}, {}, 0, 0}),
          [&](const Args& g, const Args& a) { return run_lambda(g, a, io); }}},
        {"page",
         {page_arg_spec(),
          [&](const Args& g, const Args& a) {
            // Without --environment the page needs none of this binary's libraries: the small
            // intermission-page serves it, starting at a third of the memory.
            if (!a.option("--environment") && io.exec_page) io.exec_page(args);
            return run_page(g, a, io, open_page_ledger);
          }}},
        {"check-config",
         {spec_with_globals({{}, {}, 0, 0}),
          [&](const Args& g, const Args& a) { return cmd_check_config(g, a, io); }}},
    };
    const auto it = commands.find(command);
    if (it == commands.end()) {
      io.err << "intermission: unknown command '" << command << "'\n\n" << kMainHelp;
      return kExitUsage;
    }
    auto parsed = parse_args(rest, it->second.spec);
    if (!parsed) return usage_error(io, command, parsed.error().message);
    Args merged_global = *global;
    for (const auto& name : global_options) {
      if (auto v = parsed->option(name)) merged_global.options[name] = *v;
    }
    return it->second.run(merged_global, *parsed);
  } catch (const std::exception& e) {
    io.err << "intermission: internal error: " << e.what() << "\n";
    return kExitFailed;
  }
}

}  // namespace intermission::app
