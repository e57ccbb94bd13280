"""Where a run's per-row work happens: in the run's own process (default) or on a Dask cluster (``dask``)."""
EXECUTORS = ("local", "dask")
