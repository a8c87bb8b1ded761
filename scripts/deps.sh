#!/bin/sh
# scripts/deps.sh - installs the Debian packages that hub needs and that are missing.
# Quick when everything is there (one dpkg-query); `make run` and `make test` call it.
set -eu

PACKAGES="
build-essential pkg-config ca-certificates
libuv1-dev node-llhttp libwebsockets-dev libwebsockets-evlib-uv
libpq-dev postgresql postgresql-contrib libhiredis-dev redis-server
libssl-dev libjsmn-dev libcmocka-dev
python3 procps wrk
"
# Browser test and fuzzing: Debian's chromium and clang (never a downloaded browser).
PACKAGES="$PACKAGES chromium clang libclang-rt-14-dev"
# Node.js and npm drive playwright-core; use the machine's if it has them.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES nodejs npm"

missing=""
for p in $PACKAGES; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = "installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# An old or missing package list: update once, then install.
$SUDO apt-get install -y --no-install-recommends $missing >/dev/null 2>&1 || {
	$SUDO apt-get update -qq
	$SUDO apt-get install -y --no-install-recommends $missing
}
