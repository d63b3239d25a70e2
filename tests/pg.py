"""PostgreSQL for tests: a fresh, empty database on demand, and nothing left behind.

Where the server comes from:
- `LEDGER_TEST_DATABASE_URL` set: that server (its user must be allowed to create
  databases). If it cannot be used, that is an error: an explicit choice never
  falls back to something else.
- otherwise: a throwaway cluster started with `pgserver` in /tmp/ledger-pg-*,
  stopped and deleted on exit.

Every URL handed out has the libpq form `postgresql://user[:password]@host:port/dbname`
and splits (`split_url`) into the five settings `eventsourcing` reads
(POSTGRES_HOST/PORT/USER/PASSWORD/DBNAME). pgserver listens on a Unix socket only;
its socket directory is the host, percent-encoded in the URL.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

ENV_VAR = "LEDGER_TEST_DATABASE_URL"
CONNECT_TIMEOUT_S = 10
PG_CTL_STOP_TIMEOUT_S = 30


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL could be provisioned; the message says why."""


def split_url(url: str) -> dict[str, str]:
    """The host, port, user, password and dbname of a libpq URL (port defaults to 5432)."""
    params = conninfo_to_dict(url)
    missing = [key for key in ("host", "user", "dbname") if not params.get(key)]
    if missing:
        raise ValueError(f"PostgreSQL URL lacks {', '.join(missing)}: {redact(url)}")
    return {
        "host": str(params["host"]),
        "port": str(params.get("port") or 5432),
        "user": str(params["user"]),
        "password": str(params.get("password") or ""),
        "dbname": str(params["dbname"]),
    }


def make_url(*, host: str, port: str, user: str, password: str, dbname: str) -> str:
    """A libpq URL; a socket directory as host is percent-encoded, as libpq expects."""
    if host.startswith("/"):
        host = quote(host, safe="")
    elif ":" in host:
        host = f"[{host}]"
    userinfo = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    return f"postgresql://{userinfo}@{host}:{port}/{quote(dbname, safe='')}"


def redact(url: str) -> str:
    """The URL with its password hidden, for error messages."""
    try:
        parts = split_url(url)
    except (ValueError, psycopg.ProgrammingError):
        return "<unparseable URL>"
    if parts["password"]:
        parts["password"] = "***"
    return make_url(**parts)


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """Create an empty database through `admin_url`; yield its URL; drop it on exit.

    The drop uses `WITH (FORCE)`, so connections a test forgot to close do not
    keep the database alive.
    """
    dbname = f"ledger_test_{secrets.token_hex(6)}"
    url = make_url(**{**split_url(admin_url), "dbname": dbname})
    with _admin_connection(admin_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        yield url
    finally:
        with _admin_connection(admin_url) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


@contextmanager
def provision_postgres() -> Iterator[str]:
    """Yield the URL of a fresh, empty database; remove it (and any server started) on exit.

    Raises PostgresUnavailableError, saying why, when no server can be used.
    """
    with ExitStack() as stack:
        admin_url = os.environ.get(ENV_VAR)
        origin = f"{ENV_VAR}={redact(admin_url)}" if admin_url else None
        if not admin_url:
            admin_url = stack.enter_context(_pgserver_cluster())
            origin = f"the pgserver cluster at {split_url(admin_url)['host']}"
        try:
            url = stack.enter_context(fresh_database(admin_url))
        except (psycopg.Error, OSError, ValueError) as error:
            raise PostgresUnavailableError(
                f"cannot create a test database on {origin}: {error}"
            ) from error
        yield url


def _admin_connection(url: str) -> psycopg.Connection[TupleRow]:
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)


@contextmanager
def _pgserver_cluster() -> Iterator[str]:
    """Start a throwaway cluster in /tmp/ledger-pg-*; yield its admin URL; stop and delete it."""
    with _pgserver_cluster_in() as (admin_url, _pgdata):
        yield admin_url


@contextmanager
def _pgserver_cluster_in() -> Iterator[tuple[str, Path]]:
    """`_pgserver_cluster`, also yielding the cluster's data directory."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (it falls back to /tmp).
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
            from pgserver.postgres_server import get_server
    except ImportError as error:
        raise PostgresUnavailableError(
            f"{ENV_VAR} is unset and pgserver is not installed (pip install -e '.[test]')"
        ) from error

    pgdata = Path(tempfile.mkdtemp(prefix="ledger-pg-", dir="/tmp"))
    server = None
    try:
        try:
            server = get_server(pgdata, cleanup_mode="delete")
            info = server.get_postmaster_info()
        # pgserver fails in many ways (subprocess errors, OSError, RuntimeError,
        # AssertionError); each means the same thing here and is kept as the cause.
        except Exception as error:
            raise PostgresUnavailableError(
                f"{ENV_VAR} is unset and pgserver could not start a cluster in {pgdata}: "
                f"{error!r}{_log_tail(pgdata)}"
            ) from error
        url = make_url(
            host=str(info.socket_dir or info.hostname),
            port=str(info.port or 5432),
            user=server.postgres_user,
            password="",
            dbname="postgres",
        )
        yield url, pgdata
    finally:
        try:
            if server is not None:
                server.cleanup()  # stops the server and deletes pgdata
        finally:
            _stop_cluster(pgdata)  # only matters when pgserver failed half-way
            shutil.rmtree(pgdata, ignore_errors=True)


def _stop_cluster(pgdata: Path) -> None:
    if not (pgdata / "postmaster.pid").exists():
        return
    from pgserver._commands import POSTGRES_BIN_PATH

    # pg_ctl refuses to run as root; pgserver runs its cluster as the user "pgserver" then.
    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl = str(POSTGRES_BIN_PATH / "pg_ctl")
    subprocess.run(
        [pg_ctl, "-D", str(pgdata), "-m", "fast", "-w", "-t", str(PG_CTL_STOP_TIMEOUT_S), "stop"],
        user=user,
        check=False,
        # Never pipes: a server process inheriting one could keep this call waiting.
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=PG_CTL_STOP_TIMEOUT_S + 10,
    )


def _log_tail(pgdata: Path, lines: int = 20) -> str:
    try:
        tail = (pgdata / "log").read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\nserver log (last lines):\n" + "\n".join(tail)


class ControlledPostgres:
    """A throwaway pgserver cluster of this process's own that a test may stop
    and start again: same data directory, same socket directory, same URL.

    Only this cluster is ever stopped: its data directory was created here, and
    `pg_ctl -D` addresses nothing else.
    """

    def __init__(self, pgdata: Path, socket_dir: str, port: str, user: str) -> None:
        self.pgdata = pgdata
        self.socket_dir = socket_dir
        self.url = make_url(host=socket_dir, port=port, user=user, password="", dbname="postgres")

    def _pg_ctl(self, *args: str, timeout_s: float) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        user = "pgserver" if os.geteuid() == 0 else None
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), *args],
            user=user,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout_s + 10,
        )

    def stop(self) -> None:
        """Fast shutdown: sessions are disconnected, open transactions rolled back."""
        timeout = str(PG_CTL_STOP_TIMEOUT_S)
        self._pg_ctl("-m", "fast", "-w", "-t", timeout, "stop", timeout_s=PG_CTL_STOP_TIMEOUT_S)

    def start(self) -> None:
        """Start again on the same socket directory, as pgserver first did."""
        self._pg_ctl(
            "-w",
            "-t",
            str(PG_CTL_STOP_TIMEOUT_S),
            "-o",
            '-h ""',
            "-o",
            f"-k {self.socket_dir}",
            "-l",
            str(self.pgdata / "log"),
            "start",
            timeout_s=PG_CTL_STOP_TIMEOUT_S,
        )

    def is_running(self) -> bool:
        try:
            with psycopg.connect(self.url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False


@contextmanager
def controlled_postgres() -> Iterator[ControlledPostgres]:
    """A pgserver cluster of its own (never `LEDGER_TEST_DATABASE_URL`'s server,
    which a test must not stop); stopped and deleted on exit."""
    with _pgserver_cluster_in() as (admin_url, pgdata):
        parts = split_url(admin_url)
        server = ControlledPostgres(pgdata, parts["host"], parts["port"], parts["user"])
        try:
            yield server
        finally:
            if not server.is_running():
                server.start()  # so that pgserver's own clean-up stops and deletes it
