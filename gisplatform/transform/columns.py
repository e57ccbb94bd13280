"""Which source column feeds which layer field, and how each text column is encoded.

Both are decided once per file (on its first batch) and then applied to every batch of that file: a file's
columns do not change encoding halfway, and per-value detection is unreliable on short strings.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

import pyarrow as pa

from gisplatform.layers import Layer
from gisplatform.sources.base import SourceBatch, SourceError
from gisplatform.text import Detection, decode_column, detect_arrow_column
from gisplatform.transform import arrow

LEGACY_ENCODINGS = ("tcvn3", "vni", "cp1258")
DECLARABLE_ENCODINGS = ("auto", "utf-8", "tcvn3", "vni", "cp1258", "latin1", "unicode")


@dataclass(frozen=True)
class ColumnMapping:
    field_to_column: dict[str, str | None]
    unused_columns: tuple[str, ...]

    def column(self, field: str) -> str | None:
        return self.field_to_column.get(field)


def map_columns(layer: Layer, columns: Sequence[str], field_map: dict[str, str], file: str) -> ColumnMapping:
    """Match layer fields to source columns: an explicit field_map first, else the layer's ``source`` names,
    compared case-insensitively. A required field without a column makes the whole file unusable."""
    by_folded = {c.strip().casefold(): c for c in columns}
    mapping: dict[str, str | None] = {}
    for f in layer.source_fields:
        if f.name in field_map:
            wanted = field_map[f.name]
            if wanted.casefold() not in by_folded:
                raise SourceError(f"{file}: the job maps field {f.name!r} to column {wanted!r}, which the file does "
                                  f"not have (columns: {', '.join(columns)})")
            mapping[f.name] = by_folded[wanted.casefold()]
            continue
        mapping[f.name] = next((by_folded[s.casefold()] for s in f.source if s.casefold() in by_folded), None)
    missing = [f for f in layer.source_fields if f.required and mapping[f.name] is None and not f.default_from]
    if missing:
        lines = [f"  - {f.name} ({f.title.en}): looked for {', '.join(f.source)}" for f in missing]
        raise SourceError(
            f"{file}: no column for required field(s) of layer {layer.name}:\n" + "\n".join(lines)
            + f"\nThe file's columns are: {', '.join(columns)}.\n"
            "Rename the column, or map it in the job (field_map: {field: COLUMN}) or with --field-map field=COLUMN."
        )
    used = {c for c in mapping.values() if c}
    return ColumnMapping(mapping, tuple(c for c in columns if c not in used))


def decide_encodings(batch: SourceBatch, columns: Sequence[str], requested: str) -> dict[str, Detection]:
    """Per text column: its encoding, detected over the whole column of the first batch unless declared."""
    if requested not in DECLARABLE_ENCODINGS:
        raise SourceError(f"encoding {requested!r} is not one of {', '.join(DECLARABLE_ENCODINGS)}")
    decisions = {}
    for column in columns:
        array = arrow.as_arrow(batch.rows[column])
        if not arrow.is_text(array) or array.null_count == len(array):
            continue  # no text to decide on
        if requested == "auto":
            decisions[column] = detect_arrow_column(array)
        else:
            name = "unicode" if requested == "latin1" and not batch.text_is_latin1 else requested
            decisions[column] = Detection(encoding=name, confidence=1.0, evidence="declared by the job or --encoding")
    return decisions


def decode_text(batch: SourceBatch, decisions: dict[str, Detection]) -> tuple[dict[str, pa.Array], list[str | None]]:
    """Decoded (NFC) text of each decided column, and per row a JSON of the raw legacy text kept for audit."""
    decoded: dict[str, pa.Array] = {}
    raw_kept: dict[str, list] = {}
    for column, detection in decisions.items():
        array = arrow.as_arrow(batch.rows[column])
        if not arrow.is_text(array):
            decoded[column] = array  # numbers or dates in a spreadsheet column
        elif detection.encoding == "ascii":
            decoded[column] = array
        elif detection.encoding == "unicode":
            decoded[column] = arrow.nfc(array)
        else:
            texts = array.to_pylist()
            decoded[column] = pa.array(decode_column(texts, detection.encoding), pa.string())
            if detection.encoding in LEGACY_ENCODINGS:
                raw_kept[column] = texts
    return decoded, _raw_json(raw_kept, len(batch))


def _raw_json(raw_kept: dict[str, list], size: int) -> list[str | None]:
    """Per row, the original bytes (hex) of text converted from a legacy encoding."""
    raw_json: list[str | None] = [None] * size
    if raw_kept:
        for i in range(size):
            # latin-1 code points are the original bytes: hex keeps the JSON plain ASCII
            entry = {c: v[i].encode("latin-1", errors="backslashreplace").hex() for c, v in raw_kept.items() if v[i]}
            raw_json[i] = json.dumps(entry) if entry else None
    return raw_json
