#!/bin/sh
# scripts/deps.sh - installs the Debian packages that hub needs and that are missing.
# Quick when everything is there (one dpkg-query); `make run` and `make test` call it.
set -eu

PACKAGES="
build-essential pkg-config ca-certificates
libuv1-dev node-llhttp libwebsockets-dev libwebsockets-evlib-uv
libpq-dev postgresql postgresql-contrib libhiredis-dev redis-server pgbouncer
libssl-dev libjsmn-dev libcmocka-dev
python3 procps wrk haproxy
"
# PostgreSQL failover (tests/support/patroni.py, make chaos, make cluster PATRONI=1):
# Patroni with etcd as its store; their Debian services stay off (installing enables them).
PACKAGES="$PACKAGES patroni etcd-server"
# Browser test and fuzzing: Debian's chromium and clang (never a downloaded browser).
PACKAGES="$PACKAGES chromium clang libclang-rt-14-dev"
# The fan-out benchmark's reference (bench/fanout starts a private instance of its own).
PACKAGES="$PACKAGES nginx libnginx-mod-nchan"
# Node.js and npm drive playwright-core; use the machine's if it has them.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES nodejs npm"

# One dpkg-query for every package (a package it does not know is not printed).
installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' $PACKAGES 2>/dev/null |
	awk '$2 == "installed" { print $1 }' || true)
installed=" $(echo $installed) "
missing=""
for p in $PACKAGES; do
	case "$installed" in
	*" $p "*) ;;
	*) missing="$missing $p" ;;
	esac
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
# Installing nginx starts Debian's nginx service on port 80: the benchmark needs only the
# binary and the module, so a service this script brought in is stopped and disabled.
# Likewise etcd-server's etcd (ports 2379/2380) and patroni's service: the tests and make
# cluster start private ones.
for svc in nginx:nginx etcd-server:etcd patroni:patroni; do
	case " $missing " in
	*" ${svc%%:*} "*)
		if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
			$SUDO systemctl disable --now "${svc#*:}" >/dev/null 2>&1 || true
		elif [ -x "/etc/init.d/${svc#*:}" ]; then
			$SUDO "/etc/init.d/${svc#*:}" stop >/dev/null 2>&1 || true
		fi
		;;
	esac
done
