#include "core/result.h"

namespace intermission::core {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidInput: return "invalid_input";
    case ErrorCode::kConfig: return "config";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kConflict: return "conflict";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kThrottled: return "throttled";
    case ErrorCode::kTimeout: return "timeout";
    case ErrorCode::kPermission: return "permission";
    case ErrorCode::kInternal: return "internal";
    case ErrorCode::kRefused: return "refused";
  }
  return "unknown";
}

}  // namespace intermission::core
