"""The inbox: files dropped into a watched folder are matched to their job, loaded, and moved away.

    inbox/                      drop files here (or into inbox/<job>/ to name the job yourself)
    inbox/archive/<when>_run<N>/   loaded files (and duplicates, with a note saying which run loaded them)
    inbox/failed/<when>_run<N>/    files whose run failed, with report.txt beside them (nothing was changed)

* Matching: a file in ``inbox/<job>/`` belongs to that job; a file in ``inbox/`` to the one job whose
  ``inbox:`` patterns (default: the file name of its ``source.path``) match its name. None or several: failed,
  with a report that says so.
* A shapefile travels with its side-cars (.dbf, .shx, .prj, .cpg): they move together, and together make the
  checksum. A file still being copied is left alone until nothing in it changed for ``settle`` seconds.
* Same checksum as a file a successful run already loaded: not loaded again (archived with a note).
* Mode: a job whose source is one file keeps its mode (a full snapshot retires what the file lacks); a job
  whose source is a glob of many files (cadastral sheets per commune) loads an inbox file incrementally:
  one commune's sheet must not retire every other commune.
* Polled by the scheduler (APScheduler interval job), or once by ``gisplatform etl inbox``.
"""
from __future__ import annotations

import fnmatch
import hashlib
import logging
import shutil
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from gisplatform.db.engine import engine
from gisplatform.etl.jobs import Job

LOGGER = logging.getLogger("gisplatform.schedule.inbox")
SIDE_CARS = (".dbf", ".shx", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".shp.xml", ".qmd")
RESERVED = ("archive", "failed")
PARTIAL = (".part", ".partial", ".tmp", ".crdownload", "~")


@dataclass
class Delivery:
    """One dropped file with its side-cars."""
    main: Path
    files: list[Path]
    job_folder: str | None  # inbox/<job>/ it was dropped into, if any

    @property
    def name(self) -> str:
        return self.main.name

    def checksum(self) -> str:
        digest = hashlib.sha256()
        for path in sorted(self.files, key=lambda p: p.name.lower()):
            digest.update(path.suffix.lower().encode() + b"\0")
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
        return digest.hexdigest()

    def settled(self, seconds: float, now: float) -> bool:
        return all(now - p.stat().st_mtime >= seconds for p in self.files)


@dataclass
class InboxResult:
    file: str
    job: str | None
    status: str  # loaded | duplicate | failed | waiting (layer busy or scheduler stopping)
    run_id: int | None = None
    moved_to: Path | None = None
    message: str | None = None


class Inbox:
    def __init__(self, root: Path, runner, settle: float = 10.0):
        self.root = Path(root)
        self.runner = runner  # gisplatform.schedule.policy.Runner
        self.settle = settle
        for folder in (self.root, self.archive, self.failed):
            folder.mkdir(parents=True, exist_ok=True)

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def failed(self) -> Path:
        return self.root / "failed"

    # -- finding what was dropped ---------------------------------------------------------------------------
    def deliveries(self) -> list[Delivery]:
        found = []
        for folder, job_folder in [(self.root, None)] + [
                (d, d.name) for d in sorted(self.root.iterdir()) if d.is_dir() and d.name not in RESERVED
                and not d.name.startswith(".")]:
            files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                           and not p.name.lower().endswith(PARTIAL))
            claimed = set()
            for path in files:
                if path.suffix.lower() == ".shp":
                    stem = path.name[:-4].lower()
                    group = [path] + [p for p in files if p != path and p.name.lower().startswith(stem + ".")
                                      and p.name.lower()[len(stem):] in SIDE_CARS]
                    claimed.update(group)
                    found.append(Delivery(path, group, job_folder))
            for path in files:
                if path in claimed or any(path.name.lower().endswith(s) for s in SIDE_CARS):
                    continue  # a side-car waits for its .shp
                found.append(Delivery(path, [path], job_folder))
        return found

    def match(self, delivery: Delivery) -> tuple[Job | None, str | None]:
        jobs = self.runner.jobs
        if delivery.job_folder:
            if delivery.job_folder in jobs:
                return jobs[delivery.job_folder], None
            return None, (f"folder inbox/{delivery.job_folder}/ names no job; jobs: {', '.join(sorted(jobs))}. "
                          "Move the file into the folder of its job, or into inbox/ itself")
        name = delivery.name.lower()
        matches = [j for j in jobs.values() if any(fnmatch.fnmatch(name, p.lower()) for p in j.inbox)]
        if len(matches) == 1:
            return matches[0], None
        if not matches:
            return None, (f"no job takes a file named {delivery.name} (each job's inbox: patterns, e.g. "
                          + "; ".join(f"{j.name}: {', '.join(j.inbox)}" for j in jobs.values() if j.inbox)
                          + "). Rename it, or drop it into inbox/<job>/")
        return None, (f"{delivery.name} matches several jobs ({', '.join(j.name for j in matches)}); drop it "
                      "into inbox/<job>/ to say which")

    # -- handling ---------------------------------------------------------------------------------------------
    def poll(self) -> list[InboxResult]:
        """Handle every settled delivery once; returns what happened to each."""
        results = []
        now = time.time()
        for delivery in self.deliveries():
            if self.runner.stopping.is_set():
                break
            try:
                if not delivery.settled(self.settle, now):
                    continue
            except FileNotFoundError:  # moved away while we looked
                continue
            results.append(self.handle(delivery))
        return results

    def handle(self, delivery: Delivery) -> InboxResult:
        job, problem = self.match(delivery)
        if job is None:
            return self._fail(delivery, None, None, problem)
        checksum = delivery.checksum()
        earlier = loaded_before(checksum, delivery)
        if earlier:
            run_id, when = earlier
            note = (f"{delivery.name}: đã nạp trong lượt chạy {run_id} lúc {when:%Y-%m-%d %H:%M}, không nạp lại.\n"
                    f"{delivery.name}: already loaded by run {run_id} at {when:%Y-%m-%d %H:%M} (same SHA-256 "
                    f"{checksum}); not loaded again.\n")
            target = self._move(delivery, self.archive, f"duplicate_of_run{run_id}", note, "duplicate.txt")
            LOGGER.info("inbox: %s is a duplicate of run %s", delivery.name, run_id)
            return InboxResult(delivery.name, job.name, "duplicate", run_id, target, note)
        outcome = self.runner.run(self._job_for(job, delivery), "inbox", inbox=(self._display(delivery), checksum))
        if outcome.status == "succeeded":
            target = self._move(delivery, self.archive, f"run{outcome.run_id}")
            LOGGER.info("inbox: %s loaded by run %s", delivery.name, outcome.run_id)
            return InboxResult(delivery.name, job.name, "loaded", outcome.run_id, target)
        if outcome.status in ("skipped", "stopped"):
            # nothing was tried to the end: the file stays for the next poll
            return InboxResult(delivery.name, job.name, "waiting", outcome.run_id, None, outcome.error)
        return self._fail(delivery, job, outcome.run_id, outcome.error, outcome.attempts)

    def _job_for(self, job: Job, delivery: Delivery) -> Job:
        many_files = job.path is not None and any(c in job.path for c in "*?[")
        return replace(job, path=str(delivery.main.resolve()), url=None,
                       mode="incremental" if many_files else job.mode)

    def _display(self, delivery: Delivery) -> str:
        return str(delivery.main.relative_to(self.root))

    def _fail(self, delivery: Delivery, job: Job | None, run_id: int | None, message: str | None,
              attempts: int = 0) -> InboxResult:
        lines = [
            f"Tệp / File: {self._display(delivery)}",
            f"Công việc / Job: {job.name if job else '—'}",
            f"Lượt chạy / Run: {run_id or '—'}" + (f" (số lần thử / attempts: {attempts})" if attempts else ""),
            f"Thời điểm / When: {datetime.now().astimezone():%Y-%m-%d %H:%M:%S %z}",
            "",
            "Không nạp được, cơ sở dữ liệu không thay đổi. / Not loaded; the database was not changed.",
            "",
            "Lý do / Reason:",
            message or "unknown",
            "",
            "Sửa tệp rồi thả lại vào thư mục inbox. / Fix the file and drop it into the inbox again.",
            f"Chi tiết / Details: gisplatform etl status{f'; gisplatform etl rejects {run_id}' if run_id else ''}",
        ]
        target = self._move(delivery, self.failed, f"run{run_id}" if run_id else "unmatched",
                            "\n".join(lines) + "\n", "report.txt")
        LOGGER.error("inbox: %s failed (run %s): %s", delivery.name, run_id, message)
        return InboxResult(delivery.name, job.name if job else None, "failed", run_id, target, message)

    @staticmethod
    def _move(delivery: Delivery, parent: Path, label: str, note: str | None = None,
              note_name: str = "report.txt") -> Path:
        stamp = datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
        target = parent / f"{stamp}_{label}_{delivery.main.stem}"
        n = 1
        while target.exists():  # two deliveries of one name in the same second
            n += 1
            target = parent / f"{stamp}_{label}_{delivery.main.stem}_{n}"
        target.mkdir(parents=True)
        for path in delivery.files:
            shutil.move(str(path), target / path.name)
        if note:
            (target / note_name).write_text(note, encoding="utf-8")
        return target


def loaded_before(checksum: str, delivery: Delivery) -> tuple[int, datetime] | None:
    """The successful run that already loaded this content: from the inbox (same checksum), or, for a file
    without side-cars, any run whose sources list a file with the same SHA-256."""
    import json

    query = "SELECT run_id, started_at FROM etl.runs WHERE status = 'succeeded' AND (inbox_checksum = :c"
    params = {"c": checksum}
    if len(delivery.files) == 1:
        from gisplatform.etl.runner import _sha256  # the run log's own file checksum, read in chunks

        sha = _sha256(delivery.main)
        query += " OR sources @> CAST(:s AS jsonb)"
        params["s"] = json.dumps([{"sha256": sha}])
    with engine().connect() as connection:
        row = connection.execute(sa.text(query + ") ORDER BY run_id LIMIT 1"), params).first()
    return (row[0], row[1]) if row else None
