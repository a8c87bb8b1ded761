"""tests/support/pg.py - a private PostgreSQL 15 cluster for tests (initdb into $TMPDIR,
random port, fsync off, TCP on 127.0.0.1 only, trust auth for user `postgres`).

One shared cluster per test run (shared()), fresh databases per test (create_db), and
private clusters that a test may stop and start (the database-down tests).
As root, initdb and postgres run as the `postgres` user on a directory it owns.
"""
import atexit
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading

from . import util


class PgError(Exception):
    pass


class PgServer:
    """One PostgreSQL cluster. start()/stop() may be called again (same data, same port)."""

    def __init__(self, name="pg", port=None, settings=None):
        self.port = port or util.free_port()
        self.base = tempfile.mkdtemp(prefix="hubt-%s-" % name)
        util.chown_for_postgres(self.base)
        self.data = os.path.join(self.base, "data")
        self.log_path = os.path.join(self.base, "postgres.log")
        self.settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": "",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "log_min_messages": "warning",
        }
        self.settings.update(settings or {})
        self.proc = None
        self._initdb()

    def _run_as_pg(self, argv, timeout):
        r = subprocess.run(argv, cwd=self.base, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout,
                           **util.popen_user_kwargs())
        if r.returncode != 0:
            raise PgError("%s failed (%d):\n%s" % (argv[0], r.returncode,
                                                   r.stdout.decode("utf-8", "replace")))

    def _initdb(self):
        self._run_as_pg([os.path.join(util.PG_BIN, "initdb"), "-D", self.data, "-U",
                         "postgres", "--auth=trust", "-E", "UTF8", "--locale=C",
                         "--no-sync", "--no-instructions"], timeout=120)

    def start(self, timeout=30):
        """Starts postgres and waits until it accepts connections."""
        if self.proc and self.proc.poll() is None:
            return
        argv = [os.path.join(util.PG_BIN, "postgres"), "-D", self.data, "-p", str(self.port)]
        for k, v in self.settings.items():
            argv += ["-c", "%s=%s" % (k, v)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=self.base, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True,
                                         **util.popen_user_kwargs())

        def ready():
            if self.proc.poll() is not None:
                raise PgError("postgres exited with %d:\n%s"
                              % (self.proc.returncode, util.tail(self.log_path)))
            r = subprocess.run([os.path.join(util.PG_BIN, "pg_isready"), "-q", "-h",
                                "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                               timeout=10)
            return r.returncode == 0

        util.wait_for(ready, timeout, "postgres on port %d" % self.port)

    def stop(self, mode="fast", timeout=30):
        """Stops postgres: fast (SIGINT, rolls back and disconnects everyone) or immediate
        (SIGQUIT). Returns its exit code (None if it was not running)."""
        if not self.proc or self.proc.poll() is not None:
            return None
        self.proc.send_signal(signal.SIGQUIT if mode == "immediate" else signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def destroy(self):
        """Stops and removes the cluster (kept when HUBT_KEEP=1)."""
        self.stop()
        if os.environ.get("HUBT_KEEP") != "1":
            shutil.rmtree(self.base, ignore_errors=True)

    def url(self, db="postgres", user="postgres"):
        return "postgresql://%s@127.0.0.1:%d/%s" % (user, self.port, db)

    def hub_url(self):
        """hubd's database.url for the database hub."""
        return self.url("hub")

    def psql(self, sql, db="postgres", timeout=30):
        """Runs sql with `psql -At` and returns its output without the final newline; a list
        of commands runs one after another in one session (psql prints the notifications a
        LISTEN hears after each)."""
        commands = [sql] if isinstance(sql, str) else sql
        r = subprocess.run([os.path.join(util.PG_BIN, "psql"), "-X", "-At", "-v",
                            "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                            "postgres", "-d", db] + [a for c in commands for a in ("-c", c)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if r.returncode != 0:
            raise PgError("psql -d %s -c %r: %s" % (db, sql,
                                                   r.stderr.decode("utf-8", "replace").strip()))
        return r.stdout.decode("utf-8").rstrip("\n")

    def create_db(self, hint="t"):
        """Creates a fresh database named after hint; returns its name."""
        name = "%s_%d" % (re.sub(r"[^a-z0-9]+", "_", hint.lower())[-40:].strip("_") or "t",
                          _next_id())
        self.psql('CREATE DATABASE "%s"' % name)
        return name

    def drop_db(self, name):
        self.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


_ids = [0]
_ids_lock = threading.Lock()


def _next_id():
    with _ids_lock:
        _ids[0] += 1
        return _ids[0]


_shared = []


def available():
    """None when PostgreSQL can run here, else why not."""
    for b in ("initdb", "postgres", "psql", "pg_isready"):
        if not os.access(os.path.join(util.PG_BIN, b), os.X_OK):
            return "%s/%s not found (apt-get install postgresql)" % (util.PG_BIN, b)
    return None


def shared():
    """The test run's one shared cluster, started on first use, stopped at exit."""
    if not _shared:
        s = PgServer("shared")
        try:
            s.start()
        except Exception:
            s.destroy()
            raise
        _shared.append(s)
        atexit.register(stop_shared)
    return _shared[0]


def stop_shared():
    while _shared:
        _shared.pop().destroy()
