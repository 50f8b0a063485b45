#!/bin/sh
# Installs the Debian 12 packages Sluice needs to build and test (file: CPack's
# dpkg-shlibdeps step of `make deb`). Idempotent:
# calls apt-get only when a package is missing.
set -eu
PKGS="build-essential cmake pkg-config liburing-dev libxxhash-dev libzstd-dev
libprotobuf-c-dev protobuf-c-compiler libinih-dev libjansson-dev
clang libclang-rt-14-dev libfuse3-dev fuse3 libhttp-parser-dev libnghttp2-dev libssl-dev libcbor-dev
libsystemd-dev libcurl4-openssl-dev libzookeeper-mt-dev file"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
