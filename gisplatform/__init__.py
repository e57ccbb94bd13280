"""gisplatform: an open GIS data platform for a Vietnamese provincial Department of Agriculture and Environment."""

__version__ = "0.1.0"
