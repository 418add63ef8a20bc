#include "app/page_command.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <climits>
#include <fstream>
#include <functional>
#include <iostream>
#include <thread>
#include <sstream>

#include "adapters/log/json_logger.h"
#include "core/ledger.h"
#include "page/assets.h"
#include "page/server.h"

namespace intermission::app {

namespace asio = boost::asio;

ArgSpec page_arg_spec() {
  return {{"--listen", "--page", "--page-dir", "--default-language", "--assets", "--assets-prefix", "--health", "--reason", "--until",
           "--retry-after", "--environment", "--port-file", "--threads", "--idle-timeout",
           "--write-timeout", "--max-connections", "--config", "--log-level"},
          {},
          0,
          0};
}

namespace {

// Descriptors kept for what is not a client connection (besides 4 per thread: its epoll,
// eventfd, timerfd and listener): standard streams, the signal pipe, the store and the AWS
// connections of --environment, and an accept() that is closed at once over the cap.
constexpr std::size_t kFdReserve = 64;

int fail(CliIo& io, const std::string& message, int code) {
  io.err << "intermission page: " << message << "\n";
  return code;
}

// Rebuilds the response set every second (the Date header), and takes the reason and the
// expected end from the environment's ledger when one is named.
struct Refresher {
  asio::steady_timer timer;
  page::PageOptions base;
  std::atomic<std::shared_ptr<const page::ResponseSet>>& current;
  adapters::SystemClock& clock;
  const core::EnvironmentConfig* env = nullptr;
  core::Store* store = nullptr;
  core::Logger& log;
  std::string last_error;

  void refresh() {
    page::PageOptions o = base;
    if (env != nullptr && store != nullptr) {
      auto state = store->load(env->name);
      if (state) {
        const core::Decision d = core::decide(*state, *env, clock.now());
        if (!d.page_message.empty()) o.reason = d.page_message;
        if (d.expected_end) o.until = d.expected_end;
        last_error.clear();
      } else if (state.error().message != last_error) {
        last_error = state.error().message;  // keep serving the last page; say so once
        log.warn("page: cannot read the ledger", {{"error", last_error}});
      }
    }
    current.store(std::make_shared<const page::ResponseSet>(o, clock.now()));
  }
  void schedule() {
    timer.expires_after(std::chrono::seconds(1));
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      refresh();
      schedule();
    });
  }
};

// The page of --page (one file) or --page-dir (a file per language) into `o`; an error message
// when it cannot be read.
std::string load_page(const Args& a, page::PageOptions& o) {
  if (auto p = a.option("--page")) {
    auto text = page::read_file(*p);
    if (!text) return text.error().message;
    o.html_template = std::move(*text);
  }
  if (auto dir = a.option("--page-dir")) {
    auto folder = page::load_page_dir(*dir, a.option("--default-language").value_or("en"));
    if (!folder) return folder.error().message;
    o.html_template = std::move(folder->html_template);
    o.default_reason = std::move(folder->default_reason);
    o.translations = std::move(folder->translations);
    o.language = a.option("--default-language").value_or("en");
  }
  return {};
}

}  // namespace

int run_page(const Args& global, const Args& a, CliIo& io, const PageLedgerOpener& open_ledger) {
  adapters::SystemClock clock;
  core::LogLevel level = core::LogLevel::kInfo;
  if (auto l = global.option("--log-level")) {
    auto parsed = adapters::parse_log_level(*l);
    if (!parsed) return fail(io, "--log-level must be debug, info, warn or error", kExitUsage);
    level = *parsed;
  }
  adapters::JsonLogger log(stderr, clock, level);

  page::PageOptions options;
  if (a.option("--page") && a.option("--page-dir")) {
    return fail(io, "--page and --page-dir exclude each other", kExitUsage);
  }
  if (a.option("--default-language") && !a.option("--page-dir")) {
    return fail(io, "--default-language needs --page-dir", kExitUsage);
  }
  if (auto problem = load_page(a, options); !problem.empty()) {
    return fail(io, problem, kExitConfig);
  }
  if (auto prefix = a.option("--assets-prefix")) {
    if (prefix->size() < 2 || prefix->front() != '/' || prefix->back() != '/') {
      return fail(io, "--assets-prefix must start and end with '/'", kExitUsage);
    }
    options.assets_prefix = *prefix;
  }
  if (auto dir = a.option("--assets")) {
    auto assets = page::load_assets(*dir);
    if (!assets) return fail(io, assets.error().message, kExitConfig);
    options.assets = std::move(*assets);
  }
  if (auto h = a.option("--health")) {
    if (h->empty() || h->front() != '/') return fail(io, "--health must start with '/'", kExitUsage);
    options.health_path = *h;
  }
  options.reason = a.option("--reason").value_or("");
  if (auto u = a.option("--until")) {
    options.until = core::parse_iso8601(*u);
    if (!options.until) return fail(io, "--until must be a UTC time like 2026-01-31T18:00:00Z", kExitUsage);
  }
  if (auto r = a.option("--retry-after")) {
    auto d = core::parse_duration(*r);
    if (!d) return fail(io, "--retry-after must be a duration (90s, 5m)", kExitUsage);
    options.default_retry_after = *d;
  }
  auto endpoints = page::parse_listen(a.option("--listen").value_or("127.0.0.1:8081"));
  if (!endpoints) return fail(io, endpoints.error().message, kExitUsage);

  // Optional: follow an environment's ledger for the reason and the expected end.
  PageLedger ledger;
  if (auto name = a.option("--environment")) {
    if (!open_ledger) {
      return fail(io, "--environment needs the store: run `intermission page --environment`",
                  kExitUsage);
    }
    auto opened = open_ledger(global, *name, io, clock, log);
    if (const int* code = std::get_if<int>(&opened)) return *code;
    ledger = std::move(std::get<PageLedger>(opened));
  }

  int threads = 1;
  if (auto t = a.option("--threads")) {
    try {
      threads = std::stoi(*t);
    } catch (const std::exception&) {
      threads = 0;
    }
    if (threads < 1 || threads > 256) return fail(io, "--threads must be 1 to 256", kExitUsage);
  }
  // One io_context and one server per thread, sharing the port (SO_REUSEPORT): the kernel
  // spreads connections, and nothing but the current response set is shared.
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  for (int i = 0; i < threads; ++i) contexts.push_back(std::make_unique<asio::io_context>(1));
  asio::io_context& ctx = *contexts.front();
  std::atomic<std::shared_ptr<const page::ResponseSet>> current;
  Refresher refresher{asio::steady_timer(ctx), options, current, clock, ledger.env, ledger.store,
                      log, {}};
  refresher.refresh();
  page::ServerLimits limits;
  limits.reuse_port = threads > 1;
  for (const auto& [flag, target] : {std::pair{"--idle-timeout", &limits.idle_timeout},
                                     std::pair{"--write-timeout", &limits.write_timeout}}) {
    if (auto v = a.option(flag)) {
      auto d = core::parse_duration(*v);
      if (!d || *d < std::chrono::seconds(1)) return fail(io, std::string(flag) + " must be a duration of 1s or more", kExitUsage);
      *target = std::chrono::duration_cast<std::chrono::seconds>(*d);
    }
  }
  if (auto m = a.option("--max-connections")) {
    try {
      limits.max_connections = std::stoul(*m);
    } catch (const std::exception&) {
      limits.max_connections = 0;
    }
    if (limits.max_connections == 0) return fail(io, "--max-connections must be a positive number", kExitUsage);
  }
  // One cap for the connections of every thread, below the open-files limit (raised towards
  // what the cap needs): with every descriptor taken, accept() fails and new clients wait in
  // the queue, and the store and the logs fail too.
  const std::size_t reserve = kFdReserve + 4 * static_cast<std::size_t>(threads);
  const std::size_t cap =
      page::connection_cap(page::raise_fd_limit(limits.max_connections + reserve), reserve);
  if (cap < limits.max_connections) {
    if (a.option("--max-connections")) {
      log.warn("--max-connections lowered to fit the open-files limit",
               {{"max_connections", std::to_string(cap)}});
    }
    limits.max_connections = cap;
  }
  auto budget = std::make_shared<page::ConnectionBudget>(limits.max_connections);
  std::vector<std::unique_ptr<page::PageServer>> servers;
  for (auto& c : contexts) {
    servers.push_back(std::make_unique<page::PageServer>(
        *c, limits, [&current] { return current.load(); }, budget));
    // Port 0: the first server picks a port, the others join it.
    const auto where_to = servers.size() == 1 ? *endpoints : servers.front()->endpoints();
    if (auto st = servers.back()->listen(where_to); !st) return fail(io, st.error().message, kExitFailed);
  }
  page::PageServer& server = *servers.front();

  std::string where;
  for (const auto& ep : server.endpoints()) {
    std::ostringstream s;
    s << ep;
    where += (where.empty() ? "" : ",") + s.str();
  }
  if (auto pf = a.option("--port-file")) {
    std::ofstream(*pf) << server.endpoints().front().port() << "\n";
  }
  log.info("page server listening",
           {{"listen", where}, {"max_connections", std::to_string(limits.max_connections)}});
  refresher.schedule();
  // SIGHUP: read the page and the assets again (open connections stay open and get the new
  // page with their next request). SIGINT/SIGTERM: stop accepting on every thread, close the
  // connections that are between requests, let requests in progress finish (up to kDrain),
  // then exit.
  constexpr auto kDrain = std::chrono::seconds(5);
  asio::signal_set signals(ctx, SIGINT, SIGTERM, SIGHUP);
  asio::steady_timer drain(ctx);
  std::chrono::steady_clock::time_point drain_deadline;
  // Lives as long as ctx runs: it re-arms itself until the connections are gone or time is up.
  std::function<void(const boost::system::error_code&)> drain_check =
      [&](const boost::system::error_code&) {
        std::size_t open = 0;
        for (const auto& sv : servers) open += sv->connections();
        if (open == 0 || std::chrono::steady_clock::now() >= drain_deadline) {
          for (auto& c : contexts) c->stop();
          return;
        }
        drain.expires_after(std::chrono::milliseconds(50));
        drain.async_wait(drain_check);
      };
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
          page::PageOptions next = refresher.base;
          std::string problem = load_page(a, next);
          if (auto dir = a.option("--assets"); dir && problem.empty()) {
            auto assets = page::load_assets(*dir);
            if (assets) next.assets = std::move(*assets);
            else problem = assets.error().message;
          }
          if (problem.empty()) {
            refresher.base = std::move(next);
            refresher.refresh();
            log.info("page and assets reloaded");
          } else {
            log.error("reload refused; still serving the previous page", {{"error", problem}});
          }
          signals.async_wait(on_signal);
          return;
        }
        log.info("page server stopping: finishing requests in progress");
        for (auto& sv : servers) sv->stop();  // every thread's, on its own thread
        refresher.timer.cancel();
        drain_deadline = std::chrono::steady_clock::now() + kDrain;
        drain_check({});
      };
  signals.async_wait(on_signal);
  std::vector<std::thread> workers;
  for (std::size_t i = 1; i < contexts.size(); ++i) {
    workers.emplace_back([&c = *contexts[i]] { c.run(); });
  }
  ctx.run();
  for (auto& w : workers) w.join();
  return kExitOk;
}

int run_page_main(const std::vector<std::string>& args, CliIo& io) {
  // The global options of `intermission`, before the command; then `page`, which may be left out.
  std::vector<std::string> global_argv;
  std::size_t i = 0;
  auto global_option = [](const std::string& a) {
    return a == "--log-level" || a == "--config" || a.rfind("--log-level=", 0) == 0 ||
           a.rfind("--config=", 0) == 0;
  };
  while (i < args.size() && global_option(args[i])) {
    global_argv.push_back(args[i]);
    if (args[i].find('=') == std::string::npos && i + 1 < args.size()) {
      global_argv.push_back(args[++i]);
    }
    ++i;
  }
  if (i < args.size() && args[i] == "page") ++i;
  const std::vector<std::string> rest(args.begin() + static_cast<long>(i), args.end());
  for (const auto& r : rest) {
    if (r == "--help" || r == "-h") {
      io.out << "Usage: intermission-page [--log-level L] [page] [options]\n"
                "The page server of `intermission page` on its own: the same options but "
                "--environment\n(see `intermission page --help`).\n";
      return kExitOk;
    }
  }
  auto global = parse_args(global_argv, {{"--config", "--log-level"}, {}, 0, 0});
  auto parsed = parse_args(rest, page_arg_spec());
  if (!global || !parsed) {
    io.err << "intermission-page: " << (!global ? global.error() : parsed.error()).message << "\n";
    return kExitUsage;
  }
  for (const char* name : {"--config", "--log-level"}) {
    if (auto v = parsed->option(name)) global->options[name] = *v;
  }
  return run_page(*global, *parsed, io, nullptr);
}

void exec_page_binary(const std::vector<std::string>& args) {
  std::string self(PATH_MAX, '\0');
  const ssize_t n = readlink("/proc/self/exe", self.data(), self.size());
  if (n <= 0 || static_cast<std::size_t>(n) >= self.size()) return;
  self.resize(static_cast<std::size_t>(n));
  const std::string path = self.substr(0, self.rfind('/') + 1) + "intermission-page";
  if (access(path.c_str(), X_OK) != 0) return;
  std::vector<char*> argv;
  std::string name = "intermission-page";
  argv.push_back(name.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::cout.flush();
  std::cerr.flush();
  execv(path.c_str(), argv.data());  // returns only on failure
}

}  // namespace intermission::app
