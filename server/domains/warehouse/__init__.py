"""Warehouse (seed 003): data sources and connectors, scan configs and jobs, metric series, reconciliation."""
