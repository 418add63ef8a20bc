// `intermission lambda`: the AWS Lambda custom runtime (the zip's `bootstrap`). The loop is
// next -> handle -> response or error, as awslabs/aws-lambda-cpp's run_handler().
#pragma once

#include <functional>
#include <string>

#include "app/args.h"
#include "app/cli.h"
#include "core/controller.h"
#include "core/log.h"
#include "core/store.h"

namespace intermission::app {

// What one invocation answers.
struct InvocationResult {
  bool ok = true;
  std::string body;        // the response JSON when ok
  std::string error_type;  // when not ok: Lambda retries the event
  std::string error_message;
};

// Handles one event. An event that cannot be parsed is logged and acknowledged (no retry
// storm); a store or backend failure is an error so that SNS/Lambda retry it, unless the
// invocation's deadline stopped it (`deadline_passed`): then `give_back` (if set) makes sure
// no switching lease of ours is left held, the rest is left to the next invocation or tick,
// and the event is acknowledged as "deferred" with an "error" saying what stopped and what
// became of the lease (aws-behaviour.md §14).
InvocationResult handle_invocation(core::Controller& controller, const std::string& event,
                                   core::Logger& log, const std::function<bool()>& deadline_passed,
                                   const std::function<std::string()>& give_back = {});

// Gives back every switching lease `holder` still holds in `store` (the controller gives its
// lease back when a switch fails; this makes sure, after the deadline stopped one). Returns
// what it found, for the log and the response: "gave the switching lease of prod back", "held
// no switching lease", or what could not be given back and when it runs out.
std::string give_back_leases(core::Store& store, const core::Config& config,
                             const std::string& holder, core::Time now);

// The errorType Lambda reports for an error: "Intermission." and the code in PascalCase
// ("Intermission.Unavailable", "Intermission.Throttled", ...).
std::string lambda_error_type(core::ErrorCode code);

int run_lambda(const Args& global, const Args& args, CliIo& io);

}  // namespace intermission::app
