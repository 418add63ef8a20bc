#!/usr/bin/env bash
# Installs the Debian 12 packages intermission needs to build and test, if any is missing.
# Needs root, or sudo. Does nothing (and needs neither) when everything is present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libboost1.81-dev libboost-json1.81-dev
  libcurl4-openssl-dev libpugixml-dev libsqlite3-dev libyaml-cpp-dev libssl-dev libpq-dev
  libgtest-dev libgmock-dev
  python3 haproxy nginx-light postgresql curl openssl
  chromium fonts-dejavu-core
  python3-botocore awscli python3-yaml
  patchelf zip unzip prometheus systemd
  clang-14 libclang-rt-14-dev
  strace libfaketime python3-pyflakes
)

# Kubernetes tests drive the fake API server with kubectl and the official Python client.
# Debian's kubectl (kubernetes-client) conflicts on /usr/bin/kubectl with Google's package
# "kubectl": install it only when no kubectl is present; the tests use whichever is there.
packages+=(python3-kubernetes)
command -v kubectl >/dev/null || packages+=(kubernetes-client)

# Node.js and npm run the DynamoDB emulator in tests; Debian's if none is installed.
command -v npm >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# PostgreSQL's server refuses to run as root: the store tests run it as this unprivileged user.
need_user=
id intermission-test >/dev/null 2>&1 || need_user=1
[[ ${#missing[@]} -eq 0 && -z $need_user ]] && exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "error: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
  fi
fi
if [[ -n $need_user ]]; then
  "${sudo[@]}" useradd --system --no-create-home --shell /usr/sbin/nologin intermission-test
fi
