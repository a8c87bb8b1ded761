"""tests/support/haproxy.py - HAProxy (Debian's /usr/sbin/haproxy) in TCP mode in front of
the PostgreSQL nodes of a Patroni cluster (tests/support/patroni.py), as Patroni's own
documentation deploys it: each node is checked on Patroni's REST API (GET /primary: 200
only on the running leader), so the one port always leads to the primary. PgBouncer's
[databases] entry and hubd's database.direct_url point here (README, PostgreSQL failover).

Settings, and why (the same as scripts/cluster.sh writes for `make cluster PATRONI=1`):
  option httpchk GET /primary, http-check expect status 200
                            Patroni, which holds the leader key in etcd, says where the
                            primary is; a replica, a demoted primary or a node whose
                            Patroni is gone fails the check.
  inter 1s, fastinter/downinter 500ms, fall 2, rise 1
                            a new leader is in within about half a second of Patroni's
                            promotion; the old one out within a second or two.
  on-marked-down shutdown-sessions
                            the sessions on a node that stops being the primary are cut
                            at once (PgBouncer's server connections, hubd's LISTEN), even
                            when its machine is cut off and no FIN or RST would come.
  timeout client/server 24h hubd's LISTEN connections may idle for hours: not cut for it
                            (dead peers: the check above, and TCP keepalives).
A stats socket in the folder lets tests read each server's state.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile

if __package__:
    from . import util
else:  # run as a script: tests/support/haproxy.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from support import util

HAPROXY = "/usr/sbin/haproxy"


def available():
    """None when haproxy can run here, else why not."""
    if not os.access(HAPROXY, os.X_OK):
        return "haproxy not found (apt-get install haproxy)"
    return None


def patroni_config(port, nodes, stats_socket=None, stats_port=None, backend="postgres"):
    """The haproxy.cfg text: listen on 127.0.0.1:port, one server per node (name,
    PostgreSQL port, Patroni REST port), checked on GET /primary; stats_port: HAProxy's
    stats page there (http://127.0.0.1:PORT/)."""
    lines = [
        "global",
        "    maxconn 1000",
    ]
    if stats_socket:
        lines.append("    stats socket %s mode 600 level admin" % stats_socket)
    lines += [
        "defaults",
        "    mode tcp",
        "    retries 0",
        "    timeout connect 2s",
        "    timeout client 24h",
        "    timeout server 24h",
        "    timeout check 2s",
        "    option clitcpka",
        "    option srvtcpka",
        "listen %s" % backend,
        "    bind 127.0.0.1:%d" % port,
        "    option httpchk GET /primary",
        "    http-check expect status 200",
        "    default-server inter 1s fastinter 500ms downinter 500ms fall 2 rise 1 "
        "on-marked-down shutdown-sessions observe layer4 error-limit 1 on-error mark-down",
    ]
    for name, pg_port, api_port in nodes:
        lines.append("    server %s 127.0.0.1:%d check port %d" % (name, pg_port, api_port))
    if stats_port:
        lines += ["listen stats",
                  "    mode http",
                  "    bind 127.0.0.1:%d" % stats_port,
                  "    timeout client 30s",
                  "    stats enable",
                  "    stats uri /",
                  "    stats refresh 2s"]
    return "\n".join(lines) + "\n"


def main():
    """tests/support/haproxy.py --ready-file F --port P [--stats-port S]: prints the
    haproxy.cfg for the nodes of a `tests/support/patroni.py --ready-file F` cluster
    (scripts/cluster.sh, make cluster PATRONI=1)."""
    import argparse
    import json
    ap = argparse.ArgumentParser(description="haproxy.cfg for a Patroni cluster")
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--stats-port", type=int)
    args = ap.parse_args()
    with open(args.ready_file) as f:
        nodes = json.load(f)["nodes"]
    print(patroni_config(args.port, [(n["name"], n["port"], n["api_port"]) for n in nodes],
                         stats_port=args.stats_port), end="")


class PatroniHAProxy:
    """HAProxy on a free port leading to the primary of cluster (a PatroniCluster)."""

    def __init__(self, cluster, port=None):
        self.cluster = cluster
        self.port = port or util.free_port()
        self.base = tempfile.mkdtemp(prefix="hubt-haproxy-")
        self.cfg_path = os.path.join(self.base, "haproxy.cfg")
        self.log_path = os.path.join(self.base, "haproxy.log")
        self.sock_path = os.path.join(self.base, "haproxy.sock")
        with open(self.cfg_path, "w") as f:
            f.write(patroni_config(self.port, [(n.name, n.port, n.api_port)
                                               for n in cluster.nodes],
                                   stats_socket=self.sock_path))
        self.proc = None

    def url(self, db, user="postgres"):
        return "postgresql://%s@127.0.0.1:%d/%s" % (user, self.port, db)

    def start(self, timeout=20):
        """Starts HAProxy and waits until its checks have run: one server (the leader) UP,
        the others DOWN. (HAProxy 2.6 counts every server UP until its first check fails:
        until then a connection may land on a replica.)"""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg_path],
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("haproxy exited with %d:\n%s"
                                   % (self.proc.returncode, util.tail(self.log_path)))
            st = sorted(self.servers().values())
            return len(st) == len(self.cluster.nodes) and st == ["DOWN"] * (len(st) - 1) + ["UP"]

        util.wait_for(ready, timeout, lambda: "HAProxy on %d with a server UP: %s\n%s"
                      % (self.port, self.servers(), util.tail(self.log_path)))

    def command(self, cmd):
        """One command on the stats socket; its answer ('' when the socket is not there)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(2)
            s.connect(self.sock_path)
            s.sendall(cmd.encode() + b"\n")
            out = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
            return out.decode("utf-8", "replace")
        except OSError:
            return ""
        finally:
            s.close()

    def servers(self):
        """{server name: status} (UP, DOWN, "UP 1/2", ...) from `show stat`."""
        out = {}
        lines = self.command("show stat").splitlines()
        if not lines:
            return out
        head = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(head, line.split(",")))
            if row.get("svname") not in (None, "FRONTEND", "BACKEND"):
                out[row["svname"]] = row.get("status", "")
        return out

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def destroy(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if os.environ.get("HUBT_KEEP") != "1":
            shutil.rmtree(self.base, ignore_errors=True)


if __name__ == "__main__":
    main()
