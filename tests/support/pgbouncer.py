"""tests/support/pgbouncer.py - a private PgBouncer (Debian's /usr/sbin/pgbouncer) in
transaction pooling mode in front of a test PostgreSQL: a random port on 127.0.0.1, any
user accepted (auth_type any: the server's trust auth decides), its log kept. Run as
`postgres` when we are root (PgBouncer refuses to run as root)."""
import os
import shutil
import subprocess
import tempfile

from . import util

PGBOUNCER = "/usr/sbin/pgbouncer"


# What PgBouncer needs to follow a Patroni failover through HAProxy (README, PostgreSQL
# failover; scripts/cluster.sh writes the same). When the primary dies its server
# connections end (the backends exit, or HAProxy's on-marked-down shutdown-sessions cuts
# them): PgBouncer drops each at once, the idle ones too ("server conn crashed?", "SV_IDLE
# server got dirty"), so server_check_query never meets a dead one. The next login
# through HAProxy fails while no node passes the check (HAProxy closes the connection),
# and PgBouncer then waits server_login_retry before it tries again, failing meanwhile
# every query that finds no server at once ("server login has been failing": hubd
# answers 503). Its default, 15 s, kept the pool empty up to 15 s after the promotion.
FOLLOW_PRIMARY = {"server_login_retry": 0.5}


def available():
    """None when pgbouncer can run here, else why not."""
    if not os.access(PGBOUNCER, os.X_OK):
        return "pgbouncer not found (apt-get install pgbouncer)"
    return None


class PgBouncer:
    def __init__(self, pg_port, db, pool_size=4, settings=None):
        """pg_port: where the [databases] entry leads (PostgreSQL, or an HAProxy in front
        of Patroni's nodes); settings: more [pgbouncer] keys ({name: value})."""
        self.port = util.free_port()
        self.db = db
        self.base = tempfile.mkdtemp(prefix="hubt-pgbouncer-")
        util.chown_for_postgres(self.base)
        self.log_path = os.path.join(self.base, "pgbouncer.log")
        self.ini = os.path.join(self.base, "pgbouncer.ini")
        with open(self.ini, "w") as f:
            f.write("[databases]\n%s = host=127.0.0.1 port=%d dbname=%s user=postgres\n"
                    "[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = %d\n"
                    "unix_socket_dir =\nauth_type = any\npool_mode = transaction\n"
                    "default_pool_size = %d\nmax_client_conn = 200\n"
                    "logfile = %s\npidfile = %s\n"
                    % (db, pg_port, db, self.port, pool_size, self.log_path,
                       os.path.join(self.base, "pgbouncer.pid")))
            for k, v in (settings or {}).items():
                f.write("%s = %s\n" % (k, v))
        util.chown_for_postgres(self.ini)
        self.proc = None

    def url(self):
        return "postgresql://postgres@127.0.0.1:%d/%s" % (self.port, self.db)

    def start(self, timeout=20):
        self.proc = subprocess.Popen([PGBOUNCER, self.ini], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, **util.popen_user_kwargs())

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("pgbouncer exited with %d:\n%s"
                                   % (self.proc.returncode, util.tail(self.log_path)))
            return "process up" in self.log()

        util.wait_for(ready, timeout, "pgbouncer on port %d" % self.port)

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
