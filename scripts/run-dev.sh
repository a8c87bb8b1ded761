#!/bin/bash
# scripts/run-dev.sh - `make run`: a private PostgreSQL (./var/pg, port 54329) and Redis
# (./var/redis, port 63799), role and database `hub`, migrations, the demo channels that
# live in the database (demo-telegram, demo-instagram: `hubctl channel add` with dev secrets
# under ./var/secrets/), the fake WhatsApp, Telegram and Instagram APIs that replies go to
# (tests/support/fakeplat.py on ports 8441-8443 with a private CA in ./var/fakeplat/; they
# report sent, delivered and read back to hubd as the platforms do), a fake OpenAI-compatible
# AI provider (tests/support/fakeai.py on port 8444, appending every request body it gets to
# ./var/fake-ai/requests.jsonl) that demo-telegram's assistant answers through, then
# build/hubd with config/dev.json in the foreground. Ctrl-C stops hubd, the fakes, Redis and PostgreSQL
# (those this script started); a second run reuses ./var/. Works as root (PostgreSQL then
# runs as the `postgres` user) and as a normal user.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
CONFIG=${CONFIG:-config/dev.json}
VAR=$ROOT/var
PGDIR=$VAR/pg
PGDATA=$PGDIR/data
PGPORT=54329
REDIS_DIR=$VAR/redis
REDIS_PORT=63799
PGBIN=/usr/lib/postgresql/15/bin

FAKES_DIR=$VAR/fakeplat
FAKEAI_DIR=$VAR/fake-ai
FAKEAI_PORT=8444
PG_STARTED=0
REDIS_STARTED=0
HUBD_PIDS=
# One hubd per core on one port (http.reuse_port in config/dev.json), sharing events
# through Redis; INSTANCES=N make run chooses.
INSTANCES=${INSTANCES:-$(nproc)}
EXTRA_PIDS=       # make cluster's Redis replica, Sentinels, HAProxy
EXTRA_PIDFILES=   # ... and PgBouncer (it runs as postgres when we are root)
FAKES_PID=
FAKEAI_PID=
SHOP_PID=
SHOP_PORT=8090
SHOP_DIR=$VAR/demo-shop

say() { printf 'run-dev: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# PostgreSQL's programs refuse to run as root: run them as `postgres` then.
as_pg() {
	if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

psql_admin() {
	"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres \
		-d postgres -tAc "$1"
}

# As root, the postgres user must be able to reach ./var/pg: give it traverse (o+x) on the
# ancestors that lack it, and say so.
ensure_pg_can_reach() {
	is_root || return 0
	local d=$1
	while [ "$d" != / ]; do
		if ! runuser -u postgres -- test -x "$d"; then
			say "giving other users traverse permission (o+x) on $d for the postgres user"
			chmod o+x "$d"
		fi
		d=$(dirname "$d")
	done
}

cleanup() {
	local rc=$?
	trap - EXIT
	trap "" INT TERM     # a second Ctrl-C must not cut the clean-up short
	if [ -n "$HUBD_PIDS" ]; then
		say "stopping hubd (pid $HUBD_PIDS)"
		kill -TERM $HUBD_PIDS 2>/dev/null || true
		wait $HUBD_PIDS 2>/dev/null || true
	fi
	if [ -n "$EXTRA_PIDS$EXTRA_PIDFILES" ]; then
		say "stopping HAProxy, PgBouncer, the Redis replica and the Sentinels"
		kill -TERM $EXTRA_PIDS 2>/dev/null || true
		for f in $EXTRA_PIDFILES; do
			[ -s "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true
		done
		wait $EXTRA_PIDS 2>/dev/null || true
	fi
	if [ -n "$FAKES_PID" ] && kill -0 "$FAKES_PID" 2>/dev/null; then
		say "stopping the fake platforms"
		kill -TERM "$FAKES_PID" 2>/dev/null || true
		wait "$FAKES_PID" 2>/dev/null || true
	fi
	if [ -n "$FAKEAI_PID" ] && kill -0 "$FAKEAI_PID" 2>/dev/null; then
		say "stopping the fake AI provider"
		kill -TERM "$FAKEAI_PID" 2>/dev/null || true
		wait "$FAKEAI_PID" 2>/dev/null || true
	fi
	if [ -n "$SHOP_PID" ] && kill -0 "$SHOP_PID" 2>/dev/null; then
		say "stopping the demo shop"
		kill -TERM "$SHOP_PID" 2>/dev/null || true
		wait "$SHOP_PID" 2>/dev/null || true
	fi
	if [ "$REDIS_STARTED" = 1 ]; then
		say "stopping Redis"
		redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
	fi
	if [ "$PG_STARTED" = 1 ]; then
		say "stopping PostgreSQL"
		as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

case $INSTANCES in
''|*[!0-9]*|0) die "INSTANCES must be a number of processes, 1 or more (got '$INSTANCES')" ;;
esac
[ -x "$BUILD/hubd" ] && [ -x "$BUILD/hubctl" ] || die "$BUILD/hubd or hubctl missing: run make all"
[ -x "$PGBIN/postgres" ] || die "$PGBIN/postgres missing: apt-get install postgresql"
command -v redis-server >/dev/null || die "redis-server missing: apt-get install redis-server"

LISTEN=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["http"]["listen"])' "$CONFIG")
HTTP_HOST=${LISTEN%:*}
HTTP_PORT=${LISTEN##*:}

# --- PostgreSQL ---
# make cluster PATRONI=1: three Patroni nodes and etcd (tests/support/patroni.py, ports
# 54331-54333, REST API 8008-8010, under ./var/patroni/, made fresh each run) instead of the
# single server; hubctl (and make run's hubd) get a copy of the config on the multi-host
# URL (make cluster's hubd go through PgBouncer and HAProxy: scripts/cluster.sh).
if [ "${PATRONI:-0}" = 1 ]; then
	[ -x /usr/bin/patroni ] && [ -x /usr/bin/etcd ] ||
		die "patroni or etcd missing: apt-get install patroni etcd-server"
	mkdir -p "$VAR"
	is_root && ensure_pg_can_reach "$VAR"
	rm -f "$VAR/patroni.ready"
	say "starting etcd and three Patroni nodes (PostgreSQL on 54331-54333)"
	/usr/bin/python3 tests/support/patroni.py --dir "$VAR/patroni" \
		--ports 54331,54332,54333 --api-ports 8008,8009,8010 \
		--ready-file "$VAR/patroni.ready" &
	EXTRA_PIDS="$EXTRA_PIDS $!"
	for _ in $(seq 1200); do
		[ -s "$VAR/patroni.ready" ] && break
		kill -0 $! 2>/dev/null || die "the Patroni cluster did not start"
		sleep 0.1
	done
	[ -s "$VAR/patroni.ready" ] || die "the Patroni cluster did not start within 120 s"
	PGPORT=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["leader_port"])' "$VAR/patroni.ready")
	/usr/bin/python3 - "$CONFIG" "$VAR/patroni.json" "$VAR/patroni.ready" <<'EOF'
import json, sys
src, dst, ready = sys.argv[1:]
cfg = json.load(open(src))
cfg["database"]["url"] = json.load(open(ready))["url"]
json.dump(cfg, open(dst, "w"), indent=4)
EOF
	CONFIG=$VAR/patroni.json
else
mkdir -p "$PGDIR"
if is_root; then
	chown postgres:postgres "$PGDIR"
	ensure_pg_can_reach "$PGDIR"
fi
chmod 700 "$PGDIR"
if [ ! -f "$PGDATA/PG_VERSION" ]; then
	say "initdb $PGDATA"
	as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C \
		--no-instructions >"$PGDIR/initdb.log" 2>&1 || {
		cat "$PGDIR/initdb.log" >&2; die "initdb failed"; }
fi
if as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
	say "reusing the running PostgreSQL of $PGDATA (left running at exit)"
else
	say "starting PostgreSQL on 127.0.0.1:$PGPORT"
	as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDIR/postgres.log" -w -t 60 \
		-o "-p $PGPORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" \
		start >/dev/null || { tail -n 20 "$PGDIR/postgres.log" >&2; die "PostgreSQL did not start"; }
	PG_STARTED=1
fi
[ -n "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = 'hub'")" ] ||
	psql_admin "CREATE ROLE hub LOGIN"
[ -n "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = 'hub'")" ] ||
	psql_admin "CREATE DATABASE hub OWNER hub"
fi

# --- Redis ---
mkdir -p "$REDIS_DIR"
if [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then
	say "reusing the Redis on port $REDIS_PORT (left running at exit)"
else
	say "starting Redis on 127.0.0.1:$REDIS_PORT"
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" --save '' \
		--appendonly no --daemonize yes --pidfile "$REDIS_DIR/redis.pid" \
		--logfile "$REDIS_DIR/redis.log"
	REDIS_STARTED=1
	for _ in $(seq 100); do
		[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break
		sleep 0.1
	done
	[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] || die "Redis did not start"
fi

# --- the database, and the demo channels it holds beside the file's demo-whatsapp ---
"$BUILD/hubctl" -c "$CONFIG" migrate
SECRETS=$VAR/secrets
TG_BOT=7000000001
IG_ACCOUNT=17841471550633446
# A dev secret in $SECRETS/NAME (made once, random, mode 600); prints the file's path.
dev_secret() {
	local f=$SECRETS/$1
	if [ ! -s "$f" ]; then
		(umask 077; mkdir -p "$SECRETS"
		 printf 'dev-%s-%s\n' "$1" "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" >"$f")
	fi
	echo "$f"
}
# Adds channel $1 unless the database has it already (a second `make run` keeps it).
seed_channel() {
	local id=$1 list; shift
	list=$("$BUILD/hubctl" -c "$CONFIG" channel list)
	if awk -v id="$id" 'NR > 1 && $1 == id { found = 1 } END { exit !found }' <<<"$list"; then
		return 0
	fi
	"$BUILD/hubctl" -c "$CONFIG" channel add --id "$id" --tenant demo \
		--tenant-name "Demo company" "$@" >/dev/null
	say "added channel $id (secrets in $SECRETS/)"
}
seed_channel demo-telegram --kind telegram --account "$TG_BOT" \
	--app-secret-file "$(dev_secret telegram-secret-token)" \
	--access-token-file "$(dev_secret telegram-bot-token)"
seed_channel demo-instagram --kind instagram --account "$IG_ACCOUNT" \
	--app-secret-file "$(dev_secret instagram-app-secret)" \
	--verify-token-file "$(dev_secret instagram-verify-token)" \
	--access-token-file "$(dev_secret instagram-access-token)"
# the website chat, embedded by the demo shop on port $SHOP_PORT (pre-chat form off)
cat >"$SECRETS/demo-web.json" <<EOF
{ "origins": ["http://127.0.0.1:$SHOP_PORT", "http://localhost:$SHOP_PORT"],
  "title": { "ru": "Демо-магазин", "kk": "Демо дүкен", "en": "Demo shop" },
  "color": "#0a6e5c",
  "greeting": { "ru": "Здравствуйте! Чем помочь?", "kk": "Сәлеметсіз бе! Қалай көмектесейік?",
                "en": "Hello! How can we help?" },
  "offline": { "ru": "Нет связи с чатом, пробуем снова…", "kk": "Чатпен байланыс жоқ…",
               "en": "The chat is offline, trying again…" },
  "prechat": false }
EOF
seed_channel demo-web --kind web --app-secret-file "$(dev_secret web-identity-secret)" \
	--web-file "$SECRETS/demo-web.json"
# secrets stored before they were sealed (a ./var/ of an older checkout): sealed now
"$BUILD/hubctl" -c "$CONFIG" rotate-key >/dev/null

# --- the platforms' send APIs, faked (config/dev.json points hubd at them) ---
mkdir -p "$FAKES_DIR"
cat >"$FAKES_DIR/channels.json" <<EOF
{ "channels": [
  { "id": "demo-whatsapp", "kind": "whatsapp", "account_id": "106540352242922",
    "app_secret": "dev-whatsapp-app-secret" },
  { "id": "demo-instagram", "kind": "instagram", "account_id": "$IG_ACCOUNT",
    "app_secret_file": "$(dev_secret instagram-app-secret)" } ] }
EOF
rm -f "$FAKES_DIR/fakeplat.json"
/usr/bin/python3 tests/support/fakeplat.py --dir "$FAKES_DIR" --hub "http://$LISTEN" \
	--config "$FAKES_DIR/channels.json" --whatsapp-port 8441 --telegram-port 8442 \
	--instagram-port 8443 &
FAKES_PID=$!
for _ in $(seq 100); do
	[ -s "$FAKES_DIR/fakeplat.json" ] && break
	kill -0 "$FAKES_PID" 2>/dev/null || { FAKES_PID=; die "the fake platforms did not start"; }
	sleep 0.1
done
[ -s "$FAKES_DIR/fakeplat.json" ] || die "the fake platforms did not start within 10 s"

# --- the AI provider, faked; demo-telegram's assistant answers through it ---
mkdir -p "$FAKEAI_DIR"
rm -f "$FAKEAI_DIR/fakeai.json"
/usr/bin/python3 tests/support/fakeai.py --dir "$FAKEAI_DIR" --port "$FAKEAI_PORT" &
FAKEAI_PID=$!
for _ in $(seq 100); do
	[ -s "$FAKEAI_DIR/fakeai.json" ] && break
	kill -0 "$FAKEAI_PID" 2>/dev/null || { FAKEAI_PID=; die "the fake AI provider did not start"; }
	sleep 0.1
done
[ -s "$FAKEAI_DIR/fakeai.json" ] || die "the fake AI provider did not start within 10 s"
"$BUILD/hubctl" -c "$CONFIG" channel ai demo-telegram --on \
	--url "http://127.0.0.1:$FAKEAI_PORT" --model fake-model --quiet-ms 1500 >/dev/null

# --- the demo shop: another origin embedding the widget ---
mkdir -p "$SHOP_DIR"
sed -e "s|@HUBWS@|ws://$LISTEN|g" -e "s|@HUB@|http://$LISTEN|g" demo/shop.html >"$SHOP_DIR/index.html"
cp demo/shop.css "$SHOP_DIR/shop.css"
/usr/bin/python3 -m http.server "$SHOP_PORT" --bind 127.0.0.1 --directory "$SHOP_DIR" \
	>"$SHOP_DIR/server.log" 2>&1 &
SHOP_PID=$!

# --- hubd ---
if [ "${CLUSTER:-0}" = 1 ]; then
	. scripts/cluster.sh
	cluster_start
else
	for _ in $(seq "$INSTANCES"); do
		"$BUILD/hubd" -c "$CONFIG" &
		HUBD_PIDS="$HUBD_PIDS${HUBD_PIDS:+ }$!"
	done
fi

# Every instance alive.
all_alive() {
	local pid
	for pid in $HUBD_PIDS; do
		kill -0 "$pid" 2>/dev/null || return 1
	done
}

# The status code of GET $1 (empty when nothing answers).
http_status() {
	local line=
	exec 3<>"/dev/tcp/$HTTP_HOST/$HTTP_PORT" || return 0
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" "$LISTEN" >&3
	IFS= read -r -t 5 line <&3 || true
	while IFS= read -r -t 5 _ <&3; do :; done   # the rest, until hubd closes (HTTP/1.0)
	exec 3<&- 3>&-
	set -- $line
	echo "${2:-}"
}

for _ in $(seq 300); do
	all_alive || die "a hubd exited (its log is above)"
	[ "$(http_status /readyz 2>/dev/null)" = 200 ] && break
	sleep 0.1
done
[ "$(http_status /readyz 2>/dev/null)" = 200 ] || die "hubd was not ready (/readyz) within 30 s"

TOKEN=$("$BUILD/hubctl" -c "$CONFIG" token --tenant demo --user agent-1 --role agent --ttl 86400)
BASE=http://$LISTEN
cat <<EOF

Bayge Hub is running: $(set -- $HUBD_PIDS; echo $#) hubd processes (pid $HUBD_PIDS).
Ctrl-C stops hubd, Redis and PostgreSQL.
$([ "${CLUSTER:-0}" = 1 ] && cluster_summary)
  health     $BASE/healthz
  readiness  $BASE/readyz
  metrics    $BASE/metrics
  inbox page $BASE/inbox#token=$TOKEN
  live inbox ws://$LISTEN/ws   (subprotocol bayge.v1)
  demo shop  http://127.0.0.1:$SHOP_PORT/   (the website chat demo-web, another origin)
  webhooks   $BASE/webhooks/whatsapp/demo-whatsapp
             $BASE/webhooks/telegram/demo-telegram
             $BASE/webhooks/instagram/demo-instagram
  fake APIs  https://127.0.0.1:8441 (WhatsApp), :8442 (Telegram), :8443 (Instagram):
             replies typed in the inbox go there and come back sent, delivered, read
  AI         demo-telegram's assistant answers through a fake provider on
             http://127.0.0.1:$FAKEAI_PORT; exactly what would leave the hub, request by
             request: $FAKEAI_DIR/requests.jsonl
  agent token for tenant demo (24 h):
    $TOKEN
Try (one for each platform):
  $BUILD/hubctl -c $CONFIG simulate whatsapp demo-whatsapp --from +77011234567 --name Aigerim 'Сәлеметсіз бе!'
  $BUILD/hubctl -c $CONFIG simulate telegram demo-telegram --from 1111111 --name 'Aigerim N' 'Сәлем! Менің нөмірім +7 701 123 45 67'   (the assistant answers)
  $BUILD/hubctl -c $CONFIG simulate instagram demo-instagram --from 1090651699462050 --name Aigerim 'Hello!'
Channels: $BUILD/hubctl -c $CONFIG channel list | add | disable ID | enable ID

EOF

set +e
wait -n $HUBD_PIDS   # the first to exit stops the rest (cleanup)
rc=$?
say "a hubd exited with $rc"
exit "$rc"
