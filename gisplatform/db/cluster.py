"""An embedded PostgreSQL cluster under the project's ``var/`` folder, for machines with no server running.

It uses the installed PostgreSQL binaries (``/usr/lib/postgresql/<major>/bin``) of the newest major version
that has PostGIS, listens on 127.0.0.1 only, and trusts local connections: it is meant for a laptop or a demo,
not for production (configure ``GISPLATFORM_DATABASE_URL`` there).
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

from typing import TYPE_CHECKING

import psycopg2

from gisplatform.config import settings

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

PG_ROOT = Path("/usr/lib/postgresql")
DEFAULT_PORT = 54329


class ClusterError(RuntimeError):
    pass


def postgres_bin_dir() -> Path:
    """The bin folder of the newest PostgreSQL major version that has the PostGIS extension installed."""
    majors = sorted((p for p in PG_ROOT.glob("*") if p.name.isdigit()), key=lambda p: int(p.name), reverse=True)
    for major in majors:
        if Path(f"/usr/share/postgresql/{major.name}/extension/postgis.control").exists():
            return major / "bin"
    raise ClusterError(
        "no PostgreSQL with PostGIS is installed; run scripts/setup.sh (it installs postgresql-<major>-postgis-3)"
    )


class EmbeddedCluster:
    def __init__(self, data_dir: Path, port: int = DEFAULT_PORT):
        self.data_dir = data_dir
        self.port = port
        self.log_file = data_dir.parent / "pgcluster.log"

    @classmethod
    def default(cls) -> "EmbeddedCluster":
        return cls(settings().var_dir / "pgcluster", int(os.environ.get("GISPLATFORM_EMBEDDED_PORT", DEFAULT_PORT)))

    def uri(self, database: str) -> str:
        """libpq URI of a database of this cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> URL:
        from sqlalchemy.engine import URL

        return URL.create("postgresql+psycopg2", username="postgres", host="127.0.0.1", port=self.port,
                          database=database)

    def _run(self, *args: str) -> None:
        """Run a PostgreSQL binary; as root, as the 'postgres' system user (initdb and postgres refuse root)."""
        cmd = [str(postgres_bin_dir() / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise ClusterError(f"{' '.join(cmd)} failed:\n{result.stdout}{result.stderr}")

    def _chown_for_postgres(self, path: Path) -> None:
        """As root, hand the path to the postgres user and let it traverse the parent folders."""
        if os.geteuid() != 0:
            return
        user = pwd.getpwnam("postgres")
        shutil.chown(path, user.pw_uid, user.pw_gid)
        for parent in path.parents:  # a checkout under /root is not traversable by default
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o001)

    def is_initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def is_running(self) -> bool:
        try:
            psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             connect_timeout=2).close()
            return True
        except psycopg2.OperationalError:
            return False

    def ensure_running(self) -> "EmbeddedCluster":
        if self.is_running():
            return self
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if not self.is_initialised():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._chown_for_postgres(self.data_dir)
            self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--locale=C.UTF-8")
        self.log_file.touch()
        self._chown_for_postgres(self.log_file)
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60", "-o",
                  f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir}", "start")
        for _ in range(50):
            if self.is_running():
                return self
            time.sleep(0.2)
        raise ClusterError(f"the embedded cluster did not start; see {self.log_file}")

    def stop(self) -> None:
        if self.is_initialised() and self.is_running():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
