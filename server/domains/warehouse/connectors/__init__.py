"""Warehouse connectors: one interface (base.Connector), one implementation per data source type,
each with the warehouse's own client library, and the SQL building helpers (sql.py).

    from server.domains.warehouse.connectors import ConnectionSpec, open_connector, sql
"""

from server.domains.warehouse.connectors import sql  # noqa: F401
from server.domains.warehouse.connectors.base import (  # noqa: F401
    DEFAULT_CHUNK_ROWS,
    DEFAULT_TIMEOUT_SECONDS,
    ColumnInfo,
    ConnectionSpec,
    Connector,
    ConnectorError,
    Rows,
    TableInfo,
    connector_class,
    jsonable,
    open_connector,
)
from server.domains.warehouse.connectors.bigquery import BigQueryConnector  # noqa: F401
from server.domains.warehouse.connectors.clickhouse import ClickHouseConnector  # noqa: F401
from server.domains.warehouse.connectors.duckdb_file import DuckDBConnector  # noqa: F401
from server.domains.warehouse.connectors.postgres import PostgresConnector  # noqa: F401
