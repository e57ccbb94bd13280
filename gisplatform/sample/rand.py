"""Random streams for the sample generator.

Every random number comes from ``numpy.random.SeedSequence(config.seed)``: each part of the data (the outline, the
units, one map sheet's parcels, the defects of one file, ...) draws from its own generator, spawned from that
sequence with a fixed key. Parts are therefore independent of each other and of the order they are generated
in: more parcels do not move the rivers, defects do not change the clean values, and the change run
(``change_fraction``) only differs where it changes something.
"""
from __future__ import annotations

import zlib

import numpy as np


def _key(part) -> int:
    if isinstance(part, (int, np.integer)):
        return int(part) & 0xFFFFFFFF
    return zlib.crc32(str(part).encode("utf-8"))


def rng(seed: int, *key) -> np.random.Generator:
    """The generator for one named part of the data, e.g. ``rng(seed, "sheet", "06041", 3)``."""
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(_key(k) for k in key))
    return np.random.Generator(np.random.PCG64(ss))
