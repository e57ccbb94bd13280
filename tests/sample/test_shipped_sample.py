"""The sample in the repository is exactly what the generator makes with the default settings."""
from __future__ import annotations

import filecmp
from pathlib import Path

from gisplatform.sample import SampleConfig, generate_sample
from tests.conftest import SAMPLE


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_shipped_sample_regenerates_byte_for_byte(tmp_path):
    generate_sample(tmp_path, SampleConfig())
    assert _files(tmp_path) == _files(SAMPLE)
    different = [name for name in _files(SAMPLE) if not filecmp.cmp(tmp_path / name, SAMPLE / name, shallow=False)]
    assert different == [], "regenerate it: gisplatform sample generate --out sample"
