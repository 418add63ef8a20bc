// `intermission lambda`: the AWS Lambda custom runtime (the zip's `bootstrap`). The loop is
// next -> handle -> response or error, as awslabs/aws-lambda-cpp's run_handler().
#pragma once

#include <functional>
#include <string>

#include "app/args.h"
#include "app/cli.h"
#include "core/controller.h"
#include "core/log.h"

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
// invocation's deadline stopped a wait (`deadline_passed`): then the rest is left to the next
// invocation or tick and the event is acknowledged.
InvocationResult handle_invocation(core::Controller& controller, const std::string& event,
                                   core::Logger& log, const std::function<bool()>& deadline_passed);

// The errorType Lambda reports for an error: "Intermission." and the code in PascalCase
// ("Intermission.Unavailable", "Intermission.Throttled", ...).
std::string lambda_error_type(core::ErrorCode code);

int run_lambda(const Args& global, const Args& args, CliIo& io);

}  // namespace intermission::app
