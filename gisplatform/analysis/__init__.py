"""Spatial analysis: regulatory conflict rules (rules, conflicts), land statistics, reports for processes."""
