#!/usr/bin/env bash
# Builds the self-contained Lambda zip (provided.al2023, x86_64) from the intermission binary.
#
# The binary becomes `bootstrap` at the zip's root; every shared library it needs, and the
# dynamic loader itself, go to lib/. patchelf points the binary at /var/task/lib's loader and
# sets DT_RPATH (not RUNPATH, which does not apply to the libraries' own dependencies) to
# /var/task/lib, so nothing of the host is used: not its glibc (Debian 12 has 2.36, AL2023
# 2.34), not its shell, not its CA path (aws-facts.md §10).
#
# Usage: package.sh BINARY OUTPUT.zip [CONFIG.yaml]
set -euo pipefail
binary=$1 out=$(realpath -m "$2") config=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/lib"
cp "$binary" "$work/bootstrap"
loader=""
while read -r line; do
  # "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
  if [[ $line =~ \=\>\ (/[^ ]+) ]]; then
    cp -L "${BASH_REMATCH[1]}" "$work/lib/"
  elif [[ $line =~ ^(/[^ ]+ld-linux[^ ]*)\ \( ]]; then
    loader=${BASH_REMATCH[1]}
    cp -L "$loader" "$work/lib/"
  fi
done < <(ldd "$binary")
[[ -n $loader ]] || { echo "package.sh: no dynamic loader found in ldd output" >&2; exit 1; }
patchelf --set-interpreter "/var/task/lib/$(basename "$loader")" --force-rpath \
  --set-rpath /var/task/lib "$work/bootstrap"
strip --strip-unneeded "$work/bootstrap" "$work"/lib/*.so* 2>/dev/null || true
[[ -n $config ]] && cp "$config" "$work/config.yaml"
rm -f "$out"
files=(bootstrap lib)
[[ -n $config ]] && files+=(config.yaml)
(cd "$work" && zip -q -r -X "$out.tmp" "${files[@]}")
mv "$out.tmp" "$out"
echo "$out: $(du -h "$out" | cut -f1), $(ls "$work/lib" | wc -l) libraries"
