"""Versioned code tables (land-use codes, admin units, mineral groups) for vectorised lookups by date.

A code is valid on a date when ``valid_from <= date < valid_to`` (``valid_to`` empty = still valid). The same
code can have several rows: LUC was relabelled in 2024, and a commune code reused by a post-2025 unit means a
different commune before and after 2025-07-01.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gisplatform.layers import CODES_SCHEMA  # (not db.schema: the ETL need not import GeoAlchemy2)

FAR_FUTURE = np.datetime64("9999-12-31", "D")


@dataclass
class CodeTable:
    name: str
    code: np.ndarray  # object
    valid_from: np.ndarray  # datetime64[D]
    valid_to: np.ndarray  # datetime64[D], FAR_FUTURE when open
    columns: dict[str, np.ndarray]  # other columns, object arrays with None for empty

    @classmethod
    def from_frame(cls, name: str, frame: pd.DataFrame) -> "CodeTable":
        to = pd.to_datetime(frame["valid_to"]).to_numpy().astype("datetime64[D]")
        others = {
            c: np.array([None if pd.isna(v) else v for v in frame[c]], dtype=object)
            for c in frame.columns if c not in ("code", "valid_from", "valid_to")
        }
        return cls(
            name=name,
            code=frame["code"].to_numpy(dtype=object),
            valid_from=pd.to_datetime(frame["valid_from"]).to_numpy().astype("datetime64[D]"),
            valid_to=np.where(np.isnat(to), FAR_FUTURE, to),
            columns=others,
        )

    def _rows_of(self, code) -> np.ndarray:
        return np.flatnonzero(self.code == code)

    def _row_index(self, codes: np.ndarray, dates: np.ndarray | None) -> np.ndarray:
        """Index of the table row valid for each (code, date); -1 where none is. ``dates=None``: latest row.

        Work per distinct code (a batch has at most a few hundred), not per table row x batch row.
        """
        labels, uniques = pd.factorize(np.asarray(codes, dtype=object))
        result = np.full(len(labels), -1, dtype=np.int64)
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], np.arange(len(uniques) + 1))
        for k, code in enumerate(uniques):
            rows = self._rows_of(code)
            if not len(rows):
                continue
            idx = order[bounds[k]:bounds[k + 1]]
            if dates is None:
                result[idx] = rows[np.argmax(self.valid_from[rows])]
                continue
            d = np.asarray(dates, dtype="datetime64[D]")[idx]
            for row in rows:
                hit = (d >= self.valid_from[row]) & (d < self.valid_to[row]) & (result[idx] < 0)
                result[idx[hit]] = row
        return result

    def valid_at(self, codes: np.ndarray, dates: np.ndarray) -> np.ndarray:
        """True where the code exists on that date."""
        return self._row_index(codes, dates) >= 0

    def known(self, codes: np.ndarray) -> np.ndarray:
        """True where the code exists at any date (tested once per distinct code: np.isin sorts object arrays)."""
        labels, uniques = pd.factorize(np.asarray(codes, dtype=object))
        found = np.append(np.isin(np.asarray(uniques, dtype=object), self.code), False)
        return found[labels]  # label -1 (a missing code) takes the appended False

    def attribute(self, codes: np.ndarray, dates: np.ndarray | None, column: str) -> np.ndarray:
        """The column's value in the row valid on each date (latest row when dates is None), else None."""
        index = self._row_index(codes, dates)
        values = self.columns[column]
        return np.where(index >= 0, values[np.maximum(index, 0)], None)

    def validity_text(self, code: str) -> str:
        """How a code's validity reads in a message: 'BHK is valid 2014-07-01 – 2024-08-01'."""
        rows = self._rows_of(code)
        if not len(rows):
            return f"{code!r} is not in the {self.name} code table"
        spans = [f"{self.valid_from[r]} – {'now' if self.valid_to[r] == FAR_FUTURE else self.valid_to[r]}"
                 for r in rows]
        return f"{code} is valid " + ", ".join(spans)


def load_code_tables(cursor) -> dict[str, CodeTable]:
    """Every code table, read with ``cursor``: a DB-API cursor of the ADBC driver (Arrow results), the run's."""
    cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
                   (CODES_SCHEMA,))
    tables = {}
    for (name,) in cursor.fetchall():
        cursor.execute(f'SELECT * FROM {CODES_SCHEMA}."{name}"')
        tables[name] = CodeTable.from_frame(name, cursor.fetch_arrow_table().to_pandas())
    return tables
