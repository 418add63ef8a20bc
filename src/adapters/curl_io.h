// libcurl's write and header callbacks as every HTTP client of ours uses them (AWS, Kubernetes).
#pragma once

#include <cstddef>
#include <map>
#include <string>

namespace intermission::adapters {

// CURLOPT_WRITEFUNCTION with CURLOPT_WRITEDATA a std::string*: appends the body.
std::size_t curl_append_body(char* data, std::size_t size, std::size_t n, void* body);

// CURLOPT_HEADERFUNCTION with CURLOPT_HEADERDATA a std::map<std::string, std::string>*: header
// names lower-cased, values trimmed; a status line (a new response, after 100 Continue or a
// redirect) starts the map afresh.
std::size_t curl_collect_header(char* data, std::size_t size, std::size_t n, void* headers);

}  // namespace intermission::adapters
