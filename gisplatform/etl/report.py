"""What a run did, in numbers a person can check: read = inserted + updated + unchanged + rejected."""
from __future__ import annotations

import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class FileReport:
    file: str
    rows: int = 0
    skipped_unchanged: int = 0
    rejected_unchanged: int = 0  # rejected again for the same reasons as in the last run, without re-checking
    plan: dict = field(default_factory=dict)
    note: str | None = None


@dataclass
class RunReport:
    run_id: int | None
    job: str
    layer: str
    mode: str
    status: str = "running"
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    retired: int = 0
    features: int | None = None  # live features of the layer after the run
    seconds: float = 0.0
    files: list[FileReport] = field(default_factory=list)
    findings: Counter = field(default_factory=Counter)  # (kind, rule) -> rows
    examples: dict = field(default_factory=dict)  # (kind, rule) -> one example message
    error: str | None = None
    phases: dict = field(default_factory=dict)  # phase -> wall seconds: where the time of the run went
    committed_at: float | None = None  # Unix time at which the run's transaction committed (None: it did not)

    @contextmanager
    def phase(self, name: str):
        """Time a phase of the run (added up when a phase is entered more than once)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - started

    @property
    def repaired(self) -> int:
        return sum(n for (kind, _), n in self.findings.items() if kind == "repair")

    @property
    def warnings(self) -> int:
        return sum(n for (kind, _), n in self.findings.items() if kind == "warning")

    @property
    def balanced(self) -> bool:
        return self.read == self.inserted + self.updated + self.unchanged + self.rejected

    @property
    def rows_per_second(self) -> float:
        return self.read / self.seconds if self.seconds else 0.0

    def summary(self) -> dict:
        """The whole report for a script (``etl run|load --json-report``): counts, times, files and findings."""
        counts = {name: getattr(self, name) for name in ("read", "inserted", "updated", "unchanged", "rejected",
                                                         "retired", "features")}
        return {"run_id": self.run_id, "job": self.job, "layer": self.layer, "mode": self.mode,
                "status": self.status, **counts, "committed_at": self.committed_at, **self.as_json()}

    def as_json(self) -> dict:
        return {
            "files": [f.__dict__ for f in self.files],
            "findings": [{"kind": k, "rule": r, "rows": n, "example": self.examples.get((k, r))}
                         for (k, r), n in sorted(self.findings.items())],
            "seconds": round(self.seconds, 3),
            "phases": {name: round(seconds, 3) for name, seconds in self.phases.items()},
        }
