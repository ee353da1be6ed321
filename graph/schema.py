"""Assembles Query, Mutation and Subscription from the domain packages, with the protective extensions."""

from __future__ import annotations

import strawberry
from strawberry.extensions import DisableIntrospection, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from graph.accounts.mutations import AccountsMutation
from graph.accounts.queries import AccountsQuery
from graph.core.cost import QueryCostLimiter
from graph.core.extensions import CachedParser, ErrorShaping, InsightsSchema, OperationMetrics, limit_extensions
from graph.core.node import Node
from graph.core.queries import NodeQuery
from graph.core.scalars import SCALAR_MAP
from graph.incidents.correlation_settings import CorrelationSettingsMutation, CorrelationSettingsQuery
from graph.incidents.mutations import IncidentsMutation
from graph.incidents.queries import IncidentsQuery
from graph.incidents.subscriptions import IncidentsSubscription
from graph.incidents.webhooks import WebhooksMutation, WebhooksQuery
from graph.jobs.mutations import JobsMutation
from graph.jobs.queries import JobsQuery
from graph.jobs.subscriptions import JobsSubscription
from graph.plan.demo import DemoMutation
from graph.plan.event_types import EventTypesMutation, EventTypesQuery
from graph.plan.events import EventsMutation, EventsQuery
from graph.plan.fields import FieldsMutation
from graph.plan.meta_fields import MetaFieldsMutation, MetaFieldsQuery
from graph.plan.mutations import PlanMutation
from graph.plan.photos import PhotosMutation
from graph.plan.queries import PlanQuery
from graph.plan.relations import RelationsMutation, RelationsQuery
from graph.plan.subscriptions import PlanSubscription
from graph.plan.variables import VariablesMutation, VariablesQuery
from graph.platform.mutations import PlatformMutation
from graph.platform.queries import PlatformQuery
from graph.warehouse.data_sources import DataSourcesMutation, DataSourcesQuery
from graph.warehouse.metrics import MetricsQuery
from graph.warehouse.reconciliation import ReconciliationMutation, ReconciliationQuery
from graph.warehouse.scan_configs import ScanConfigsMutation, ScanConfigsQuery
from server.settings import Settings

Query = merge_types("Query", (NodeQuery, AccountsQuery, PlatformQuery, JobsQuery, WebhooksQuery, IncidentsQuery, CorrelationSettingsQuery, PlanQuery, EventTypesQuery, EventsQuery, MetaFieldsQuery, VariablesQuery, RelationsQuery, DataSourcesQuery, MetricsQuery, ReconciliationQuery, ScanConfigsQuery))
Mutation = merge_types("Mutation", (AccountsMutation, PlatformMutation, JobsMutation, WebhooksMutation, IncidentsMutation, CorrelationSettingsMutation, PlanMutation, EventTypesMutation, EventsMutation, FieldsMutation, MetaFieldsMutation, VariablesMutation, RelationsMutation, DemoMutation, PhotosMutation, DataSourcesMutation, ReconciliationMutation, ScanConfigsMutation))
Subscription = merge_types("Subscription", (JobsSubscription, IncidentsSubscription, PlanSubscription))


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    extensions = [
        ErrorShaping,
        OperationMetrics,
        lambda: CachedParser(maxsize=1000),
        lambda: ValidationCache(maxsize=1000),
        *limit_extensions(settings),  # depth, aliases, tokens (rules shared, so ValidationCache hits)
        lambda: QueryCostLimiter(max_cost=settings.max_query_cost, default_page_size=settings.page_size_default),
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    return InsightsSchema(
        query=Query, mutation=Mutation, subscription=Subscription, types=[Node] + node_types(),
        extensions=extensions, config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALAR_MAP),
    )


def node_types() -> list[type]:
    from graph.core.node import registered_nodes

    return [cls for cls, _ in registered_nodes().values()]
