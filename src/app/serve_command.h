// `intermission serve`: the long-running daemon (SNS HTTP endpoint, webhook, operator API,
// status page, metrics, periodic tick).
#pragma once

#include "app/args.h"
#include "app/cli.h"

namespace intermission::app {

int run_serve(const Args& global, const Args& args, CliIo& io);

}  // namespace intermission::app
