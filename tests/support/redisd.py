"""tests/support/redisd.py - a private redis-server for tests (random port on 127.0.0.1,
no persistence), plus a tiny RESP client for PING and PUBLISH/SUBSCRIBE checks.

Optional per test: only tests that configure redis start one.
"""
import os
import shutil
import socket
import subprocess
import tempfile

from . import util

REDIS_SERVER = "/usr/bin/redis-server"


def available():
    """None when redis-server can run here, else why not."""
    if not os.access(REDIS_SERVER, os.X_OK):
        return "redis-server not found (apt-get install redis-server)"
    return None


def command(port, *args, timeout=5.0):
    """Sends one command and returns the first reply line decoded (e.g. '+PONG', ':1')."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(encode(*args))
        return read_line(s)


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
    """One redis-server. start()/stop() may be called again (same port)."""

    def __init__(self, port=None):
        self.port = port or util.free_port()
        self.base = tempfile.mkdtemp(prefix="hubt-redis-")
        self.log_path = os.path.join(self.base, "redis.log")
        self.proc = None

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            return
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--dir", self.base,
                "--logfile", self.log_path]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited with %d:\n%s"
                                   % (self.proc.returncode, util.tail(self.log_path)))
            try:
                return command(self.port, "PING") == "+PONG"
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
