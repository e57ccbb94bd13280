"""Read-ahead (gisplatform.sources.readahead): batches come in order with what was prepared for them, errors where
the batch would have come, at most ``depth`` batches waiting, and a reader stopped early is closed in its thread."""
from __future__ import annotations

import threading
import time
from contextlib import closing

import pytest

from gisplatform.sources.readahead import read_ahead


def test_batches_come_in_order_with_what_was_prepared_for_them():
    assert list(read_ahead(iter(range(7)), lambda n: n * n, depth=2)) == [(n, n * n) for n in range(7)]
    assert list(read_ahead(iter([]), lambda n: n)) == []


@pytest.mark.parametrize("fails_in", ["reader", "prepare"])
def test_an_error_is_raised_where_its_batch_would_have_come(fails_in):
    def reader():
        yield from (0, 1, 2)
        if fails_in == "reader":
            raise OSError("row 3 unreadable")
        yield 3

    def prepare(n):
        if fails_in == "prepare" and n == 3:
            raise OSError("row 3 unreadable")
        return n

    got = []
    with pytest.raises(OSError, match="row 3 unreadable"):
        for batch, _ in read_ahead(reader(), prepare, depth=4):
            got.append(batch)
    assert got == [0, 1, 2]


def test_it_reads_ahead_at_most_depth_batches():
    pulled = []

    def reader():
        for n in range(20):
            pulled.append(n)
            yield n

    with closing(read_ahead(reader(), lambda n: n, depth=3)) as batches:
        assert next(batches) == (0, 0)
        deadline = time.monotonic() + 10
        while len(pulled) < 5 and time.monotonic() < deadline:  # one taken, three waiting, one being handed over
            time.sleep(0.01)
        time.sleep(0.2)
        assert len(pulled) == 5


def test_a_reader_stopped_early_is_closed_in_its_own_thread():
    closed_in = []

    def reader():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed_in.append(threading.current_thread().name)

    before = threading.active_count()
    with closing(read_ahead(reader(), lambda n: n, depth=2)) as batches:
        assert [next(batches)[0] for _ in range(3)] == [0, 1, 2]
    assert closed_in == ["read-ahead"]
    assert threading.active_count() == before
