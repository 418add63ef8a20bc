// `intermission page`: runs the maintenance page server until SIGINT or SIGTERM. Also the
// whole of the small `intermission-page` binary, which links none of the store, AWS, curl or
// OpenSSL code: `intermission page` without --environment runs it in its own place (exec), so
// the page server starts at a fraction of the memory (bench/RESULTS.md).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "app/args.h"
#include "app/cli.h"
#include "core/time.h"
#include "core/config.h"
#include "core/log.h"
#include "core/store.h"

namespace intermission::app {

// The options `page` accepts (see its --help).
ArgSpec page_arg_spec();

// What --environment adds to the page: the environment's settings and its ledger, read every
// second for the reason and the expected end.
struct PageLedger {
  std::shared_ptr<void> owner;  // keeps the loaded config, the AWS context and the store alive
  const core::EnvironmentConfig* env = nullptr;
  core::Store* store = nullptr;
};

// Opens environment `name`'s ledger (the config file, the store), or says why not on io.err
// and gives the exit code. The full binary's is open_page_ledger (page_ledger.h).
using PageLedgerOpener = std::function<std::variant<PageLedger, int>(
    const Args& global, const std::string& name, CliIo& io, const core::Clock& clock,
    core::Logger& log)>;

// `open_ledger` empty: --environment is refused (intermission-page).
int run_page(const Args& global, const Args& args, CliIo& io, const PageLedgerOpener& open_ledger);

// intermission-page's command line: the words of `intermission [--log-level L] page [options]`
// after the program name (`page` itself optional).
int run_page_main(const std::vector<std::string>& args, CliIo& io);

// Replaces this process with intermission-page from the directory of this binary, given
// `args` (this binary's arguments after its name). Returns only when that fails (no such
// file): the caller then serves the page itself.
void exec_page_binary(const std::vector<std::string>& args);

}  // namespace intermission::app
