// The `intermission` binary: only wiring.
#include <cstdlib>
#include <iostream>

#include "app/cli.h"

int main(int argc, char** argv) {
  intermission::app::CliIo io{std::cin, std::cout, std::cerr,
                              [](const std::string& name) -> std::optional<std::string> {
                                const char* v = std::getenv(name.c_str());
                                if (v == nullptr) return std::nullopt;
                                return std::string(v);
                              }};
  return intermission::app::run_cli({argv + 1, argv + argc}, io);
}
