"""``gisplatform``: the command line. Thin: parse arguments, call the stages, print reports.

Exit codes scripts can trust:
  0  success (rows may still have been rejected: see the report, or use --strict)
  1  the run failed and changed nothing (bad input file, database error)
  2  wrong usage (unknown option, missing argument)
  3  another run of the same layer is in progress
  4  a definition is wrong (layers/*.yml, etl/*.yml, settings)
  5  the database cannot be reached
  6  --strict and some rows were rejected
"""
from __future__ import annotations

import sys

import click

from gisplatform.cli.render import console, error_panel

EXIT_FAILED, EXIT_LOCKED, EXIT_DEFINITION, EXIT_DATABASE, EXIT_REJECTS = 1, 3, 4, 5, 6


class Group(click.Group):
    """Turns the platform's own errors into a clear message and the documented exit code."""

    def invoke(self, ctx: click.Context):
        from gisplatform.db.cluster import ClusterError
        from gisplatform.db.engine import DatabaseUnavailable
        from gisplatform.etl.jobs import JobDefinitionError
        from gisplatform.etl.runner import EtlError
        from gisplatform.layers import LayerDefinitionError
        from gisplatform.load.runlog import RunLocked

        try:
            return super().invoke(ctx)
        except RunLocked as exc:
            error_panel("Another run is in progress", str(exc))
            sys.exit(EXIT_LOCKED)
        except (LayerDefinitionError, JobDefinitionError) as exc:
            error_panel("Definition error", str(exc))
            sys.exit(EXIT_DEFINITION)
        except (DatabaseUnavailable, ClusterError) as exc:
            error_panel("Database unavailable", str(exc))
            sys.exit(EXIT_DATABASE)
        except EtlError as exc:
            run = f" (run {exc.run_id})" if exc.run_id else ""
            error_panel(f"Run failed{run}: nothing was changed", str(exc))
            sys.exit(EXIT_FAILED)
        except Exception as exc:
            reason = _connection_failure(exc)
            if reason is None:
                raise
            error_panel("Database unavailable", reason)
            sys.exit(EXIT_DATABASE)


def _connection_failure(exc: BaseException) -> str | None:
    """A clear message when ``exc`` is a failure to connect to PostgreSQL (raised before any run started)."""
    import psycopg2
    import sqlalchemy as sa

    original = exc.orig if isinstance(exc, sa.exc.OperationalError) else exc
    if not isinstance(original, psycopg2.OperationalError):
        return None
    text = " ".join(str(original).split())
    hint = ("run `gisplatform db init` to create it" if "does not exist" in text
            else "check GISPLATFORM_DATABASE_URL (or the \\[database] url in gisplatform.toml) and that PostgreSQL runs")
    return f"{text}\n{hint}"


EXIT_CODES = """\b
Exit codes: 0 success · 1 run failed, nothing changed · 2 wrong usage · 3 layer busy (another run) ·
4 bad definition (layers/, etl/) · 5 database unreachable · 6 rows rejected (with --strict)"""


@click.group(cls=Group, epilog=EXIT_CODES,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="gisplatform")
def main() -> None:
    """Lạng Sơn GIS data platform: load the department's files into PostGIS, validated and versioned.

    \b
    Start with:  gisplatform demo              (set up the database, load the bundled sample)
    Then:        gisplatform etl status        (what ran, what was rejected)
                 gisplatform etl rejects RUN   (why rows were rejected)
    """


def _register() -> None:
    from gisplatform.cli import conflicts, db, demo, etl, ogc, sample, scheduler, serve

    main.add_command(db.db)
    main.add_command(etl.etl)
    main.add_command(sample.sample)
    main.add_command(demo.demo)
    main.add_command(etl.layers)
    main.add_command(serve.serve)
    main.add_command(ogc.ogc)
    main.add_command(scheduler.scheduler)
    main.add_command(conflicts.conflicts)


_register()

_quick_exit = False


def quick_exit_when_done() -> None:
    """For a command whose work is all done when it returns (an ETL run: committed or rolled back, conflicts
    recomputed, report printed): the console script may then end without the interpreter's teardown."""
    global _quick_exit
    _quick_exit = True


def console() -> None:
    """The ``gisplatform`` console script: :func:`main`, then, after a command that asked for it, ``os._exit``
    once the exit handlers have run and the output is flushed. Tearing down the thousand modules an ETL run
    imports (pandas, pyarrow, GDAL, SQLAlchemy...) takes 0.15-0.2 s that every scripted or scheduled run would
    wait for; threads still alive then only read (a file checksum, a search the failed run no longer needs).
    Tests call ``main`` itself, which never exits the process."""
    try:
        main()
    except SystemExit as exc:
        if not _quick_exit:
            raise
        code = exc.code
    else:  # pragma: no cover - click's standalone mode always exits
        code = 0
    import atexit
    import os

    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()  # logging.shutdown and finalizers, as a normal exit would
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    console()
