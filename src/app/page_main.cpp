// The `intermission-page` binary: the page server alone (see app/page_command.h). Only wiring.
#include <iostream>
#include <string>
#include <vector>

#include "app/page_command.h"

int main(int argc, char** argv) {
  intermission::app::CliIo io{std::cin, std::cout, std::cerr,
                              intermission::app::process_env,
                              {}};  // this is the page binary: nothing to exec
  return intermission::app::run_page_main(std::vector<std::string>(argv + 1, argv + argc), io);
}
