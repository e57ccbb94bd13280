"""The few things we need from a DBF header that OGR does not tell us: field widths and the language driver."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DbfField:
    name: str
    type: str
    length: int


@dataclass(frozen=True)
class DbfHeader:
    records: int
    language_driver: int  # byte 29: code page mark (0 = none, 0x57 = ANSI/1252 ...)
    fields: tuple[DbfField, ...]


def read_dbf_header(path: Path) -> DbfHeader | None:
    """Parse a dBASE III/IV header; None if the file is missing or not a DBF."""
    if not path.exists():
        candidates = [p for p in path.parent.glob(path.stem + ".*") if p.suffix.lower() == ".dbf"]
        if not candidates:
            return None
        path = candidates[0]
    with path.open("rb") as fh:
        head = fh.read(32)
        if len(head) < 32:
            return None
        records, header_length = struct.unpack("<IH", head[4:10])
        language_driver = head[29]
        fields = []
        descriptors = fh.read(max(header_length - 32, 0))
    for offset in range(0, len(descriptors) - 31, 32):
        chunk = descriptors[offset:offset + 32]
        if chunk[0] == 0x0D:
            break
        name = chunk[:11].split(b"\x00", 1)[0].decode("latin-1")
        fields.append(DbfField(name=name, type=chr(chunk[11]), length=chunk[16]))
    return DbfHeader(records=records, language_driver=language_driver, fields=tuple(fields))
