"""What the three processes share: input validation helpers, the API connection, error translation."""
from __future__ import annotations

import datetime as dt
import logging
from contextlib import contextmanager
from typing import Any, Iterator

import sqlalchemy as sa
from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

from gisplatform.analysis.inputs import InputError
from gisplatform.publish.connection import api_engine

LOGGER = logging.getLogger(__name__)
JOB_CONTROL = ["sync-execute", "async-execute"]  # large inputs run as jobs (processes.manager)
LARGE_AREA_M2 = 25e6  # a report or pre-check polygon above 25 km² runs as a job
LARGE_PARCELS = 200_000  # a statistics table over more parcels than this runs as a job


def _text(vi: str, en: str) -> dict:
    return {"vi": vi, "en": en}


def string_input(title_vi: str, title_en: str, description: str, min_occurs: int = 0, **schema) -> dict:
    return {"title": _text(title_vi, title_en), "description": description, "minOccurs": min_occurs,
            "maxOccurs": 1, "schema": {"type": "string", **schema}}


def object_input(title_vi: str, title_en: str, description: str, schema: dict | None = None) -> dict:
    return {"title": _text(title_vi, title_en), "description": description, "minOccurs": 0, "maxOccurs": 1,
            "schema": schema or {"type": "object"}}


def json_output(title_vi: str, title_en: str) -> dict:
    return {"title": _text(title_vi, title_en),
            "schema": {"type": "object"}}


def metadata(pid: str, title: dict, description: dict, keywords: list[str], inputs: dict, outputs: dict,
             example: dict) -> dict:
    return {"version": "1.0.0", "id": pid, "title": title, "description": description, "keywords": keywords,
            "jobControlOptions": JOB_CONTROL, "links": [], "inputs": inputs, "outputs": outputs,
            "example": example}


def check_keys(data: Any, allowed: set[str]) -> dict:
    if not isinstance(data, dict):
        raise InputError("inputs must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InputError(f"unknown input(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(sorted(allowed))}")
    return data


def text_value(data: dict, name: str, max_length: int = 100) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool) or len(str(value)) > max_length:
        raise InputError(f"{name} must be a string of at most {max_length} characters")
    return str(value).strip()


def number_value(data: dict, name: str, minimum: float = 0) -> float | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(str(value).replace(",", ".")) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or number != number or number < minimum:
        raise InputError(f"{name} must be a number ≥ {minimum}, not {str(value)[:40]!r}")
    return number


def date_value(data: dict, name: str) -> dt.date | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"{name} must be a date as YYYY-MM-DD, not {str(value)[:40]!r}") from None


def live_parcels() -> int:
    """Live parcels as the last ETL run counted them (api.catalogue): a cheap size of the database."""
    with api_engine().connect() as connection:
        return connection.execute(sa.text(
            "SELECT coalesce(max(features), 0) FROM api.catalogue WHERE layer = 'cadastral_parcels'")).scalar()


@contextmanager
def api_transaction() -> Iterator[sa.Connection]:
    """A transaction as the read-only API role (temporary tables only live until its end)."""
    with api_engine().begin() as connection:
        connection.execute(sa.text("SET LOCAL statement_timeout = '300s'"))
        yield connection


class AnalysisProcessor(BaseProcessor):
    """Translates input errors into 400 answers and hides internal errors behind a neutral message."""

    def execute(self, data: dict, outputs: dict | None = None):
        try:
            return self.run(data or {})
        except InputError as exc:
            raise ProcessorExecuteError(user_msg=str(exc)) from None
        except ProcessorExecuteError:
            raise
        except sa.exc.DBAPIError as exc:
            # database messages may quote row values: log them, answer without them
            LOGGER.exception("process %s failed in the database", self.metadata.get("id"))
            if getattr(getattr(exc, "orig", None), "pgcode", "") == "57014":
                raise ProcessorExecuteError(user_msg="the computation took too long; use a smaller input or "
                                                     "run it as a job (Prefer: respond-async)") from None
            raise ProcessorExecuteError(user_msg="the database could not compute this; check the inputs") from None
        except Exception:  # noqa: BLE001 - a bug: logged with its details, answered without them
            LOGGER.exception("process %s failed", self.metadata.get("id"))
            raise ProcessorExecuteError(user_msg="internal error while computing the result") from None

    def is_large(self, data: dict) -> bool:
        """True when the input should run as a job without being asked (see processes.manager)."""
        return False

    def run(self, data: dict):  # pragma: no cover - implemented by each process
        raise NotImplementedError
