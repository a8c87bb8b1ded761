"""tests/support/redisd.py - a private redis-server for tests (random port on 127.0.0.1,
no persistence; optionally a password, ACL users and a unix socket), plus a tiny RESP client
for PING and PUBLISH/SUBSCRIBE checks, and the signed payloads of hubd's event bus
(daemon/data/bus.c) for tests that play another instance or an attacker.

Optional per test: only tests that configure redis start one.
"""
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from . import util

REDIS_SERVER = "/usr/bin/redis-server"


def available():
    """None when redis-server can run here, else why not."""
    if not os.access(REDIS_SERVER, os.X_OK):
        return "redis-server not found (apt-get install redis-server)"
    return None


def command(port, *args, timeout=5.0, auth=None):
    """Sends one command and returns the first reply line decoded (e.g. '+PONG', ':1').
    auth: (password,) or (user, password) sent first with AUTH."""
    with connect(port, timeout, auth) as s:
        s.sendall(encode(*args))
        return read_line(s)


def connect(port, timeout=5.0, auth=None):
    """A socket to redis on port, AUTHenticated with auth ((password,) or (user,
    password)) when given."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if auth:
        s.sendall(encode("AUTH", *auth))
        line = read_line(s)
        if line != "+OK":
            s.close()
            raise RuntimeError("redis AUTH refused: %s" % line)
    return s


BUS_MAC_DOMAIN = b"hub:bus:v1"


def sign(key, channel, obj):
    """The payload hubd's bus publishes: "v1." HEX(HMAC-SHA256(key, "hub:bus:v1" NUL channel
    NUL json)) "." json. obj: a dict (dumped) or the json text itself."""
    body = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    msg = BUS_MAC_DOMAIN + b"\0" + channel.encode() + b"\0" + body.encode()
    mac = hmac.new(key.encode(), msg, hashlib.sha256).hexdigest()
    return "v1.%s.%s" % (mac, body)


def unsign(key, channel, payload):
    """The json object of a signed payload, or None when key did not sign it for channel."""
    parts = payload.split(".", 2)
    if len(parts) != 3 or parts[0] != "v1":
        return None
    if not hmac.compare_digest(sign(key, channel, parts[2]), payload):
        return None
    return json.loads(parts[2])


def now_ms():
    return int(time.time() * 1000)


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def read_line(sock):
    buf = b""
    while not buf.endswith(b"\r\n"):
        c = sock.recv(1)
        if not c:
            break
        buf += c
    return buf.decode("utf-8", "replace").rstrip("\r\n")


class RedisServer:
    """One redis-server. start()/stop() may be called again (same port).
    password: requirepass (the default user's password); users: {name: (password, rules)},
    ACL users with rules such as "resetchannels &hub:ev:* -@all +publish"; unixsocket: also
    listen on <base>/redis.sock (mode 700); replicaof: the port of a master on 127.0.0.1 to
    replicate."""

    def __init__(self, port=None, password=None, users=None, unixsocket=False,
                 replicaof=None):
        self.port = port or util.free_port()
        self.base = tempfile.mkdtemp(prefix="hubt-redis-")
        self.log_path = os.path.join(self.base, "redis.log")
        self.password = password
        self.users = dict(users or {})
        self.socket_path = os.path.join(self.base, "redis.sock") if unixsocket else None
        self.replicaof = replicaof
        self.proc = None

    @property
    def url(self):
        """redis://[:PASSWORD@]127.0.0.1:PORT: the default user."""
        return self.url_for(password=self.password)

    def url_for(self, user=None, password=None, unix=False):
        """A redis.url for hubd with these credentials (not %-encoded: use plain ones)."""
        cred = ""
        if password is not None:
            cred = "%s:%s@" % (user or "", password)
        if unix:
            return "unix://%s%s" % (cred, self.socket_path)
        return "redis://%s127.0.0.1:%d" % (cred, self.port)

    @property
    def auth(self):
        """The AUTH arguments of the default user, or None."""
        return (self.password,) if self.password else None

    def command(self, *args, **kw):
        """command() as the default user."""
        kw.setdefault("auth", self.auth)
        return command(self.port, *args, **kw)

    def start(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            return
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--dir", self.base,
                "--logfile", self.log_path]
        if self.password:
            argv += ["--requirepass", self.password]
        for name, (password, rules) in self.users.items():
            argv += ["--user", name, "on", ">" + password] + rules.split()
        if self.socket_path:
            argv += ["--unixsocket", self.socket_path, "--unixsocketperm", "700"]
        if self.replicaof:
            argv += ["--replicaof", "127.0.0.1", str(self.replicaof)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited with %d:\n%s"
                                   % (self.proc.returncode, util.tail(self.log_path)))
            try:
                return self.command("PING") == "+PONG"
            except OSError:
                return False

        util.wait_for(ready, timeout, "redis-server on port %d" % self.port)

    def stop(self, timeout=20):
        if not self.proc or self.proc.poll() is not None:
            return None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def destroy(self):
        self.stop()
        if os.environ.get("HUBT_KEEP") != "1":
            shutil.rmtree(self.base, ignore_errors=True)


class Sentinels:
    """n Redis Sentinels (redis-server --sentinel) watching the master on 127.0.0.1:port as
    name, with quorum n // 2 + 1 and a master declared down after down_ms."""

    def __init__(self, master_port, name="hubmaster", n=3, down_ms=1000):
        self.name = name
        self.ports = [util.free_port() for _ in range(n)]
        self.base = tempfile.mkdtemp(prefix="hubt-sentinel-")
        self.procs = []
        for i, port in enumerate(self.ports):
            d = os.path.join(self.base, str(i))
            os.mkdir(d)
            conf = os.path.join(d, "sentinel.conf")
            with open(conf, "w") as f:
                f.write("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n"
                        "sentinel monitor %s 127.0.0.1 %d %d\n"
                        "sentinel down-after-milliseconds %s %d\n"
                        "sentinel failover-timeout %s 10000\n"
                        % (port, d, os.path.join(d, "sentinel.log"), name, master_port,
                           n // 2 + 1, name, down_ms, name))
            self.procs.append(subprocess.Popen(
                [REDIS_SERVER, conf, "--sentinel"], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True))
        util.wait_for(lambda: all(self._answers(p) for p in self.ports), 20, "sentinels")

    @staticmethod
    def _answers(port):
        try:
            return command(port, "PING") == "+PONG"
        except OSError:
            return False

    def url(self, password=None, user=None):
        """hubd's redis.url through these sentinels."""
        cred = "%s:%s@" % (user or "", password) if password is not None else ""
        return "redis-sentinel://%s%s/%s" % (
            cred, ",".join("127.0.0.1:%d" % p for p in self.ports), self.name)

    def master_port(self):
        """The master's port as the first sentinel sees it now."""
        with connect(self.ports[0]) as s:
            s.sendall(encode("SENTINEL", "get-master-addr-by-name", self.name))
            lines = [read_line(s) for _ in range(5)]
        return int(lines[4])

    def replicas_known(self):
        """How many replicas the first sentinel knows of."""
        with connect(self.ports[0]) as s:
            s.sendall(encode("SENTINEL", "replicas", self.name))
            return int(read_line(s)[1:])

    def destroy(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        if os.environ.get("HUBT_KEEP") != "1":
            shutil.rmtree(self.base, ignore_errors=True)
