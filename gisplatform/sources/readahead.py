"""Read ahead: a reader's next batch is read, and prepared, in a thread of its own while the caller works on the
current one.

Reading (GDAL, the Arrow stream) and hashing a batch (polars) release the GIL, so on a second core they cost the
run no wall time: a re-run of a million parcels spends most of its read on exactly these two, and a first load's
main thread, which paces the whole read, is spared them. At most ``depth`` batches wait, so memory stays bounded.

The reader's iterator runs wholly in the read-ahead thread (opened, read and closed there): a GDAL dataset is
used by one thread only. When the caller stops early (an error, a cancelled run), the thread stops at the next
batch and closes the iterator itself.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, TypeVar

Batch = TypeVar("Batch")
Prepared = TypeVar("Prepared")

_END = object()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def read_ahead(batches: Iterator[Batch], prepare: Callable[[Batch], Prepared],
               depth: int = 1) -> Iterator[tuple[Batch, Prepared]]:
    """``(batch, prepare(batch))`` for each batch of ``batches``, in order, read and prepared ahead of the caller;
    an error of either is raised to the caller where that batch would have come."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item) -> bool:
        """Put an item for the caller, unless the caller has stopped; False once it has."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not hand_over((batch, prepare(batch))):
                    return
            hand_over(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
            hand_over(_Failed(exc))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()
