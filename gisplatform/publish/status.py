"""The ETL status page beside the portal (``/status``): what ran, what failed and why, what is due next.

Read-only by construction: it reads the ``api.etl_runs`` and ``api.etl_rejects`` views as the API role.

Personal data: none is shown. The views carry no raw records, and a reject on a personal field (owner's name,
ID number, birth date, address, certificate serial, licence holder) has its message blanked (it might quote the
value); the page shows counts, rules, fields and reasons. The full quarantine with raw records stays internal
(``gisplatform etl rejects RUN --csv``). Run errors name files, rows and fields. A deployment that wants the
page for officers only sets ``GISPLATFORM_STATUS_TOKEN`` (or ``[status] token``): every request then needs
``?token=...`` or ``Authorization: Bearer ...``; a browser that opened a link with the token keeps a cookie.

    /status/                       the page (runs, schedule, failures), vi and en side by side
    /status/runs/<id>              one run: reject counts by rule and field, the first rejects
    /status/runs/<id>/rejects.csv  every reject of the run (no raw records)
    /status/runs.json              recent runs and next due times, for monitoring
"""
from __future__ import annotations

import csv
import hmac
import html
import io
import json
import os
import re
from datetime import datetime
from http.cookies import SimpleCookie
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import sqlalchemy as sa

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
RUN_PATH = re.compile(r"^/runs/(\d+)(/rejects\.csv)?/?$")
STATUS_VI = {"succeeded": "thành công", "failed": "thất bại", "running": "đang chạy", "skipped": "bỏ qua"}
TRIGGER_VI = {"manual": "thủ công", "schedule": "theo lịch", "inbox": "hộp thư", "schedule (catch-up)": "bù lịch"}
COOKIE = "gisplatform_status"
CSV_FIELDS = ("run_id", "layer", "file", "row_number", "natural_key", "rule", "field", "message")

CSS = """
:root { --ink: #1b2a30; --muted: #5b6b72; --line: #d9e0e3; --accent: #0b5e47; --accent-2: #e5f1ec; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", Arial, sans-serif;
       color: var(--ink); background: #f6f8f7; }
header { background: var(--accent); color: #fff; padding: 10px 18px; display: flex; align-items: center; gap: 16px; }
header .org { font-size: .8rem; opacity: .9; } header h1 { margin: 0; font-size: 1.15rem; font-weight: 650; }
header nav { margin-left: auto; } header a { color: #fff; }
main { max-width: 1280px; margin: 0 auto; padding: 16px 18px 40px; }
h2 { font-size: 1.05rem; margin: 26px 0 8px; }
.en { color: var(--muted); font-weight: normal; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 10px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.card h3 { margin: 0 0 4px; font-size: .98rem; } .card p { margin: 2px 0; font-size: .9rem; }
.table { overflow-x: auto; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { padding: 6px 9px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--accent-2); font-weight: 600; white-space: nowrap; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; white-space: nowrap; padding: 1px 8px; border-radius: 10px; font-size: .82rem; font-weight: 600; }
.succeeded { background: #dff3e7; color: #0b5e2f; } .failed { background: #fde2e0; color: #9b1c12; }
.running { background: #fff3cd; color: #7a5800; } .skipped { background: #eceff1; color: #455a64; }
.error { white-space: pre-wrap; color: #9b1c12; font-size: .86rem; min-width: 32ch; max-width: 70ch; }
.muted { color: var(--muted); font-size: .88rem; }
header .en { color: rgba(255, 255, 255, .78); }
code, .nowrap { white-space: nowrap; }
details summary { cursor: pointer; }
a { color: var(--accent); }
"""


def _token() -> str | None:
    from gisplatform.config import settings

    return os.environ.get("GISPLATFORM_STATUS_TOKEN") or settings().section("status").get("token") or None


def _fmt_time(value) -> str:
    return value.astimezone(TZ).strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def _fmt_seconds(value) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


def _short_error(error: str | None, run_id: int) -> str:
    """The first line of an error in the runs table (whole on the run's page): the table stays readable."""
    if not error:
        return ""
    first = error.strip().splitlines()[0]
    if len(first) > 160:
        first = first[:157] + "…"
    more = (f' <a href="runs/{run_id}">{_bi("chi tiết", "details")}</a>'
            if first != error.strip() else "")
    return f'<div class="error">{_esc(first)}{more}</div>'


def _bi(vi: str, en: str) -> str:
    return f'{_esc(vi)} <span class="en" lang="en">/ {_esc(en)}</span>'


class StatusApp:
    def __init__(self, engine: sa.Engine | None = None, jobs_dir=None, limit: int = 50):
        self._engine = engine
        self.jobs_dir = jobs_dir
        self.limit = limit

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            from gisplatform.publish.connection import api_engine

            self._engine = api_engine()
        return self._engine

    # -- WSGI -------------------------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO") or ""
        if path == "" and environ.get("SCRIPT_NAME"):
            start_response("301 Moved Permanently", [("Location", environ["SCRIPT_NAME"] + "/"),
                                                     ("Content-Length", "0")])
            return []
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self._answer(start_response, "405 Method Not Allowed", b'{"code": "MethodNotAllowed"}',
                                "application/json", [("Allow", "GET, HEAD")])
        token = _token()
        extra = []
        if token:
            given = self._given_token(environ)
            if not given or not hmac.compare_digest(given, token):
                body = json.dumps({"code": "Unauthorized", "description": "the status page needs its token: "
                                   "?token=... or Authorization: Bearer ..."}).encode()
                return self._answer(start_response, "401 Unauthorized", body, "application/json",
                                    [("WWW-Authenticate", 'Bearer realm="gisplatform status"')])
            extra.append(("Set-Cookie", f"{COOKIE}={token}; Path={environ.get('SCRIPT_NAME') or '/'}; HttpOnly; "
                                        "SameSite=Strict"))
        if path == "/":
            body = self.page().encode("utf-8")
            return self._answer(start_response, "200 OK", body, "text/html; charset=utf-8", extra)
        if path == "/runs.json":
            body = json.dumps(self.summary(), ensure_ascii=False, default=str).encode("utf-8")
            return self._answer(start_response, "200 OK", body, "application/json", extra)
        match = RUN_PATH.match(path)
        if match:
            run_id = int(match.group(1))
            run = self.run(run_id)
            if run is None:
                return self._not_found(start_response)
            if match.group(2):
                body = self.rejects_csv(run_id)
                return self._answer(start_response, "200 OK", body, "text/csv; charset=utf-8", extra + [
                    ("Content-Disposition", f'attachment; filename="run-{run_id}-rejects.csv"')])
            body = self.run_page(run).encode("utf-8")
            return self._answer(start_response, "200 OK", body, "text/html; charset=utf-8", extra)
        return self._not_found(start_response)

    @staticmethod
    def _given_token(environ) -> str | None:
        query = parse_qs(environ.get("QUERY_STRING") or "").get("token")
        if query:
            return query[0]
        auth = environ.get("HTTP_AUTHORIZATION") or ""
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        cookie = SimpleCookie(environ.get("HTTP_COOKIE") or "")
        return cookie[COOKIE].value if COOKIE in cookie else None

    @staticmethod
    def _answer(start_response, status, body: bytes, content_type: str, extra=()):
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))),
                                ("Cache-Control", "no-store"), *extra])
        return [body]

    def _not_found(self, start_response):
        body = json.dumps({"code": "NotFound", "description": "no such run or page"}).encode()
        return self._answer(start_response, "404 Not Found", body, "application/json")

    # -- data -------------------------------------------------------------------------------------------------
    def recent(self) -> list[dict]:
        with self.engine.connect() as connection:
            return [dict(r) for r in connection.execute(sa.text(
                "SELECT * FROM api.etl_runs ORDER BY run_id DESC LIMIT :n"), {"n": self.limit}).mappings()]

    def run(self, run_id: int) -> dict | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.text("SELECT * FROM api.etl_runs WHERE run_id = :r"),
                                     {"r": run_id}).mappings().first()
        return dict(row) if row else None

    def schedule(self) -> list[dict]:
        from gisplatform.etl.jobs import load_jobs, run_order
        from gisplatform.schedule.cron import next_due

        return [{"job": j.name, "layer": j.layer, "title": j.title, "cron": (j.schedule or {}).get("cron"),
                 "next_due": next_due(j.schedule)} for j in run_order(load_jobs(self.jobs_dir))]

    def summary(self) -> dict:
        return {"runs": self.recent(), "schedule": [{k: v for k, v in s.items() if k != "title"}
                                                    for s in self.schedule()]}

    def reject_rows(self, run_id: int, limit: int | None = None) -> list[dict]:
        query = "SELECT * FROM api.etl_rejects WHERE run_id = :r ORDER BY file, row_number, id"
        if limit:
            query += f" LIMIT {int(limit)}"
        with self.engine.connect() as connection:
            return [dict(r) for r in connection.execute(sa.text(query), {"r": run_id}).mappings()]

    def rejects_csv(self, run_id: int) -> bytes:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in self.reject_rows(run_id):
            writer.writerow({**row, "message": row["message"] if row["message"] is not None else
                             "(personal field: see gisplatform etl rejects)"})
        return buffer.getvalue().encode("utf-8-sig")  # the BOM makes Excel read Vietnamese text right

    # -- HTML -------------------------------------------------------------------------------------------------
    def _shell(self, title_vi: str, title_en: str, body: str, home: str) -> str:
        return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title_vi)} / {_esc(title_en)} · gisplatform</title><meta name="robots" content="noindex">
<style>{CSS}</style></head>
<body><header><div><div class="org">Sở Nông nghiệp và Môi trường tỉnh Lạng Sơn ·
<span lang="en">Department of Agriculture and Environment</span></div>
<h1>{_bi(title_vi, title_en)}</h1></div>
<nav><a href="{home}">{_bi("Tình trạng ETL", "ETL status")}</a></nav></header>
<main>{body}
<p class="muted">Giờ Việt Nam (UTC+7) · <span lang="en">times in Asia/Ho_Chi_Minh</span> ·
{_bi("Cập nhật", "as of")} {_esc(_fmt_time(datetime.now(TZ)))}</p></main></body></html>
"""

    def _badge(self, status: str) -> str:
        return (f'<span class="badge {_esc(status)}">{_esc(STATUS_VI.get(status, status))}'
                f' <span lang="en">· {_esc(status)}</span></span>')

    def page(self) -> str:
        runs = self.recent()
        schedule = self.schedule()
        last = {}
        for r in runs:
            if r["status"] != "skipped":
                last.setdefault(r["job"], r)
        cards = []
        for s in schedule:
            r = last.get(s["job"])
            title = s["title"]
            cards.append(
                f'<div class="card"><h3>{_esc(title.vi if title else s["job"])}</h3>'
                f'<p class="muted">{_esc(title.en) + " · " if title else ""}<code>{_esc(s["job"])}</code></p>'
                f'<p>{_bi("Lần chạy trước", "Last run")}: '
                + (f'{self._badge(r["status"])} <a href="runs/{r["run_id"]}">{_esc(_fmt_time(r["started_at"]))}'
                   f'</a>' if r else "—")
                + f'</p><p>{_bi("Lần chạy tới", "Next due")}: '
                f'{_esc(_fmt_time(s["next_due"])) if s["next_due"] else _bi("không có lịch", "not scheduled")}'
                f'{f" <code>{_esc(s['cron'])}</code>" if s["cron"] else ""}</p></div>')
        rows = []
        for r in runs:
            rejected = (f'<a href="runs/{r["run_id"]}">{r["rejected"]:,}</a>' if r["rejected"] else "0")
            rows.append(
                f'<tr><td class="n"><a href="runs/{r["run_id"]}">{r["run_id"]}</a></td><td>{_esc(r["job"])}</td>'
                f'<td>{self._badge(r["status"])}</td>'
                f'<td>{_esc(TRIGGER_VI.get(r["trigger"], r["trigger"]))}'
                f'{"" if r["trigger"] not in TRIGGER_VI else f" <span class=\"en\">/ {_esc(r['trigger'])}</span>"}'
                f'{f" ({_esc(r['inbox_file'])})" if r["inbox_file"] else ""}</td>'
                f'<td class="n">{r["attempt"]}</td><td class="nowrap">{_esc(_fmt_time(r["started_at"]))}</td>'
                f'<td class="n">{_esc(_fmt_seconds(r["seconds"]))}</td>'
                + "".join(f'<td class="n">{r[k]:,}</td>' for k in ("read", "inserted", "updated", "unchanged"))
                + f'<td class="n">{rejected}</td><td class="n">{r["retired"]:,}</td>'
                f'<td>{_short_error(r["error"], r["run_id"])}</td></tr>')
        head = "".join(f'<th{" class=n" if n else ""}>{_bi(vi, en)}</th>' for vi, en, n in (
            ("Lượt", "Run", 1), ("Công việc", "Job", 0), ("Kết quả", "Status", 0), ("Kích hoạt", "Trigger", 0),
            ("Lần thử", "Try", 1), ("Bắt đầu", "Started", 0), ("Thời gian", "Duration", 1), ("Đọc", "Read", 1),
            ("Thêm", "Inserted", 1), ("Sửa", "Updated", 1), ("Giữ nguyên", "Unchanged", 1),
            ("Loại", "Rejected", 1), ("Hết hiệu lực", "Retired", 1), ("Lỗi", "Error", 0)))
        failures = sum(1 for r in runs if r["status"] == "failed")
        body = (f'<h2>{_bi("Các công việc", "Jobs")}</h2><div class="cards">{"".join(cards)}</div>'
                f'<h2>{_bi("Các lượt chạy gần đây", "Recent runs")} '
                f'<span class="muted">({len(runs)}; {_bi("thất bại", "failed")}: {failures})</span></h2>'
                f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>'
                + ("".join(rows) or f'<tr><td colspan="14">{_bi("Chưa có lượt chạy nào", "No runs yet")}</td></tr>')
                + '</tbody></table></div>'
                f'<p class="muted">{_bi("Không hiển thị dữ liệu cá nhân", "No personal data is shown")}: '
                f'{_bi("chỉ số lượng, quy tắc và lý do", "counts, rules and reasons only")}.</p>')
        return self._shell("Tình trạng nạp dữ liệu", "ETL status", body, "./")

    def run_page(self, run: dict) -> str:
        rejects = self.reject_rows(run["run_id"], 500)
        by_rule: dict[tuple, int] = {}
        for row in self.reject_rows(run["run_id"]):
            key = (row["rule"], row["field"] or "")
            by_rule[key] = by_rule.get(key, 0) + 1
        facts = [
            (_bi("Công việc", "Job"), _esc(run["job"])), (_bi("Lớp", "Layer"), _esc(run["layer"])),
            (_bi("Kết quả", "Status"), self._badge(run["status"])),
            (_bi("Kích hoạt", "Trigger"), _esc(run["trigger"]) + (f" ({_esc(run['inbox_file'])})"
                                                                   if run["inbox_file"] else "")),
            (_bi("Lần thử", "Try"), str(run["attempt"])), (_bi("Bắt đầu", "Started"), _esc(_fmt_time(run["started_at"]))),
            (_bi("Thời gian", "Duration"), _esc(_fmt_seconds(run["seconds"]))),
            (_bi("Đọc / thêm / sửa / giữ nguyên / loại / hết hiệu lực", "Read / inserted / updated / unchanged / "
                 "rejected / retired"), " / ".join(f"{run[k]:,}" for k in (
                     "read", "inserted", "updated", "unchanged", "rejected", "retired"))),
        ]
        if run["error"]:
            facts.append((_bi("Lỗi", "Error"), f'<div class="error">{_esc(run["error"])}</div>'))
        if run.get("quarantine_pruned_at"):  # gisplatform.load.retention: the counts above stay, the rows went
            facts.append((_bi("Bản ghi bị loại", "Rejected rows"),
                          _bi(f"đã xoá theo chính sách lưu giữ lúc {_fmt_time(run['quarantine_pruned_at'])}",
                              f"pruned by the retention policy at {_fmt_time(run['quarantine_pruned_at'])}")))
        summary = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
        rule_rows = "".join(f"<tr><td><code>{_esc(rule)}</code></td><td>{_esc(field)}</td><td class=n>{n:,}</td></tr>"
                            for (rule, field), n in sorted(by_rule.items(), key=lambda kv: -kv[1]))
        reject_rows = "".join(
            f'<tr><td>{_esc(r["file"])}</td><td class="n">{_esc(r["row_number"])}</td><td>{_esc(r["natural_key"])}'
            f'</td><td><code>{_esc(r["rule"])}</code></td><td>{_esc(r["field"])}</td><td>'
            + (_esc(r["message"]) if r["message"] is not None else
               f'<span class="muted">{_bi("trường cá nhân, xem trong hệ thống", "personal field, see internally")}'
               '</span>')
            + "</td></tr>" for r in rejects)
        body = (f'<div class="table"><table>{summary}</table></div>')
        if by_rule:
            body += (f'<h2>{_bi("Bản ghi bị loại theo quy tắc", "Rejected rows by rule")} · '
                     f'<a href="{run["run_id"]}/rejects.csv" download>{_bi("Tải CSV", "Download CSV")}</a></h2>'
                     f'<div class="table"><table><thead><tr><th>{_bi("Quy tắc", "Rule")}</th>'
                     f'<th>{_bi("Trường", "Field")}</th><th class=n>{_bi("Số dòng", "Rows")}</th></tr></thead>'
                     f'<tbody>{rule_rows}</tbody></table></div>'
                     f'<h2>{_bi("Các bản ghi bị loại", "Rejected rows")} '
                     f'<span class="muted">({len(rejects):,} / {run["rejected"]:,})</span></h2>'
                     f'<div class="table"><table><thead><tr><th>{_bi("Tệp", "File")}</th>'
                     f'<th class=n>{_bi("Dòng", "Row")}</th><th>{_bi("Khoá", "Key")}</th>'
                     f'<th>{_bi("Quy tắc", "Rule")}</th><th>{_bi("Trường", "Field")}</th>'
                     f'<th>{_bi("Lý do", "Reason")}</th></tr></thead><tbody>{reject_rows}</tbody></table></div>')
        return self._shell(f"Lượt chạy {run['run_id']}", f"Run {run['run_id']}", body, "../")


def status_app(**kwargs) -> StatusApp:
    return StatusApp(**kwargs)
