// Randomness in the core comes in through this interface, as time comes in through Clock:
// production uses a seeded engine, tests a fixed seed, so every run of a test is the same.
#pragma once

#include <cstdint>

namespace intermission::core {

class Random {
 public:
  virtual ~Random() = default;
  // A uniformly distributed 64-bit value. Implementations need not be thread-safe; each
  // controller uses its own.
  virtual std::uint64_t next() = 0;
};

}  // namespace intermission::core
