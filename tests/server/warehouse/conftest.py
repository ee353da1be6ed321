from tests.support.warehouse import chdb_warehouse, duckdb_warehouse, pg_warehouse, warehouse_rows  # noqa: F401  fixtures
