"""GraphQL layer of the warehouse domain (data sources, scan configs and jobs, metrics, reconciliation)."""
