"""Google BigQuery with `google-cloud-bigquery`.

- The data source's `database_name` is the GCP project that runs (and pays for) the queries; its
  password is the service-account JSON key (encrypted at rest like any password). Without one,
  application default credentials are used (`GOOGLE_APPLICATION_CREDENTIALS`, the metadata
  server).
- `host`, when set to something other than `bigquery.googleapis.com`, is the API endpoint (a
  BigQuery emulator, a private service connect endpoint): `https://` is added when no scheme is
  given.
- Parameters are BigQuery query parameters (`@name`, typed `TIMESTAMP`, `INT64`, `FLOAT64`,
  `STRING`, `BOOL`).
- The client is synchronous: calls run in worker threads; results are read page by page
  (`page_size` = chunk size), one page in memory at a time. A job's timeout is the spec's.

Extra params: `location` (e.g. `EU`), `dataset` (default dataset; introspection lists only
it), `maximum_bytes_billed` (refuse queries that would scan more).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from sqlglot import exp

from server.domains.warehouse.connectors.base import (
    MAX_TABLES,
    ColumnInfo,
    ConnectionSpec,
    Connector,
    ConnectorError,
    Rows,
    TableInfo,
    in_thread,
    param_type,
    register,
)
from server.domains.warehouse.connectors.sql import Statement
from server.domains.warehouse.models import DataSourceType

DEFAULT_HOST = "bigquery.googleapis.com"
_DONE = object()


def bq_type(value: Any) -> str:
    return param_type(value, {"bool": "BOOL", "int": "INT64", "float": "FLOAT64", "datetime": "TIMESTAMP",
                              "date": "DATE", "text": "STRING"})


def parse_credentials(text: str | None) -> dict | None:
    """The service-account JSON key as a dict (None: use application default credentials);
    ConnectorError (kind config) when it is not a service-account key."""
    if not text:
        return None
    try:
        info = json.loads(text)
    except ValueError:
        raise ConnectorError("BigQuery: the password must be a service-account JSON key", kind="config") from None
    if not isinstance(info, dict) or info.get("type") != "service_account" or "private_key" not in info \
            or "client_email" not in info:
        raise ConnectorError("BigQuery: the password must be a service-account JSON key "
                             "(with type `service_account`, `client_email` and `private_key`)", kind="config")
    return info


@register
class BigQueryConnector(Connector):
    db_type = DataSourceType.BIGQUERY
    dialect = "bigquery"
    label = "BigQuery"

    def __init__(self, spec: ConnectionSpec):
        super().__init__(spec)
        self.client: Any = None

    def _open(self) -> Any:
        from google.api_core.client_options import ClientOptions
        from google.cloud import bigquery

        info = parse_credentials(self.spec.password)
        credentials = None
        if info is not None:
            from google.oauth2 import service_account

            try:
                credentials = service_account.Credentials.from_service_account_info(
                    info, scopes=["https://www.googleapis.com/auth/bigquery"])
            except (ValueError, KeyError) as e:
                raise ConnectorError(f"BigQuery: the service-account key is not usable: {e}", kind="config") from None
        options = None
        host = (self.spec.host or "").strip()
        if host and host != DEFAULT_HOST:
            options = ClientOptions(api_endpoint=host if "://" in host else f"https://{host}")
        extra = self.spec.extra or {}
        job_config = bigquery.QueryJobConfig(use_legacy_sql=False)
        if extra.get("dataset"):
            job_config.default_dataset = f"{self.spec.database}.{extra['dataset']}"
        if extra.get("maximum_bytes_billed"):
            job_config.maximum_bytes_billed = int(extra["maximum_bytes_billed"])
        return bigquery.Client(project=self.spec.database, credentials=credentials, client_options=options,
                               location=extra.get("location") or None, default_query_job_config=job_config)

    async def connect(self) -> None:
        self.client = await in_thread(self._open)

    async def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await in_thread(client.close)

    def render(self, statement: Statement) -> tuple[str, list[Any]]:
        """`@name` placeholders and the list of typed `ScalarQueryParameter`s."""
        from google.cloud import bigquery

        names: list[str] = []

        def swap(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Placeholder):
                if node.name not in names:
                    names.append(node.name)
                return exp.var(f"@{node.name}")
            return node

        sql = statement.expression.transform(swap).sql(dialect=self.dialect)
        return sql, [bigquery.ScalarQueryParameter(n, bq_type(statement.params[n]), statement.params[n]) for n in names]

    def _retry(self) -> Any:
        """The client's retries, bounded by our timeout (the library's default keeps retrying an
        unreachable API for 10 minutes, in a thread nobody waits for any more)."""
        from google.cloud.bigquery.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_timeout(self.timeout)

    def _job(self, statement: Statement, dry_run: bool = False) -> Any:
        from google.cloud import bigquery

        sql, params = self.render(statement)
        config = bigquery.QueryJobConfig(query_parameters=params, dry_run=dry_run, use_query_cache=not dry_run)
        config.job_timeout_ms = int(self.timeout * 1000)
        # job_retry=None: the library otherwise wraps the insert in a retry of its own (minutes long).
        return self.client.query(sql, job_config=config, timeout=self.timeout, retry=self._retry(), job_retry=None)

    @staticmethod
    def _columns(schema: Any) -> list[ColumnInfo]:
        return [ColumnInfo(f.name, f.field_type) for f in schema or []]

    def _run(self, statement: Statement, limit: int | None) -> Rows:
        result = self._job(statement).result(max_results=limit, timeout=self.timeout, retry=self._retry())
        return Rows(self._columns(result.schema), [tuple(r.values()) for r in result])

    async def _version(self) -> str:
        rows = await in_thread(self._run, Statement(exp.select(exp.Literal.number(1))), None)
        return f"(project {self.spec.database})" if rows.rows else ""

    def _list_tables(self, limit: int) -> list[TableInfo]:
        extra = self.spec.extra or {}
        retry, timeout = self._retry(), self.timeout
        datasets = [extra["dataset"]] if extra.get("dataset") else [
            d.dataset_id for d in self.client.list_datasets(retry=retry, timeout=timeout)]
        out: list[TableInfo] = []
        for dataset in datasets:
            for item in self.client.list_tables(f"{self.spec.database}.{dataset}", retry=retry, timeout=timeout):
                table = self.client.get_table(item.reference, retry=retry, timeout=timeout)
                out.append(TableInfo(schema=dataset, name=item.table_id, columns=self._columns(table.schema)))
                if len(out) >= limit:
                    return out
        return out

    async def _tables(self, limit: int = MAX_TABLES) -> list[TableInfo]:
        return await in_thread(self._list_tables, limit)

    async def _describe(self, statement: Statement) -> list[ColumnInfo]:
        job = await in_thread(self._job, statement, True)  # a dry run: validated, no bytes billed
        return self._columns(job.schema)

    async def _fetch(self, statement: Statement, limit: int | None) -> Rows:
        return await in_thread(self._run, statement, limit)

    async def _stream(self, statement: Statement, chunk_rows: int) -> AsyncIterator[Rows]:
        job = await in_thread(self._job, statement)
        result = await in_thread(lambda: job.result(page_size=chunk_rows, timeout=self.timeout, retry=self._retry()))
        columns = self._columns(result.schema)
        pages = iter(result.pages)
        while True:
            page = await in_thread(next, pages, _DONE)
            if page is _DONE:
                return
            yield Rows(columns, [tuple(r.values()) for r in page])

    def translate(self, e: Exception, doing: str) -> ConnectorError:
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        name = type(e).__name__
        if name in ("DefaultCredentialsError", "RefreshError", "Unauthorized", "Forbidden"):
            return ConnectorError(f"BigQuery: authentication failed: {text[:300]}", kind="auth")
        if name in ("ConnectionError", "TransportError", "ServiceUnavailable", "RetryError"):
            return ConnectorError(f"BigQuery: cannot reach the API: {text[:300]}", kind="connect")
        return ConnectorError(f"BigQuery: {doing} failed: {text[:500]}", kind="query")


__all__ = ["BigQueryConnector", "ConnectionSpec", "bq_type", "parse_credentials"]
