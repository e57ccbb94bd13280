"""Telling people a run failed: e-mail (SMTP) and/or a webhook (JSON POST), as set in ``gisplatform.toml``::

    [notify]
    on = "failure"                    # failure (default): after the last try failed | always: every run
    email_to = ["gis@sonnmt.langson.gov.vn"]
    webhook = "https://chat.example/hooks/etl"
    status_url = "https://gis.langson.gov.vn/status"   # linked from the message
    [notify.smtp]
    host = "smtp.langson.gov.vn"
    port = 587
    starttls = true
    user = "etl"                      # the password comes from GISPLATFORM_SMTP_PASSWORD, never the file
    from = "ETL <etl@sonnmt.langson.gov.vn>"

A notification that cannot be delivered is logged; it never fails the run or stops the scheduler.
"""
from __future__ import annotations

import json
import logging
import os
import smtplib
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage

LOGGER = logging.getLogger("gisplatform.schedule.notify")
STATUS_VI = {"succeeded": "thành công", "failed": "thất bại", "skipped": "bỏ qua"}


@dataclass
class NotifySettings:
    on: str = "failure"
    email_to: list[str] = field(default_factory=list)
    webhook: str | None = None
    status_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    mail_from: str = "gisplatform ETL <etl@localhost>"
    timeout: float = 20.0

    @classmethod
    def from_config(cls) -> "NotifySettings":
        from gisplatform.config import settings

        section = settings().section("notify")
        smtp = section.get("smtp") or {}
        to = section.get("email_to") or []
        on = section.get("on", "failure")
        if on not in ("failure", "always"):
            raise ValueError(f"[notify] on = {on!r}: write \"failure\" or \"always\"")
        return cls(on=on, email_to=[to] if isinstance(to, str) else list(to),
                   webhook=os.environ.get("GISPLATFORM_WEBHOOK_URL") or section.get("webhook"),
                   status_url=section.get("status_url"), smtp_host=smtp.get("host"),
                   smtp_port=int(smtp.get("port", 25)), smtp_starttls=bool(smtp.get("starttls", False)),
                   smtp_ssl=bool(smtp.get("ssl", False)), smtp_user=smtp.get("user"),
                   smtp_password=os.environ.get("GISPLATFORM_SMTP_PASSWORD") or smtp.get("password"),
                   mail_from=smtp.get("from", cls.mail_from))

    @property
    def enabled(self) -> bool:
        return bool(self.webhook or (self.email_to and self.smtp_host))


@dataclass
class RunEvent:
    """What the message says: one job's outcome after all its tries."""
    job: str
    status: str  # succeeded | failed | skipped
    trigger: str
    attempts: int
    run_id: int | None = None
    error: str | None = None
    counts: dict = field(default_factory=dict)
    inbox_file: str | None = None

    def as_json(self) -> dict:
        return {"event": f"etl.run.{self.status}", "job": self.job, "status": self.status, "trigger": self.trigger,
                "attempts": self.attempts, "run_id": self.run_id, "error": self.error, "counts": self.counts,
                "inbox_file": self.inbox_file}


class Notifier:
    def __init__(self, config: NotifySettings | None = None):
        self.config = config if config is not None else NotifySettings.from_config()

    def wanted(self, event: RunEvent) -> bool:
        return self.config.enabled and (event.status == "failed" or self.config.on == "always")

    def send(self, event: RunEvent) -> None:
        if not self.wanted(event):
            return
        if self.config.email_to and self.config.smtp_host:
            try:
                self._mail(event)
            except (OSError, smtplib.SMTPException) as exc:
                LOGGER.error("could not e-mail the result of job %s to %s: %s", event.job, self.config.email_to, exc)
        if self.config.webhook:
            try:
                self._post(event)
            except OSError as exc:
                LOGGER.error("could not post the result of job %s to the webhook: %s", event.job, exc)

    def subject(self, event: RunEvent) -> str:
        run = f" (run {event.run_id})" if event.run_id else ""
        return (f"[gisplatform] ETL {event.job}: {STATUS_VI.get(event.status, event.status)} / "
                f"{event.status}{run}")

    def body(self, event: RunEvent) -> str:
        lines = [
            f"Công việc / Job: {event.job}",
            f"Kết quả / Result: {STATUS_VI.get(event.status, event.status)} / {event.status}",
            f"Kích hoạt / Trigger: {event.trigger}",
            f"Số lần thử / Attempts: {event.attempts}",
        ]
        if event.run_id:
            lines.append(f"Lượt chạy / Run: {event.run_id}")
        if event.inbox_file:
            lines.append(f"Tệp / File: {event.inbox_file}")
        if event.counts:
            lines.append("Số bản ghi / Rows: " + ", ".join(f"{k} {v}" for k, v in event.counts.items()))
        if event.error:
            lines += ["", "Lỗi / Error:", event.error]
        if self.config.status_url:
            lines += ["", f"Xem chi tiết / Details: {self.config.status_url}"]
        lines += ["", "gisplatform etl status · gisplatform etl rejects RUN"]
        return "\n".join(lines) + "\n"

    def _mail(self, event: RunEvent) -> None:
        message = EmailMessage()
        message["Subject"] = self.subject(event)
        message["From"] = self.config.mail_from
        message["To"] = ", ".join(self.config.email_to)
        message.set_content(self.body(event))
        smtp_class = smtplib.SMTP_SSL if self.config.smtp_ssl else smtplib.SMTP
        with smtp_class(self.config.smtp_host, self.config.smtp_port, timeout=self.config.timeout) as smtp:
            if self.config.smtp_starttls:
                smtp.starttls()
            if self.config.smtp_user:
                smtp.login(self.config.smtp_user, self.config.smtp_password or "")
            smtp.send_message(message)

    def _post(self, event: RunEvent) -> None:
        payload = {**event.as_json(), "text": self.subject(event), "status_url": self.config.status_url}
        request = urllib.request.Request(self.config.webhook, method="POST",
                                         data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                                         headers={"Content-Type": "application/json; charset=utf-8",
                                                  "User-Agent": "gisplatform-etl"})
        with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
            response.read()
