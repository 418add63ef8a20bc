// `intermission page`: runs the maintenance page server until SIGINT or SIGTERM.
#pragma once

#include "app/args.h"
#include "app/cli.h"

namespace intermission::app {

// The options `page` accepts (see its --help).
ArgSpec page_arg_spec();
int run_page(const Args& global, const Args& args, CliIo& io);

}  // namespace intermission::app
