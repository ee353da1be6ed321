"""Data sources: `dataSources(organizationId:)`, `dataSource(id:)`, `dataSourceCreate`,
`dataSourceUpdate`, `dataSourceDelete`, `dataSourceTest` (a job). Thin wrappers over
server/domains/warehouse/data_sources.py; expected failures come back as `userErrors`."""

from __future__ import annotations

import strawberry

from graph.core.connections import Connection, connection_from_page
from graph.core.errors import UserError, mutate
from graph.core.node import decode_id, load_one, to_global_id
from graph.core.scalars import JSON
from graph.jobs.types import Job
from graph.plan.common import decode_input_id, maybe
from graph.warehouse.types import DataSource, DataSourceType
from server.db.paging import PageRequest, keyset_page
from server.domains.warehouse import data_sources

_PASSWORD = ("Write-only: never returned (`passwordSet` says whether one is stored). For BigQuery the service-account "
             "JSON key; absent for BigQuery: application default credentials.")
_EXTRA = ("Per-type options (unknown keys are refused): PostgreSQL `sslmode`, `schema`, `application_name`; ClickHouse "
          "`secure`, `verify`, `compress`; BigQuery `location`, `dataset`, `maximum_bytes_billed`; DuckDB `threads`, "
          "`memory_limit`.")
_DATABASE = ("1 to 255 characters: the database; for BigQuery the GCP project; for DuckDB the file, relative to the "
             "server's DuckDB directory for your organization.")


@strawberry.input(description="A new warehouse connection of an organization (owners).")
class DataSourceCreateInput:
    organization_id: strawberry.ID
    name: str = strawberry.field(description="1 to 255 characters, unique in the organization ignoring case.")
    db_type: DataSourceType
    database_name: str = strawberry.field(description=_DATABASE)
    host: str | None = strawberry.field(default=None, description="1 to 500 characters for PostgreSQL and ClickHouse; "
                                                                  "BigQuery: an API endpoint (optional); DuckDB: none.")
    port: int | None = strawberry.field(default=None, description="1 to 65535; default 5432 (PostgreSQL), 8123 "
                                                                  "(ClickHouse); none for BigQuery and DuckDB.")
    username: str | None = strawberry.field(default=None, description="Up to 255 characters.")
    password: str | None = strawberry.field(default=None, description=_PASSWORD)
    timeout_seconds: int | None = strawberry.field(default=None, description="1 to 3600; absent: the server's default.")
    extra_params: JSON | None = strawberry.field(default=None, description=_EXTRA)


@strawberry.input(description="Absent fields stay as they are. Changing how to connect forgets the last test result.")
class DataSourceUpdateInput:
    id: strawberry.ID
    name: strawberry.Maybe[str | None] = strawberry.field(description="Cannot be null.")
    db_type: strawberry.Maybe[DataSourceType | None] = strawberry.field(
        description="Cannot be null. The port and extra params not given fall back to the new type's defaults.")
    database_name: strawberry.Maybe[str | None] = strawberry.field(description="Cannot be null.")
    host: strawberry.Maybe[str | None]
    port: strawberry.Maybe[int | None] = strawberry.field(description="Null: the type's default.")
    username: strawberry.Maybe[str | None] = strawberry.field(description="Null clears it.")
    password: strawberry.Maybe[str | None] = strawberry.field(description="A new password; null removes it.")
    timeout_seconds: strawberry.Maybe[int | None] = strawberry.field(description="Null: the server's default.")
    extra_params: strawberry.Maybe[JSON | None] = strawberry.field(description="Replaces them all; null clears them.")


@strawberry.input
class DataSourceDeleteInput:
    id: strawberry.ID
    cascade: bool = strawberry.field(
        default=False, description="Also delete the scan configs that use it (with their jobs and metric series). "
                                   "Without it, deleting a data source in use is refused.")


@strawberry.input
class DataSourceTestInput:
    id: strawberry.ID


@strawberry.type
class DataSourceCreatePayload:
    data_source: DataSource | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DataSourceUpdatePayload:
    data_source: DataSource | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DataSourceDeletePayload:
    deleted_data_source_id: strawberry.ID | None = None
    deleted_scan_config_count: int = 0
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DataSourceTestPayload:
    job: Job | None = strawberry.field(default=None, description="The connection test; follow it with `jobUpdated`. "
                                                                 "It fails with the reason when the warehouse cannot be reached.")
    data_source: DataSource | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DataSourcesQuery:
    @strawberry.field(description="Data sources of an organization, by name (ties by ID). Members; an API key bound "
                                  "to a project sees none.")
    async def data_sources(self, info: strawberry.Info, organization_id: strawberry.ID, first: int | None = None,
                           after: str | None = None, last: int | None = None,
                           before: str | None = None) -> Connection[DataSource]:
        ctx = info.context
        query = data_sources.data_sources_query(ctx.principal, decode_id(organization_id, "Organization", "organizationId"))
        s = ctx.settings
        page = await keyset_page(ctx.rt.db, query, data_sources.ORDER, PageRequest(first, after, last, before),
                                 descending=False, default=s.page_size_default, maximum=s.page_size_max)
        ctx.loader(data_sources.load_data_sources).prime_many({row.id: row for row in page.items})
        return connection_from_page(page, DataSource.from_row)

    @strawberry.field(description="A data source you can see, by ID.")
    async def data_source(self, info: strawberry.Info, id: strawberry.ID) -> DataSource | None:
        return await load_one(info, data_sources.load_data_sources, DataSource, decode_id(id, "DataSource"))


@strawberry.type
class DataSourcesMutation:
    @strawberry.mutation(description="Create a data source (a warehouse connection) of an organization. Owners only.")
    async def data_source_create(self, info: strawberry.Info, input: DataSourceCreateInput) -> DataSourceCreatePayload:
        ctx = info.context

        async def work() -> DataSourceCreatePayload:
            row = await data_sources.create_data_source(
                ctx.rt, ctx.principal, decode_input_id(input.organization_id, "Organization", "organizationId"),
                name=input.name, db_type=input.db_type, database_name=input.database_name, host=input.host,
                port=input.port, username=input.username, password=input.password,
                timeout_seconds=input.timeout_seconds, extra_params=input.extra_params, request_id=ctx.request_id)
            return DataSourceCreatePayload(data_source=DataSource.from_row(row))

        return await mutate(DataSourceCreatePayload, work)

    @strawberry.mutation(description="Change a data source (absent inputs stay). Owners only.")
    async def data_source_update(self, info: strawberry.Info, input: DataSourceUpdateInput) -> DataSourceUpdatePayload:
        ctx = info.context

        async def work() -> DataSourceUpdatePayload:
            row = await data_sources.update_data_source(
                ctx.rt, ctx.principal, decode_input_id(input.id, "DataSource", "id"), name=maybe(input.name),
                db_type=maybe(input.db_type), database_name=maybe(input.database_name), host=maybe(input.host),
                port=maybe(input.port), username=maybe(input.username), password=maybe(input.password),
                timeout_seconds=maybe(input.timeout_seconds), extra_params=maybe(input.extra_params),
                request_id=ctx.request_id)
            return DataSourceUpdatePayload(data_source=DataSource.from_row(row))

        return await mutate(DataSourceUpdatePayload, work)

    @strawberry.mutation(description="Delete a data source; refused while scan configs use it unless `cascade: true`. "
                                     "Owners only.")
    async def data_source_delete(self, info: strawberry.Info, input: DataSourceDeleteInput) -> DataSourceDeletePayload:
        ctx = info.context

        async def work() -> DataSourceDeletePayload:
            row, configs = await data_sources.delete_data_source(
                ctx.rt, ctx.principal, decode_input_id(input.id, "DataSource", "id"), cascade=input.cascade,
                request_id=ctx.request_id)
            return DataSourceDeletePayload(deleted_data_source_id=to_global_id("DataSource", row.id),
                                           deleted_scan_config_count=configs)

        return await mutate(DataSourceDeletePayload, work)

    @strawberry.mutation(description="Test a data source's connection in a job: the job succeeds with the server's "
                                     "version, or fails with the reason; either way the data source's `lastTest*` "
                                     "fields record it. Owners only.")
    async def data_source_test(self, info: strawberry.Info, input: DataSourceTestInput) -> DataSourceTestPayload:
        ctx = info.context

        async def work() -> DataSourceTestPayload:
            job, row = await data_sources.request_test(ctx.rt, ctx.principal, decode_input_id(input.id, "DataSource", "id"),
                                                       request_id=ctx.request_id)
            return DataSourceTestPayload(job=Job.from_row(job), data_source=DataSource.from_row(row))

        return await mutate(DataSourceTestPayload, work)


__all__ = ["DataSourcesMutation", "DataSourcesQuery"]
