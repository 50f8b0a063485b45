#!/bin/sh
# Installs what the test suite needs beyond the build (make test runs it):
# Debian's awscli and python3-boto3 (clients of the AWS-compatible APIs),
# promtool (package prometheus: lints /metrics), curl, systemd (only for systemd-analyze,
# which checks deploy/sluiced.service; nothing is started) and strace (the system calls of
# a real run against the unit's SystemCallFilter), zookeeper (a real server for the cluster
# tests, started by tests/cluster/zk_harness.c, never as a service), iproute2 and nftables (the
# cluster fault test's hosts are network namespaces on a bridge, its link cuts nft rules in them:
# tests/cluster/netns_harness.c; no rule is loaded outside them), Node.js and npm, Chromium
# (the web console's browser tests), and the test-only npm packages pinned in
# tests/http/package-lock.json (the AWS SDK for JavaScript v3, playwright-core). Idempotent: apt-get and npm run only when something
# is missing or the lock file changed.
set -eu
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PKGS="awscli python3-boto3 prometheus curl systemd strace nodejs npm chromium zookeeper iproute2 nftables"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
# A Node.js that did not come from Debian (the machine's own) is fine too.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    missing="$(echo "$missing" | sed 's/ nodejs//; s/ npm//')"
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ -n "$(echo "$missing" | tr -d ' ')" ]; then
    echo "install-test-deps: installing:$missing" >&2
    # Keep the packages' daemons (prometheus, zookeeper) from starting: tests use their tools only.
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing
    [ $made_policy = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
fi
# npm packages from the lock file, again only when it changed.
cd "$ROOT/tests/http"
stamp=node_modules/.lock-sha
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "install-test-deps: npm ci (tests/http)" >&2
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" >"$stamp"
fi
