// The `intermission` binary: only wiring.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "app/cli.h"
#include "app/page_command.h"

int main(int argc, char** argv) {
  intermission::app::CliIo io{std::cin, std::cout, std::cerr,
                              [](const std::string& name) -> std::optional<std::string> {
                                const char* v = std::getenv(name.c_str());
                                if (v == nullptr) return std::nullopt;
                                return std::string(v);
                              },
                              intermission::app::exec_page_binary};
  std::vector<std::string> args(argv + 1, argv + argc);
  // In the Lambda zip the binary is `bootstrap`, started with no arguments.
  const std::string name = argv[0];
  if (args.empty() && name.size() >= 9 && name.substr(name.size() - 9) == "bootstrap") {
    args = {"lambda"};
  }
  return intermission::app::run_cli(args, io);
}
