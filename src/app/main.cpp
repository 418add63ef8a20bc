// The `intermission` binary: only wiring.
#include <iostream>
#include <string>
#include <vector>

#include "app/cli.h"
#include "app/page_command.h"

int main(int argc, char** argv) {
  intermission::app::CliIo io{std::cin, std::cout, std::cerr,
                              intermission::app::process_env,
                              intermission::app::exec_page_binary};
  std::vector<std::string> args(argv + 1, argv + argc);
  // In the Lambda zip the binary is `bootstrap`, started with no arguments.
  const std::string name = argv[0];
  if (args.empty() && name.size() >= 9 && name.substr(name.size() - 9) == "bootstrap") {
    args = {"lambda"};
  }
  return intermission::app::run_cli(args, io);
}
