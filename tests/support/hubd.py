"""tests/support/hubd.py - runs the real hubd and hubctl for tests: writes a config, binds
a NOTIFY_SOCKET and waits for READY=1 with a deadline (never sleeps), captures stderr to a
file, stops with SIGTERM and fails on any AddressSanitizer/UBSan/LeakSanitizer report.

Knows the config schema and the sd_notify protocol, nothing of hubd's internals.
"""
import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from . import httpc, util

SANITIZER_RE = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
                          r"SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer|"
                          r"WARNING: AddressSanitizer")

DEMO_ACCOUNT = "106540352242922"
ACME_ACCOUNT = "106540352242923"


def sanitizer_report(text):
    """The sanitizer report in text (from its first line on), or None."""
    m = SANITIZER_RE.search(text)
    if not m:
        return None
    start = text.rfind("\n", 0, m.start()) + 1
    return text[start:start + 8000]


def hubd_path():
    return os.path.join(util.build_dir(), "hubd")


def hubctl_path():
    return os.path.join(util.build_dir(), "hubctl")


def secret(prefix):
    """A random secret, recognisable in logs by its prefix."""
    return "%s-%s" % (prefix, os.urandom(16).hex())


def channel(cid, tenant, account_id):
    return {"id": cid, "tenant": tenant, "kind": "whatsapp", "account_id": account_id,
            "app_secret": secret("app-secret"), "verify_token": secret("verify-token"),
            "access_token": secret("access-token")}


def base_config(port, db_url, redis_url=None):
    """A complete test config: two tenants (demo, acme) each with a WhatsApp channel
    (demo-whatsapp, acme-whatsapp), random secrets, short timeouts, body_max 64 KiB,
    ws.auth_timeout_ms 500, a random secrets.master_key. The outbox is not delivered (outbound.enabled false): the
    tests of delivery turn it on and point the platforms at their fakes."""
    cfg = {
        "log": {"level": os.environ.get("HUBT_LOG_LEVEL", "info")},
        "http": {"listen": "127.0.0.1:%d" % port, "body_max": 65536, "header_max": 8192,
                 "header_timeout_ms": 2000, "body_timeout_ms": 5000,
                 "idle_timeout_ms": 10000, "max_connections": 256,
                 "drain_timeout_ms": 5000},
        "database": {"url": db_url, "pool_size": 4, "connect_timeout_ms": 2000,
                     "statement_timeout_ms": 5000, "queue_max": 1000,
                     "queue_timeout_ms": 3000},
        "auth": {"jwt_secret": secret("jwt-secret")},
        "ws": {"auth_timeout_ms": 500, "max_frame": 65536, "send_queue_max": 1048576,
               "ping_interval_ms": 30000},
        "outbound": {"enabled": False},
        "secrets": {"master_key": os.urandom(32).hex()},
        "tenants": [{"id": "demo", "name": "Demo company"},
                    {"id": "acme", "name": "Acme LLP"}],
        "channels": [channel("demo-whatsapp", "demo", DEMO_ACCOUNT),
                     channel("acme-whatsapp", "acme", ACME_ACCOUNT)],
    }
    if redis_url:
        cfg["redis"] = {"url": redis_url, "hmac_key": secret("redis-hmac-key")}
    return cfg


def merge(cfg, overrides):
    """A copy of cfg with overrides applied: {"http.body_max": 2048, "redis": None} (dotted
    paths; None removes the key)."""
    out = copy.deepcopy(cfg)
    for path, v in (overrides or {}).items():
        keys = path.split(".")
        d = out
        for k in keys[:-1]:
            d = d.setdefault(k, {})
        if v is None:
            d.pop(keys[-1], None)
        else:
            d[keys[-1]] = v
    return out


def secrets_of(cfg):
    """Every secret in cfg (for the privacy check)."""
    out = [cfg["auth"].get("jwt_secret", ""), cfg.get("redis", {}).get("hmac_key", ""),
           cfg.get("redis", {}).get("hmac_key_accepted", ""),
           cfg.get("metrics", {}).get("token", ""),
           cfg.get("secrets", {}).get("master_key", ""),
           cfg.get("secrets", {}).get("previous_master_key", "")]
    for ch in cfg.get("channels", []):
        out += [ch.get("app_secret", ""), ch.get("verify_token", ""),
                ch.get("access_token", "")]
    return [s for s in out if s]


def child_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("HUB_DATABASE_URL", "HUB_REDIS_URL", "HUB_JWT_SECRET",
                        "HUB_MASTER_KEY", "HUB_PREVIOUS_MASTER_KEY",
                        "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID")}
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    # The test clusters take plain TCP with trust auth: libpq's probe for Kerberos
    # credentials (GSSAPI encryption is tried first by default) costs each hubd start
    # about a second here, for nothing.
    env.setdefault("PGGSSENCMODE", "disable")
    env.update(extra or {})
    return env


def write_json(path, cfg):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=4, ensure_ascii=False)
        f.write("\n")


def run_hubctl(args, timeout=60, env=None, input=None):
    """Runs build/hubctl with args; returns CompletedProcess (text). Raises AssertionError
    on a sanitizer report in its output."""
    r = subprocess.run([hubctl_path()] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=child_env(env),
                       input=input.encode() if isinstance(input, str) else input)
    r.stdout = r.stdout.decode("utf-8", "replace")
    r.stderr = r.stderr.decode("utf-8", "replace")
    rep = sanitizer_report(r.stdout + r.stderr)
    if rep:
        raise AssertionError("hubctl %s: sanitizer report:\n%s" % (" ".join(args), rep))
    return r


class HubdError(AssertionError):
    pass


class Hubd:
    """One hubd process. cfg: the config dict (written to <dir>/<name>.json); binary:
    $HUBT_BUILD/hubd unless given (the harness's self-test passes a fake)."""

    def __init__(self, cfg, directory, name="hubd", env=None, binary=None):
        self.cfg = cfg
        self.binary = binary or hubd_path()
        self.dir = directory
        self.name = name
        self.env = env or {}
        self.config_path = os.path.join(directory, name + ".json")
        self.log_path = os.path.join(directory, name + ".stderr")
        self.port = int(cfg["http"]["listen"].rsplit(":", 1)[1])
        self.proc = None
        self.expected_rc = 0   # the exit code HubTestCase's cleanup accepts
        self.notes = []        # every VAR=VALUE line received on NOTIFY_SOCKET, in order
        self._cursor = 0       # wait_notify() looks at notes from here on
        self._ndir = None
        self._nsock = None
        self.write_config()

    @property
    def base_url(self):
        return "http://127.0.0.1:%d" % self.port

    def write_config(self, cfg=None, raw=None):
        """(Re)writes the config file: cfg (a dict) or raw text."""
        if cfg is not None:
            self.cfg = cfg
        if raw is not None:
            with open(self.config_path, "w", encoding="utf-8") as f:
                f.write(raw)
        else:
            write_json(self.config_path, self.cfg)

    def spawn(self):
        """Starts hubd without waiting (see wait_ready)."""
        self._ndir = tempfile.mkdtemp(prefix="hubt-n-")
        path = os.path.join(self._ndir, "notify")
        self._nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._nsock.bind(path)
        env = child_env(dict(self.env, NOTIFY_SOCKET=path))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([self.binary, "-c", self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)

    def start(self, timeout=30):
        self.spawn()
        self.wait_ready(timeout)
        return self

    def log(self):
        """hubd's whole stderr so far."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _recv_notes(self, timeout):
        self._nsock.settimeout(max(0.001, timeout))
        try:
            data = self._nsock.recv(4096)
        except socket.timeout:
            return
        self.notes += [x for x in data.decode("utf-8", "replace").split("\n") if x]

    def _drain_notes(self):
        """Reads every datagram already queued (e.g. STOPPING=1 after exit)."""
        if not self._nsock:
            return
        self._nsock.setblocking(False)
        try:
            while True:
                data = self._nsock.recv(4096)
                self.notes += [x for x in data.decode("utf-8", "replace").split("\n") if x]
        except BlockingIOError:
            pass

    def wait_notify(self, want, timeout=30):
        """Waits for the next notify line equal to want (e.g. "READY=1") after the last one
        awaited; raises HubdError with hubd's log if hubd exits or the deadline passes."""
        d = util.Deadline(timeout)
        while True:
            for i in range(self._cursor, len(self.notes)):
                if self.notes[i] == want:
                    self._cursor = i + 1
                    return
            if self.proc.poll() is not None:
                # hubd may have exited right after notifying: drain the socket.
                self._drain_notes()
                if want in self.notes[self._cursor:]:
                    continue
                raise HubdError("%s exited with %d before %s; its log:\n%s"
                                % (self.name, self.proc.returncode, want,
                                   util.tail(self.log_path, 80)))
            if d.expired():
                raise HubdError("%s: no %s within %.0f s; its log:\n%s"
                                % (self.name, want, timeout, util.tail(self.log_path, 80)))
            self._recv_notes(min(0.2, d.remaining()))

    def wait_ready(self, timeout=30):
        self.wait_notify("READY=1", timeout)

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, cfg=None, raw=None, timeout=30):
        """Writes the new config (if given), sends SIGHUP, waits for RELOADING=1 then
        READY=1."""
        if cfg is not None or raw is not None:
            self.write_config(cfg, raw)
        self.send_signal(signal.SIGHUP)
        self.wait_notify("RELOADING=1", timeout)
        self.wait_notify("READY=1", timeout)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        """hubd is running and answers GET /healthz with 200."""
        if not self.alive():
            raise HubdError("%s is not running (exit %r); its log:\n%s"
                            % (self.name, self.proc and self.proc.returncode,
                               util.tail(self.log_path, 80)))
        r = httpc.get(self.port, "/healthz")
        if r.status != 200:
            raise HubdError("%s: GET /healthz answered %d" % (self.name, r.status))

    def wait_exit(self, timeout=30):
        """Waits for hubd to exit; returns its exit code; kills it and raises on timeout.
        Raises HubdError on a sanitizer report."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            self._cleanup()
            raise HubdError("%s did not exit within %.0f s (killed); its log:\n%s"
                            % (self.name, timeout, util.tail(self.log_path, 80)))
        self._drain_notes()
        self._cleanup()
        rep = sanitizer_report(self.log())
        if rep:
            raise HubdError("%s: sanitizer report:\n%s" % (self.name, rep))
        return rc

    def stop(self, timeout=30, sig=signal.SIGTERM):
        """SIGTERM, wait (deadline), return the exit code. Idempotent."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait_exit(timeout)

    def kill(self):
        """For cleanup after a failure: SIGKILL without checks."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._cleanup()

    def _cleanup(self):
        if self._nsock:
            self._nsock.close()
            self._nsock = None
        if self._ndir:
            shutil.rmtree(self._ndir, ignore_errors=True)
            self._ndir = None

    def count_log(self, pattern):
        """How many lines of the log match the regex pattern."""
        rx = re.compile(pattern)
        return sum(1 for line in self.log().splitlines() if rx.search(line))


def wait_http(port, path, status, timeout):
    """Polls GET path until it answers status (e.g. /readyz → 200 after the database came
    back); returns the last Resp."""
    last = []

    def ok():
        try:
            r = httpc.get(port, path, timeout=5)
        except OSError:
            return False
        last[:] = [r]
        return r.status == status

    util.wait_for(ok, timeout, lambda: "GET %s → %d (last: %r)" % (path, status, last),
                  interval=0.1)
    return last[0]


def now_ms():
    return int(time.time() * 1000)
