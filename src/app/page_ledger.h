// The ledger of `intermission page --environment`: the config file, the store (and AWS for
// DynamoDB). Only in the full binary; intermission-page has none of it.
#pragma once

#include "app/page_command.h"

namespace intermission::app {

std::variant<PageLedger, int> open_page_ledger(const Args& global, const std::string& name,
                                               CliIo& io, const core::Clock& clock,
                                               core::Logger& log);

}  // namespace intermission::app
