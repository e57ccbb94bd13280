"""OGC API - Processes of the platform (pygeoapi process plugins): parcel-report, licence-precheck, land-statistics.

Each plugin validates its inputs, runs the analysis in :mod:`gisplatform.analysis` as the read-only API role on
the ``api.*`` views (so no personal field can reach an output), and refuses bad input with
``ProcessorExecuteError``, which pygeoapi answers with HTTP 400 and the message.
"""
