// A stand-in kube::Api until the full client (kube/client.h: exec plugins, client
// certificates, in-cluster service account, retries) is merged: a kubeconfig's server, its
// certificate-authority file and a bearer token, over the AWS adapters' libcurl HTTP client.
// Not thread-safe: one per thread.
#pragma once

#include <memory>
#include <string>

#include "adapters/kube/api.h"
#include "core/result.h"

namespace intermission::adapters::kube {

// The cluster `context` (empty: current-context) of the kubeconfig file `path` (empty:
// $KUBECONFIG, else ~/.kube/config) names; only `token` users and `certificate-authority`
// files are understood, anything else is a config error naming the field.
core::Result<std::unique_ptr<Api>> open_minimal(const std::string& path,
                                                const std::string& context);

}  // namespace intermission::adapters::kube
