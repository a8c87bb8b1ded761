# scripts/cluster.sh - `make cluster`, sourced by scripts/run-dev.sh (CLUSTER=1) in place of
# its single hubd: the set-up of the scale-out section of the README on one machine.
#   PgBouncer  127.0.0.1:64329, transaction pooling, in front of the PostgreSQL of make run;
#              hubd's database.url goes through it, database.direct_url (LISTEN,
#              migrations, hubctl) to PostgreSQL itself
#   Redis      the master of make run (63799), a replica (63800) and three Sentinels
#              (26379-26381) watching it as "hubmaster"; hubd's redis.url asks them
#   hubd       three instances on 127.0.0.1:8081-8083 (var/cluster/hubd-N.json, made from
#              config/dev.json), logs in var/cluster/hubd-N.log
#   HAProxy    the front door on config/dev.json's http.listen (8080): webhooks, the API,
#              the page and websockets spread over the instances, each checked on /readyz
#   PATRONI=1  PostgreSQL as three Patroni nodes with etcd (scripts/run-dev.sh starts them:
#              54331-54333, REST API 8008-8010), and the chain that follows the primary:
#              PgBouncer -> HAProxy 127.0.0.1:54330 (tcp; each node checked on Patroni's
#              GET /primary, sessions cut when a node stops passing; config written by
#              tests/support/haproxy.py, stats page on 127.0.0.1:7000) -> the primary.
#              hubd's database.url goes through PgBouncer, database.direct_url to HAProxy's
#              port (README, PostgreSQL failover)
# Everything lives under ./var/cluster/ and stops with Ctrl-C like the rest.

CLUSTER_DIR=$VAR/cluster
PGBOUNCER_PORT=64329
PG_HAPROXY_PORT=54330
PG_HAPROXY_STATS_PORT=7000
REDIS_REPLICA_PORT=63800
SENTINEL_PORTS="26379 26380 26381"
HUBD_PORTS="8081 8082 8083"

cluster_start() {
	command -v haproxy >/dev/null || die "haproxy missing: apt-get install haproxy"
	[ -x /usr/sbin/pgbouncer ] || die "pgbouncer missing: apt-get install pgbouncer"
	mkdir -p "$CLUSTER_DIR"
	is_root && chown postgres:postgres "$CLUSTER_DIR"

	local pooled="postgresql://hub@127.0.0.1:$PGBOUNCER_PORT/hub"
	local direct pg_target=$PGPORT login_retry=
	direct=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["database"]["url"])' "$CONFIG")
	if [ "${PATRONI:-0}" = 1 ]; then
		# HAProxy in front of the Patroni nodes: its one port leads to the primary
		/usr/bin/python3 tests/support/haproxy.py --ready-file "$VAR/patroni.ready" \
			--port "$PG_HAPROXY_PORT" --stats-port "$PG_HAPROXY_STATS_PORT" \
			>"$CLUSTER_DIR/haproxy-pg.cfg" || die "cannot write the HAProxy config for Patroni"
		haproxy -db -f "$CLUSTER_DIR/haproxy-pg.cfg" >"$CLUSTER_DIR/haproxy-pg.log" 2>&1 &
		EXTRA_PIDS="$EXTRA_PIDS $!"
		# until its checks have run (HAProxy 2.6 counts a server up until its first
		# check fails): the primary UP, the other two DOWN
		local _ up=
		for _ in $(seq 100); do
			up=$(/usr/bin/python3 - "$PG_HAPROXY_STATS_PORT" <<'EOF' 2>/dev/null || true
import csv, io, sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:%s/;csv" % sys.argv[1], timeout=2) as r:
    rows = csv.DictReader(io.StringIO(r.read().decode().lstrip("# ")))
    st = sorted(x["status"] for x in rows
                if x["pxname"] == "postgres" and x["svname"] not in ("FRONTEND", "BACKEND"))
print(" ".join(st))
EOF
)
			[ "$up" = "DOWN DOWN UP" ] && break
			sleep 0.2
		done
		[ "$up" = "DOWN DOWN UP" ] || die "HAProxy on $PG_HAPROXY_PORT does not lead to the primary (servers: $up): $(tail -n 5 "$CLUSTER_DIR/haproxy-pg.log")"
		pg_target=$PG_HAPROXY_PORT
		direct="postgresql://hub@127.0.0.1:$PG_HAPROXY_PORT/hub"
		# after a failed login (no node passes the check) try again in half a second,
		# not PgBouncer's 15 s
		login_retry="server_login_retry = 0.5"
	fi
	# PgBouncer (refuses to run as root: as postgres then, like PostgreSQL)
	cat >"$CLUSTER_DIR/pgbouncer.ini" <<EOF
[databases]
hub = host=127.0.0.1 port=$pg_target dbname=hub user=hub
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
logfile = $CLUSTER_DIR/pgbouncer.log
pidfile = $CLUSTER_DIR/pgbouncer.pid
$login_retry
EOF
	as_pg /usr/sbin/pgbouncer -d "$CLUSTER_DIR/pgbouncer.ini" ||
		die "PgBouncer did not start: $(tail -n 3 "$CLUSTER_DIR/pgbouncer.log")"
	EXTRA_PIDFILES="$CLUSTER_DIR/pgbouncer.pid"
	# statement_timeout comes from the role: the pooled connections carry no settings
	# (with Patroni PGPORT is the primary's: the setting replicates)
	psql_admin "ALTER ROLE hub SET statement_timeout = '5s'"

	# the Redis replica and the Sentinels
	redis-server --port "$REDIS_REPLICA_PORT" --bind 127.0.0.1 --dir "$CLUSTER_DIR" \
		--save '' --appendonly no --replicaof 127.0.0.1 "$REDIS_PORT" \
		--logfile "$CLUSTER_DIR/redis-replica.log" >/dev/null 2>&1 &
	EXTRA_PIDS="$EXTRA_PIDS $!"
	local p sentinels=
	for p in $SENTINEL_PORTS; do
		mkdir -p "$CLUSTER_DIR/sentinel-$p"
		cat >"$CLUSTER_DIR/sentinel-$p/sentinel.conf" <<EOF
port $p
bind 127.0.0.1
dir $CLUSTER_DIR/sentinel-$p
logfile $CLUSTER_DIR/sentinel-$p/sentinel.log
sentinel monitor hubmaster 127.0.0.1 $REDIS_PORT 2
sentinel down-after-milliseconds hubmaster 2000
sentinel failover-timeout hubmaster 10000
EOF
		redis-server "$CLUSTER_DIR/sentinel-$p/sentinel.conf" --sentinel >/dev/null 2>&1 &
		EXTRA_PIDS="$EXTRA_PIDS $!"
		sentinels="$sentinels${sentinels:+,}127.0.0.1:$p"
	done

	# three hubd, each its own port and config
	local n=0
	for p in $HUBD_PORTS; do
		n=$((n + 1))
		/usr/bin/python3 - "$CONFIG" "$CLUSTER_DIR/hubd-$n.json" "127.0.0.1:$p" \
			"$pooled" "$direct" \
			"redis-sentinel://$sentinels/hubmaster" <<'EOF'
import json, sys
src, dst, listen, pooled, direct, redis = sys.argv[1:]
cfg = json.load(open(src))
cfg["http"]["listen"] = listen
cfg["http"]["reuse_port"] = False
cfg["database"].update(url=pooled, direct_url=direct)
cfg["redis"]["url"] = redis
json.dump(cfg, open(dst, "w"), indent=4)
EOF
		"$BUILD/hubd" -c "$CLUSTER_DIR/hubd-$n.json" 2>"$CLUSTER_DIR/hubd-$n.log" &
		HUBD_PIDS="$HUBD_PIDS${HUBD_PIDS:+ }$!"
	done

	# HAProxy on the front port
	cat >"$CLUSTER_DIR/haproxy.cfg" <<EOF
global
    maxconn 4000
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    option forwardfor
frontend hub
    bind $LISTEN
    default_backend hubd
backend hubd
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 1s fall 2 rise 1
EOF
	n=0
	for p in $HUBD_PORTS; do
		n=$((n + 1))
		echo "    server hubd$n 127.0.0.1:$p check" >>"$CLUSTER_DIR/haproxy.cfg"
	done
	haproxy -db -f "$CLUSTER_DIR/haproxy.cfg" >"$CLUSTER_DIR/haproxy.log" 2>&1 &
	EXTRA_PIDS="$EXTRA_PIDS $!"
}

cluster_summary() {
	local db="PgBouncer on $PGBOUNCER_PORT (transaction pooling)" try=
	if [ "${PATRONI:-0}" = 1 ]; then
		db="PgBouncer on $PGBOUNCER_PORT (transaction pooling)
-> HAProxy on $PG_HAPROXY_PORT (each node checked on Patroni's GET /primary; stats page
http://127.0.0.1:$PG_HAPROXY_STATS_PORT/, config var/cluster/haproxy-pg.cfg) -> the primary of
PostgreSQL on 54331-54333 run by Patroni with etcd (REST API 8008-8010, var/patroni/;
hubd's LISTEN connections and migrations go to $PG_HAPROXY_PORT directly, the hubctl commands
below to the multi-host URL of var/patroni.json)"
		try="
Kill the PostgreSQL primary: kill -9 \$(head -1 var/patroni/nodeN/data/postmaster.pid) of the
node whose Patroni answers GET /primary with 200 (curl -i 127.0.0.1:8008/primary: 8008-8010
are node1-node3): Patroni promotes the synchronous standby, HAProxy's check moves to it,
and PgBouncer and every hubd follow (webhooks 503 for a few seconds; the stats page shows
the move)."
	fi
	cat <<EOF
Cluster: HAProxy on $LISTEN in front of hubd on $(echo $HUBD_PORTS | sed 's/ /, /g')
(logs var/cluster/hubd-N.log), $db,
Redis master $REDIS_PORT with a replica on $REDIS_REPLICA_PORT and Sentinels on
$(echo $SENTINEL_PORTS | sed 's/ /, /g'). Try: kill one hubd (websockets reconnect through
HAProxy and resume), or stop the Redis master (redis-cli -p $REDIS_PORT shutdown nosave:
the Sentinels promote the replica and every hubd follows).$try
EOF
}
