"""How reports look in a terminal: tables, panels and progress bars (rich)."""
from __future__ import annotations

import sys
from contextlib import contextmanager

from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gisplatform.etl.report import RunReport

console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 140)


def error_panel(title: str, message: str) -> None:
    err_console.print(Panel(message, title=f"[bold red]{title}", border_style="red", expand=False))


def _n(value: int) -> str:
    return f"{value:,}".replace(",", " ")


def run_report(report: RunReport) -> None:
    counts = Table(show_header=False, box=None, pad_edge=False)
    counts.add_column(style="bold")
    counts.add_column(justify="right")
    counts.add_column(style="dim")
    counts.add_row("read / đọc", _n(report.read), "source rows")
    counts.add_row("inserted / thêm mới", _n(report.inserted), "")
    counts.add_row("updated / cập nhật", _n(report.updated), "previous versions kept in history")
    counts.add_row("unchanged / không đổi", _n(report.unchanged), "untouched")
    counts.add_row("rejected / loại", _n(report.rejected), f"quarantined: gisplatform etl rejects {report.run_id}")
    counts.add_row("retired / ngừng hiệu lực", _n(report.retired), "no longer in the full snapshot")
    balance = "[green]✓ balanced" if report.balanced else "[red]✗ does not balance"
    counts.add_row("", "", f"{balance}: read = inserted + updated + unchanged + rejected")
    if report.phases:
        counts.add_row("time / thời gian", "", " · ".join(f"{name} {seconds:.1f} s"
                                                          for name, seconds in report.phases.items()))
    speed = f" · {report.seconds:.1f} s · {report.rows_per_second:,.0f} rows/s" if report.seconds else ""
    console.print(Panel(counts, title=f"[bold]Run {report.run_id}[/] · job {report.job} → {report.layer} "
                                      f"({report.mode}){speed}", expand=False))
    if report.files:
        files = Table(title="Files", title_justify="left")
        for column in ("file", "rows", "skipped unchanged", "CRS", "text encoding"):
            files.add_column(column, justify="right" if column in ("rows", "skipped unchanged") else "left")
        for f in report.files:
            encodings = ", ".join(sorted({v["encoding"] for v in f.plan.get("encodings", {}).values()})) or "—"
            crs = f.plan.get("crs", "—")
            source = f.plan.get("crs_source", "")
            files.add_row(f.file, _n(f.rows), _n(f.skipped_unchanged), f"{crs} [dim]({source})" if source else crs,
                          encodings)
        console.print(files)
    if report.findings:
        findings = Table(title="Findings", title_justify="left")
        for column in ("kind", "rule", "rows", "example"):
            findings.add_column(column, overflow="fold")
        style = {"error": "red", "warning": "yellow", "repair": "cyan"}
        for (kind, rule), rows in sorted(report.findings.items()):
            findings.add_row(f"[{style.get(kind, '')}]{kind}", rule, _n(rows), report.examples.get((kind, rule)) or "")
        console.print(findings)


@contextmanager
def progress_bars(enabled: bool = True):
    """A progress callback (stage, rows, total) drawing one bar per stage; a no-op when disabled."""
    if not enabled:
        yield None
        return
    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, transient=True)
    tasks: dict[str, int] = {}

    def update(stage: str, advance: int, total: int | None) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total)
        bars.update(tasks[stage], advance=advance)

    with bars:
        yield update
