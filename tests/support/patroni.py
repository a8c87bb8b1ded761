"""tests/support/patroni.py - a private PostgreSQL cluster managed by Patroni (Debian's
patroni 3.0) with etcd (Debian's etcd-server 3.4) as its store, for the failover tests and
`make chaos`: one etcd member and N PostgreSQL 15 nodes (3 by default), each with its own
Patroni, on random ports of 127.0.0.1 under one temporary folder.

The YAML of each node is generated here. Bootstrap: initdb on the first node to take the
leader key, pg_basebackup for the others. As root, Patroni (and so PostgreSQL) runs as the
`postgres` user, as tests/support/pg.py does; etcd runs as that user too.

Settings that decide what a failover does (README "Scaling out", PostgreSQL failover):
  synchronous_mode: true    Patroni names a synchronous standby and promotes only it,
  synchronous_commit: on    so a COMMIT returns once the standby has flushed it: every
                            webhook hubd answered 200 is on the new primary.
  primary_start_timeout: 0  a crashed primary is not restarted in place: fail over at once.
  ttl 10, loop_wait 1, retry_timeout 4 (Patroni's defaults are 30, 10, 10): a dead node's
  leader key expires within 10 s, a crash is seen within a second. The rule
  loop_wait + 2 * retry_timeout <= ttl holds.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

if __package__:
    from . import util
else:  # run as a script: tests/support/patroni.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from support import util

PATRONI = "/usr/bin/patroni"
ETCD = "/usr/bin/etcd"


def available():
    """None when Patroni and etcd can run here, else why not."""
    for path, pkg in ((PATRONI, "patroni"), (ETCD, "etcd-server")):
        if not os.access(path, os.X_OK):
            return "%s not found (apt-get install --no-install-recommends %s)" % (path, pkg)
    for b in ("initdb", "postgres", "pg_basebackup", "pg_rewind"):
        if not os.access(os.path.join(util.PG_BIN, b), os.X_OK):
            return "%s/%s not found (apt-get install postgresql)" % (util.PG_BIN, b)
    return None


def _yaml(obj, indent=0):
    """A small YAML writer for our config (dicts, lists, strings, numbers, booleans): JSON
    scalars are valid YAML, so only the nesting is YAML's."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:" % (pad, k))
                out.append(_yaml(v, indent + 1))
            else:
                out.append("%s%s: %s" % (pad, k, json.dumps(v)))
    else:
        for v in obj:
            if isinstance(v, dict):
                first = True
                for k, vv in v.items():
                    out.append("%s%s %s: %s" % (pad, "-" if first else " ", k, json.dumps(vv)))
                    first = False
            else:
                out.append("%s- %s" % (pad, json.dumps(v)))
    return "\n".join(out)


class Node:
    def __init__(self, cluster, n):
        self.cluster = cluster
        self.name = "node%d" % n
        self.port = cluster.ports[n - 1] if cluster.ports else util.free_port()
        self.api_port = cluster.api_ports[n - 1] if cluster.api_ports else util.free_port()
        self.dir = os.path.join(cluster.base, self.name)
        os.makedirs(self.dir)
        util.chown_for_postgres(self.dir)
        self.data = os.path.join(self.dir, "data")
        self.yaml = os.path.join(self.dir, "patroni.yml")
        self.log_path = os.path.join(self.dir, "patroni.log")
        self.proc = None

    def config(self):
        c = self.cluster
        return {
            "scope": c.scope,
            "name": self.name,
            "log": {"level": "INFO", "format": "%(asctime)s %(levelname)s: %(message)s"},
            "restapi": {"listen": "127.0.0.1:%d" % self.api_port,
                        "connect_address": "127.0.0.1:%d" % self.api_port},
            "etcd3": {"hosts": "127.0.0.1:%d" % c.etcd_port, "protocol": "http"},
            "bootstrap": {
                "dcs": {
                    "ttl": 10, "loop_wait": 1, "retry_timeout": 4,
                    "maximum_lag_on_failover": 1048576,
                    "primary_start_timeout": 0,
                    "synchronous_mode": c.sync,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "use_slots": True,
                        "parameters": dict({
                            "synchronous_commit": "on" if c.sync else "local",
                            "max_connections": 200,
                            "fsync": "off",
                            "wal_keep_size": "128MB",
                        }, **c.settings),
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, {"auth": "trust"},
                           "no-sync"],
            },
            "postgresql": {
                "listen": "127.0.0.1:%d" % self.port,
                "connect_address": "127.0.0.1:%d" % self.port,
                "data_dir": self.data,
                "bin_dir": util.PG_BIN,
                "pgpass": os.path.join(self.dir, "pgpass"),
                "remove_data_directory_on_rewind_failure": True,
                "remove_data_directory_on_diverged_timelines": True,
                "authentication": {
                    "superuser": {"username": "postgres", "password": "hubt"},
                    "replication": {"username": "replicator", "password": "hubt"},
                },
                "pg_hba": ["local all all trust", "host all all 127.0.0.1/32 trust",
                           "host replication all 127.0.0.1/32 trust"],
                "parameters": {"unix_socket_directories": self.dir,
                               "log_min_messages": "warning"},
            },
            "watchdog": {"mode": "off"},
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False},
        }

    def start(self):
        if self.proc and self.proc.poll() is None:
            return
        with open(self.yaml, "w") as f:
            f.write(_yaml(self.config()) + "\n")
        util.chown_for_postgres(self.yaml)
        env = dict(os.environ, HOME=self.dir, PYTHONUNBUFFERED="1")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([PATRONI, self.yaml], cwd=self.dir, env=env,
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         **util.popen_user_kwargs())

    def postmaster_pid(self):
        """The running postmaster's pid, or None."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def kill_postgres(self):
        """kill -9 of this node's postmaster (Patroni lives on and notices)."""
        pid = self.postmaster_pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
        return pid

    def kill(self):
        """kill -9 of Patroni and its PostgreSQL: the machine's death."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        pid = self.postmaster_pid()
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                os.kill(pid, signal.SIGKILL)
        # the backends see the postmaster gone and exit on their own
        util.wait_for(lambda: self.postmaster_pid() is None, 20,
                      "%s's postgres to exit" % self.name)

    def stop(self, timeout=30):
        """Stops Patroni (it stops its PostgreSQL, hands the leader key over if it held it)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        pid = self.postmaster_pid()
        if pid:
            os.kill(pid, signal.SIGQUIT)

    def api(self, path, timeout=2):
        """GET of Patroni's REST API: (status, decoded JSON or None)."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.api_port, path),
                                        timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            try:
                return e.code, json.loads(e.read() or b"null")
            except ValueError:
                return e.code, None
        except (OSError, ValueError):
            return None, None


class PatroniCluster:
    """etcd plus n Patroni nodes. start() waits for a leader and, in synchronous mode, a
    synchronous standby streaming."""

    def __init__(self, n=3, sync=True, scope="hubt", settings=None, base=None, ports=None,
                 api_ports=None):
        """base: the folder (made empty; default a new temporary one); ports, api_ports:
        the PostgreSQL and Patroni REST API ports of the nodes (default free ones)."""
        if base:
            shutil.rmtree(base, ignore_errors=True)
            os.makedirs(base)
            self.base = base
        else:
            self.base = tempfile.mkdtemp(prefix="hubt-patroni-")
        util.chown_for_postgres(self.base)
        self.scope = scope
        self.sync = sync
        self.settings = settings or {}
        self.etcd_port = util.free_port()
        self.etcd_peer_port = util.free_port()
        self.ports = ports
        self.api_ports = api_ports
        self.etcd_dir = os.path.join(self.base, "etcd")
        self.etcd_log = os.path.join(self.base, "etcd.log")
        self.etcd = None
        self.nodes = [Node(self, i + 1) for i in range(n)]

    # --- life ---
    def start(self, timeout=120):
        d = util.Deadline(timeout)
        self.start_etcd(d.remaining())
        # all at once: one wins the initialize key and runs initdb, the others wait for
        # it and clone it with pg_basebackup
        for node in self.nodes:
            node.start()
        self.wait_healthy(d.remaining())

    def start_etcd(self, timeout=30):
        url = "http://127.0.0.1:%d" % self.etcd_port
        peer = "http://127.0.0.1:%d" % self.etcd_peer_port
        with open(self.etcd_log, "ab") as log:
            self.etcd = subprocess.Popen(
                [ETCD, "--name", "e1", "--data-dir", self.etcd_dir,
                 "--listen-client-urls", url, "--advertise-client-urls", url,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", "e1=" + peer, "--initial-cluster-state", "new",
                 "--initial-cluster-token", os.path.basename(self.base),
                 "--enable-v2=false", "--log-level", "warn"],
                cwd=self.base, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, **util.popen_user_kwargs())

        def ready():
            if self.etcd.poll() is not None:
                raise RuntimeError("etcd exited with %d:\n%s" % (self.etcd.returncode,
                                                                 util.tail(self.etcd_log)))
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    return json.loads(r.read()).get("health") == "true"
            except (OSError, ValueError):
                return False

        util.wait_for(ready, timeout, "etcd on port %d" % self.etcd_port, interval=0.2)

    def destroy(self):
        # everything at once, nothing kept: each PostgreSQL stops immediately (SIGQUIT: it
        # still removes its shared memory), each Patroni is killed (its state in etcd goes
        # with etcd)
        for node in self.nodes:
            pid = node.postmaster_pid()
            if pid:
                try:
                    os.kill(pid, signal.SIGQUIT)
                except OSError:
                    pass
            if node.proc and node.proc.poll() is None:
                os.killpg(node.proc.pid, signal.SIGKILL)
        for node in self.nodes:
            if node.proc:
                node.proc.wait(10)
            try:
                util.wait_for(lambda: node.postmaster_pid() is None, 10,
                              "%s's postgres to exit" % node.name)
            except TimeoutError:
                node.kill()
        if self.etcd and self.etcd.poll() is None:
            self.etcd.terminate()
            try:
                self.etcd.wait(10)
            except subprocess.TimeoutExpired:
                self.etcd.kill()
                self.etcd.wait(10)
        if os.environ.get("HUBT_KEEP") != "1":
            shutil.rmtree(self.base, ignore_errors=True)

    # --- state ---
    def members(self):
        """Patroni's view of the cluster (GET /cluster of any node that answers): a list of
        {name, role (leader, sync_standby, replica), state, port, timeline, lag}."""
        for node in self.nodes:
            status, body = node.api("/cluster")
            if status == 200 and body:
                return body.get("members", [])
        return []

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def leader(self):
        """The node whose PostgreSQL is the running primary, or None."""
        for m in self.members():
            if m.get("role") == "leader" and m.get("state") == "running":
                return self.node(m["name"])
        return None

    def wait_leader(self, timeout=60, other_than=None):
        """Waits for a running leader (other than the given node) that accepts writes."""
        def ready():
            node = self.leader()
            if not node or node is other_than:
                return None
            status, _ = node.api("/primary")
            return node if status == 200 else None

        return util.wait_for(ready, timeout, lambda: "a Patroni leader; members: %s\n%s"
                             % (self.members(), self.logs_tail()), interval=0.2)

    def wait_healthy(self, timeout=60):
        """Every node running, a leader, and (sync mode) a synchronous standby streaming."""
        def ready():
            ms = self.members()
            if len(ms) != len(self.nodes) or not all(m.get("state") in ("running",
                                                                         "streaming")
                                                     for m in ms):
                return False
            if not any(m.get("role") == "leader" for m in ms):
                return False
            return not self.sync or any(m.get("role") == "sync_standby" for m in ms)

        util.wait_for(ready, timeout, lambda: "a healthy Patroni cluster; members: %s\n%s"
                      % (self.members(), self.logs_tail()), interval=0.2)

    def logs_tail(self, lines=15):
        return "\n".join("--- %s\n%s" % (n.name, util.tail(n.log_path, lines))
                         for n in self.nodes)

    # --- clients ---
    def url(self, db="postgres", user="postgres"):
        """The libpq multi-host URL hubd uses: every node, the primary chosen by
        target_session_attrs=read-write."""
        hosts = ",".join("127.0.0.1:%d" % n.port for n in self.nodes)
        return "postgresql://%s@%s/%s?target_session_attrs=read-write" % (user, hosts, db)

    def psql(self, sql, db="postgres", node=None, timeout=30):
        """psql -At against node (default: the leader)."""
        node = node or self.wait_leader(30)
        r = subprocess.run([os.path.join(util.PG_BIN, "psql"), "-X", "-At", "-v",
                            "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(node.port), "-U",
                            "postgres", "-d", db, "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("psql %s -d %s -c %r: %s" % (node.name, db, sql, r.stderr.decode(
                "utf-8", "replace").strip()))
        return r.stdout.decode("utf-8").rstrip("\n")

    def wait_for_replicas(self, timeout=60):
        """Waits until every node other than the leader streams from it again."""
        def ready():
            ms = self.members()
            leader = [m for m in ms if m.get("role") == "leader"]
            return (leader and len(ms) == len(self.nodes) and
                    all(m.get("state") in ("running", "streaming") and
                        m.get("timeline") == leader[0].get("timeline") for m in ms))

        util.wait_for(ready, timeout, lambda: "every replica following; members: %s"
                      % self.members(), interval=0.2)


def main():
    """tests/support/patroni.py [--dir D] [--ports P1,P2,P3] [--api-ports A1,A2,A3]
    [--ready-file F]: starts a cluster (make cluster PATRONI=1), creates role and database
    hub, writes {"url": the multi-host URL of database hub, "leader_port", "members",
    "nodes": [{"name", "port", "api_port"}]} to the ready file, and runs until SIGTERM or
    Ctrl-C, then stops everything."""
    import argparse
    ap = argparse.ArgumentParser(description="etcd and three Patroni PostgreSQL nodes")
    ap.add_argument("--dir")
    ap.add_argument("--ports", help="the nodes' PostgreSQL ports, comma-separated")
    ap.add_argument("--api-ports", help="the nodes' Patroni REST API ports, comma-separated")
    ap.add_argument("--ready-file")
    args = ap.parse_args()
    ports = [int(p) for p in args.ports.split(",")] if args.ports else None
    api_ports = [int(p) for p in args.api_ports.split(",")] if args.api_ports else None
    if ports and api_ports and len(ports) != len(api_ports):
        ap.error("--ports and --api-ports must name as many nodes")
    n = len(ports) if ports else len(api_ports) if api_ports else 3
    c = PatroniCluster(n=n, base=args.dir, ports=ports, api_ports=api_ports)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        t = time.monotonic()
        c.start()
        c.psql("CREATE ROLE hub LOGIN")
        c.psql("CREATE DATABASE hub OWNER hub")
        info = {"url": c.url("hub", user="hub"), "leader_port": c.leader().port,
                "members": c.members(),
                "nodes": [{"name": x.name, "port": x.port, "api_port": x.api_port}
                          for x in c.nodes]}
        print("patroni: up in %.1f s: %s" % (time.monotonic() - t, info["url"]),
              file=sys.stderr, flush=True)
        if args.ready_file:
            with open(args.ready_file + ".tmp", "w") as f:
                json.dump(info, f)
            os.rename(args.ready_file + ".tmp", args.ready_file)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        c.destroy()


if __name__ == "__main__":
    main()
