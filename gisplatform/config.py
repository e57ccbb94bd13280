"""Settings: where the database is and where the project's folders are.

Looked up in this order, first found wins per key:
  1. environment variables (``GISPLATFORM_DATABASE_URL``, ``GISPLATFORM_HOME``, ...);
  2. a TOML file: ``$GISPLATFORM_CONFIG``, else ``gisplatform.toml`` in the project folder;
  3. built-in defaults (the database is then resolved by :mod:`gisplatform.db.engine`: the local server if one
     answers, else an embedded cluster under ``var/``).
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def load_yaml(text):
    """``yaml.safe_load`` through libyaml when PyYAML has it: the same documents, parsed ten times faster (the
    layer, job and rule definitions cost every command 60 ms in pure Python). ``text``: a string or a file."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _project_dir() -> Path:
    """The folder holding layers/ and etl/: the checkout for a development install, else the working folder."""
    env = os.environ.get("GISPLATFORM_HOME")
    if env:
        return Path(env).resolve()
    checkout = PACKAGE_DIR.parent
    if (checkout / "layers").is_dir():
        return checkout
    return Path.cwd()


@dataclass(frozen=True)
class Settings:
    project_dir: Path
    database_url: str | None  # None: resolve the embedded default
    config_file: Path | None
    sections: dict = field(default_factory=dict, compare=False, hash=False)  # the TOML file's tables

    def section(self, name: str) -> dict:
        """A table of the TOML file (e.g. ``[notify]``, ``[scheduler]``, ``[status]``), empty when absent."""
        value = self.sections.get(name) or {}
        if not isinstance(value, dict):
            raise ValueError(f"{self.config_file}: [{name}] must be a table")
        return value

    @property
    def layers_dir(self) -> Path:
        return self.project_dir / "layers"

    @property
    def codes_dir(self) -> Path:
        return self.layers_dir / "codes"

    @property
    def etl_dir(self) -> Path:
        return self.project_dir / "etl"

    @property
    def sample_dir(self) -> Path:
        return self.project_dir / "sample"

    @property
    def var_dir(self) -> Path:
        """Machine-local state (embedded database cluster, run reports); never committed."""
        return Path(os.environ.get("GISPLATFORM_VAR", self.project_dir / "var"))


def _read_config_file(project_dir: Path) -> tuple[dict, Path | None]:
    explicit = os.environ.get("GISPLATFORM_CONFIG")
    path = Path(explicit) if explicit else project_dir / "gisplatform.toml"
    if not path.is_file():
        if explicit:
            raise FileNotFoundError(f"GISPLATFORM_CONFIG points to {path}, which does not exist")
        return {}, None
    with path.open("rb") as fh:
        try:
            return tomllib.load(fh), path
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from exc


@cache
def settings() -> Settings:
    project_dir = _project_dir()
    data, path = _read_config_file(project_dir)
    url = os.environ.get("GISPLATFORM_DATABASE_URL") or data.get("database", {}).get("url")
    return Settings(project_dir=project_dir, database_url=url or None, config_file=path, sections=data)


def reset() -> None:
    """Forget cached settings (tests change the environment)."""
    settings.cache_clear()
