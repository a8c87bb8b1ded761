"""tests/support/util.py - paths, free ports (apart for each of tests/run's workers),
deadlines, running things as `postgres`, and the CPU time the benchmarks read from /proc.

Shared by every other support module; knows nothing about hubd.
"""
import os
import pwd
import socket
import time

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TESTS)
FIXTURES = os.path.join(TESTS, "fixtures")
OUT = os.environ.get("HUBT_OUT") or os.path.join(TESTS, "out")
PG_BIN = os.environ.get("HUBT_PG_BIN", "/usr/lib/postgresql/15/bin")


def build_dir():
    """The build whose hubd/hubctl the tests drive (env HUBT_BUILD, default build-asan)."""
    b = os.environ.get("HUBT_BUILD", "build-asan")
    return b if os.path.isabs(b) else os.path.join(ROOT, b)


def fixture(rel):
    """Bytes of tests/fixtures/<rel>."""
    with open(os.path.join(FIXTURES, rel), "rb") as f:
        return f.read()


def _worker():
    """(i, n) when tests/run runs this process as worker i of n (HUBT_WORKER=i/n)."""
    try:
        i, n = (int(x) for x in os.environ.get("HUBT_WORKER", "").split("/"))
        return (i, n) if 0 <= i < n else None
    except ValueError:
        return None


WORKER = _worker()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks at random).
    As worker i of n, only a port with (port >> 1) % n == i (Linux hands out odd ports to
    bind(0)), so that two workers of a run never pick the same one between its pick and
    hubd's bind."""
    held = []
    try:
        for _ in range(64):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(s)      # kept bound while looking, so the kernel offers another
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if not WORKER or (port >> 1) % WORKER[1] == WORKER[0]:
                return port
        return port
    finally:
        for s in held:
            s.close()


class Deadline:
    """A point in time; remaining() never goes below 0."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def remaining(self):
        return max(0.0, self.end - time.monotonic())

    def expired(self):
        return time.monotonic() >= self.end


def wait_for(pred, timeout, what, interval=0.05):
    """Polls pred() until it returns a true value (returned) or raises TimeoutError naming
    what (a string or a function returning one). For conditions with no event to wait on (a port answering, a row appearing)."""
    d = Deadline(timeout)
    while True:
        v = pred()
        if v:
            return v
        if d.expired():
            raise TimeoutError("timed out after %.1f s waiting for %s"
                               % (timeout, what() if callable(what) else what))
        time.sleep(interval)


def is_root():
    return os.geteuid() == 0


def postgres_user():
    """(uid, gid) to run PostgreSQL as: `postgres` when we are root, else ourselves."""
    if not is_root():
        return None
    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


def chown_for_postgres(path):
    ids = postgres_user()
    if ids:
        os.chown(path, ids[0], ids[1])


def popen_user_kwargs():
    """subprocess.Popen keyword arguments that drop to `postgres` when we are root."""
    ids = postgres_user()
    if not ids:
        return {}
    return {"user": ids[0], "group": ids[1], "extra_groups": []}


def tail(path, lines=60):
    """The last lines of a text file, for failure messages ('' when missing)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def children(pid):
    """The pids of pid's children (none once it is gone)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def machine_busy_s():
    """CPU seconds all cores spent busy so far (/proc/stat: all but idle and iowait): for a
    benchmark to show what else ran beside it."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / float(os.sysconf("SC_CLK_TCK"))
