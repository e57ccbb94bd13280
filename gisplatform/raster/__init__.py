"""Raster layers: a digital elevation model and scanned, georeferenced land-use planning maps.

They go through the same stages as vectors, with the raster counterpart of each:

    layers.py    ``layers/<name>.yml`` with ``kind: raster`` (CRS, resolution, nodata, resampling, categories)
    ingest.py    ETL: read and validate a GeoTIFF, reproject to VN-2000 TM-3 107-15 where needed, write a
                 Cloud-Optimized GeoTIFF into the managed store, record the version in the run log
    store.py     the managed folder ``<raster dir>/<layer>/<version>.tif`` and its ``current.tif`` pointer
    tiles.py     PNG map tiles (hillshaded elevation, planning colours) for the portal
    coverages.py the OGC API - Coverages collections (pygeoapi's rasterio provider on ``current.tif``)
    zonal.py     zonal statistics of polygons (elevation, slope, planning classes) and its pygeoapi process
"""
