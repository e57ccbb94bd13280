"""The web portal served at ``/`` by :mod:`gisplatform.publish.server`.

For now a single static, bilingual page (``static/index.html``) linking to the OGC API, with how to use it
from QGIS, GDAL and Python. The map portal replaces it in a later issue.
"""
