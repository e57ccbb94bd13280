"""``gisplatform conflicts``: recompute the regulatory conflict checks and list what is open."""
from __future__ import annotations

import click
from rich.table import Table

from gisplatform.cli.render import console


@click.group()
def conflicts() -> None:
    """Regulatory conflicts (rules in layers/rules/conflicts.yml): recompute, list."""


@conflicts.command()
@click.option("--rule", "rules", multiple=True, help="Only these rules (e.g. --rule R01 --rule R06); default all.")
def recompute(rules: tuple[str, ...]) -> None:
    """Check every rule against all live data (ETL runs already re-check what they change)."""
    from gisplatform.analysis.conflicts import recompute_all
    from gisplatform.db.engine import engine

    summary = recompute_all(engine(), list(rules) or None)
    console.print(f"[bold]{summary.checks}[/] checks · found {summary.found} · new {summary.opened} · "
                  f"resolved {summary.resolved} · open now {summary.open_total} · {summary.seconds:.1f} s")


@conflicts.command(name="list")
@click.option("--limit", default=50, show_default=True, help="Rows to show.")
@click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True)
def list_(limit: int, lang: str) -> None:
    """Open conflicts by rule, worst first."""
    import sqlalchemy as sa

    from gisplatform.db.engine import engine

    title = "rule_title" if lang == "vi" else "rule_title_en"
    with engine().connect() as connection:
        counts = connection.execute(sa.text(
            f"SELECT rule, severity, {title}, count(*) FROM api.conflicts GROUP BY 1, 2, 3 "
            "ORDER BY severity, rule")).all()
        rows = connection.execute(sa.text(
            "SELECT rule, check_name, severity, feature_a, feature_b, round(overlap_area_m2::numeric, 1), detail "
            "FROM api.conflicts ORDER BY severity, rule, id LIMIT :n"), {"n": limit}).all()
    table = Table("rule", "severity", "title", "open")
    for rule, severity, text, n in counts:
        table.add_row(rule, severity, text, str(n))
    console.print(table)
    detail = Table("rule", "check", "severity", "feature a", "feature b", "m²", "detail")
    for row in rows:
        detail.add_row(*("" if v is None else str(v) for v in row))
    console.print(detail)
