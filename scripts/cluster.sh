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
#              54331-54333); hubd on the libpq multi-host URL with
#              target_session_attrs=read-write, no PgBouncer (it would not follow a failover)
# Everything lives under ./var/cluster/ and stops with Ctrl-C like the rest.

CLUSTER_DIR=$VAR/cluster
PGBOUNCER_PORT=64329
REDIS_REPLICA_PORT=63800
SENTINEL_PORTS="26379 26380 26381"
HUBD_PORTS="8081 8082 8083"

cluster_start() {
	command -v haproxy >/dev/null || die "haproxy missing: apt-get install haproxy"
	[ -x /usr/sbin/pgbouncer ] || die "pgbouncer missing: apt-get install pgbouncer"
	mkdir -p "$CLUSTER_DIR"
	is_root && chown postgres:postgres "$CLUSTER_DIR"

	local pooled="postgresql://hub@127.0.0.1:$PGBOUNCER_PORT/hub"
	if [ "${PATRONI:-0}" = 1 ]; then
		# PgBouncer would stay on the first primary: hubd on the multi-host URL instead
		# (README, PostgreSQL failover, for PgBouncer that follows Patroni)
		pooled=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["database"]["url"])' "$CONFIG")
	else
	# PgBouncer (refuses to run as root: as postgres then, like PostgreSQL)
	cat >"$CLUSTER_DIR/pgbouncer.ini" <<EOF
[databases]
hub = host=127.0.0.1 port=$PGPORT dbname=hub user=hub
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
EOF
	as_pg /usr/sbin/pgbouncer -d "$CLUSTER_DIR/pgbouncer.ini" ||
		die "PgBouncer did not start: $(tail -n 3 "$CLUSTER_DIR/pgbouncer.log")"
	EXTRA_PIDFILES="$CLUSTER_DIR/pgbouncer.pid"
	# statement_timeout comes from the role: the pooled connections carry no settings
	psql_admin "ALTER ROLE hub SET statement_timeout = '5s'"
	fi

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
			"$pooled" \
			"redis-sentinel://$sentinels/hubmaster" <<'EOF'
import json, sys
src, dst, listen, pooled, redis = sys.argv[1:]
cfg = json.load(open(src))
direct = cfg["database"]["url"]
cfg["http"]["listen"] = listen
cfg["http"]["reuse_port"] = False
cfg["database"].update(url=pooled)
if pooled != direct:
    cfg["database"]["direct_url"] = direct
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
	local db="PgBouncer on $PGBOUNCER_PORT (transaction pooling)"
	[ "${PATRONI:-0}" = 1 ] && db="PostgreSQL on 54331-54333 run by Patroni with etcd
(var/patroni/; kill -9 the primary's postmaster, \$(head -1 var/patroni/nodeN/data/postmaster.pid):
Patroni promotes the synchronous standby and every hubd follows)"
	cat <<EOF
Cluster: HAProxy on $LISTEN in front of hubd on $(echo $HUBD_PORTS | sed 's/ /, /g')
(logs var/cluster/hubd-N.log), $db,
Redis master $REDIS_PORT with a replica on $REDIS_REPLICA_PORT and Sentinels on
$(echo $SENTINEL_PORTS | sed 's/ /, /g'). Try: kill one hubd (websockets reconnect through
HAProxy and resume), or stop the Redis master (redis-cli -p $REDIS_PORT shutdown nosave:
the Sentinels promote the replica and every hubd follows).
EOF
}
