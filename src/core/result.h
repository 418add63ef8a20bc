// Errors as values: every fallible function in core and adapters returns Result<T>.
// Exceptions are used only at the edges (front ends), never to report expected failures.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace intermission::core {

// What kind of failure; callers branch on this, never on message text.
enum class ErrorCode {
  kInvalidInput,  // bad data from outside (an event, a request, a reply); not retryable
  kConfig,        // the configuration is wrong
  kNotFound,      // the thing asked for does not exist
  kConflict,      // a compare-and-set lost a race; re-read and decide again
  kUnavailable,   // a dependency could not be reached or failed; retryable
  kThrottled,     // a dependency asked us to slow down; retryable with backoff
  kTimeout,       // a deadline passed
  kPermission,    // access was refused
  kInternal,      // a bug or an impossible state
  // A command our rules refuse (a window in the past, an operator `until` in the past, text
  // that is not UTF-8): nothing changed; the sender's to correct, never retryable. Unlike
  // kInvalidInput, never a store's or a dependency's failure.
  kRefused,
};

std::string_view to_string(ErrorCode code);

// An error: a code for programs and a message for people. Messages carry context from the
// outermost caller inwards ("store: sqlite: database is locked").
struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  static Error invalid_input(std::string m) { return {ErrorCode::kInvalidInput, std::move(m)}; }
  static Error config(std::string m) { return {ErrorCode::kConfig, std::move(m)}; }
  static Error not_found(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
  static Error conflict(std::string m) { return {ErrorCode::kConflict, std::move(m)}; }
  static Error unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
  static Error throttled(std::string m) { return {ErrorCode::kThrottled, std::move(m)}; }
  static Error timeout(std::string m) { return {ErrorCode::kTimeout, std::move(m)}; }
  static Error permission(std::string m) { return {ErrorCode::kPermission, std::move(m)}; }
  static Error internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }
  static Error refused(std::string m) { return {ErrorCode::kRefused, std::move(m)}; }

  // The same error with "<context>: " put in front of its message.
  [[nodiscard]] Error with_context(std::string_view context) const {
    return {code, std::string(context) + ": " + message};
  }
  // True for failures worth trying again later (the event is not at fault).
  [[nodiscard]] bool retryable() const {
    return code == ErrorCode::kUnavailable || code == ErrorCode::kThrottled ||
           code == ErrorCode::kTimeout || code == ErrorCode::kConflict;
  }
};

// Either a value or an Error. Accessing the wrong alternative is a bug (asserted).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  [[nodiscard]] bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  [[nodiscard]] const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT: implicit

  [[nodiscard]] bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  [[nodiscard]] const Error& error() const {
    assert(failed_);
    return error_;
  }

 private:
  Error error_;
  bool failed_ = false;
};

using Status = Result<void>;

inline Status ok_status() { return {}; }

}  // namespace intermission::core
