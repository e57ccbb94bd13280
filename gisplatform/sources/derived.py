"""Layers computed from another layer in the database, read like any other source.

Water-source protection corridors are derived from the water sources with the per-class widths declared in
``layers/water_protection_corridors.yml`` (``derive:``). The result goes through the same validation, merge and
history as a loaded file, so corridors are versioned and reconciled like everything else.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd
import shapely

from gisplatform.db.engine import engine
from gisplatform.layers import Layer, get_layer
from gisplatform.sources.base import FileInfo, SourceBatch, SourceError, SourceOptions
from gisplatform.load.staging import quote


def _width_sql(widths: dict) -> str:
    """CASE expression: width in metres by water_class and urban flag."""
    cases = []
    for water_class, by_setting in widths.items():
        urban, rural = float(by_setting["urban"]), float(by_setting["rural"])
        cases.append(f"WHEN '{water_class}' THEN CASE WHEN coalesce(urban, false) THEN {urban} ELSE {rural} END")
    return "CASE water_class " + " ".join(cases) + " END"


class DerivedReader:
    """Protection corridors: buffer of each water body by its width, minus the water body (from the bank edge)."""

    def __init__(self, target: Layer, options: SourceOptions | None = None):
        self.target = target
        self.options = options or SourceOptions()
        spec = target.derive or {}
        if not spec.get("from") or not spec.get("widths_m"):
            raise SourceError(f"{target.path}: 'derive:' needs 'from:' and 'widths_m:' to derive {target.name}")
        self.source = get_layer(spec["from"])
        self.widths = spec["widths_m"]
        self.where = spec.get("where")
        self.basis = (spec.get("basis") or {}).get("vi", "")
        self.path = f"derived from {self.source.qualified_table}"

    def _query(self) -> str:
        condition = f"AND coalesce({quote(self.where)}, false)" if self.where else ""
        width = _width_sql(self.widths)
        return f"""
            SELECT source_code, name AS source_name, water_class, {width} AS width_m,
                   :basis AS basis, true AS derived,
                   ST_AsBinary(ST_Multi(ST_CollectionExtract(ST_Difference(ST_Buffer(geom, {width}), geom), 3))) AS wkb
            FROM {self.source.qualified_table}
            WHERE retired_at IS NULL AND water_class IN ({', '.join(f"'{c}'" for c in self.widths)}) {condition}
            ORDER BY source_code"""

    def info(self) -> FileInfo:
        columns = ("source_code", "source_name", "water_class", "width_m", "basis", "derived")
        return FileInfo(path=self.path, columns=columns, declared_crs=self.source.storage_srid)

    def batches(self, batch_size: int) -> Iterator[SourceBatch]:
        import sqlalchemy as sa  # here, not at the top: a run's import of the ETL need not pay for it

        with engine().connect() as connection:
            frame = pd.read_sql_query(sa.text(self._query()), connection, params={"basis": self.basis})
        wkb = frame.pop("wkb").to_numpy(dtype=object)
        wkb = np.array([bytes(w) if w is not None else None for w in wkb], dtype=object)
        for start in range(0, max(len(frame), 1), batch_size):
            part = frame.iloc[start:start + batch_size].reset_index(drop=True).astype(object)
            if not len(part):
                return
            chunk = wkb[start:start + batch_size]
            yield SourceBatch(file=self.path, rows=part, row_numbers=np.arange(start + 1, start + len(part) + 1),
                              geometry=shapely.from_wkb(chunk), crs=self.source.storage_srid, raw_geometry_wkb=chunk)
