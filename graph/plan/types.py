"""Tracking-plan types: one Relay `Node` per plan entity (Project, EventType, EventTypeOwner, Field,
MetaField, Event, Variable, Relation, EventPhoto, PhotoComment), the plan enums (UPPER case in
GraphQL, lower case in the database), the project summary and the `planChanged` message.

Layout of each node type, for whoever adds fields: the scalar columns as plain fields, the row's
foreign keys as `strawberry.Private` `*_row_id` attributes, `from_row(row)` building it, and
relations as async resolvers through the operation's dataloaders (server/domains/plan/loaders.py),
which also enforce who may see what. Every node type is registered with `register_node` at the
bottom of this module, so `node(id:)` loads it with the tenant check.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from graph.accounts.types import Organization, User
from graph.core.connections import Connection
from graph.core.cost import COST_ITEMS
from graph.core.node import Node, load_one, register_node, to_global_id
from graph.plan import event_values, variable_fields
from server.domains.accounts import loaders as account_loaders
from server.domains.plan import event_types as plan_event_types
from server.domains.plan import fields as plan_fields
from server.domains.plan import loaders
from server.domains.plan import photos as plan_photos
from server.domains.plan.changes import PlanAction as PlanActionEnum
from server.domains.plan.changes import PlanEntity as PlanEntityEnum
from server.domains.plan.models import Event as EventRow
from server.domains.plan.models import EventPhoto as EventPhotoRow
from server.domains.plan.models import EventStatus as EventStatusEnum
from server.domains.plan.models import EventType as EventTypeRow
from server.domains.plan.models import EventTypeOwner as EventTypeOwnerRow
from server.domains.plan.models import Field as FieldRow
from server.domains.plan.models import FieldType as FieldTypeEnum
from server.domains.plan.models import MetaField as MetaFieldRow
from server.domains.plan.models import MetaFieldType as MetaFieldTypeEnum
from server.domains.plan.models import PhotoComment as PhotoCommentRow
from server.domains.plan.models import PhotoKind as PhotoKindEnum
from server.domains.plan.models import Project as ProjectRow
from server.domains.plan.models import Relation as RelationRow
from server.domains.plan.models import Sensitivity as SensitivityEnum
from server.domains.plan.models import Variable as VariableRow
from server.domains.plan.models import VariableType as VariableTypeEnum

EventStatus = strawberry.enum(EventStatusEnum, name="EventStatus",
                              description="Lifecycle of a tracked event, from DRAFT to LIVE, then DEPRECATED and ARCHIVED.")
FieldType = strawberry.enum(FieldTypeEnum, name="FieldType", description="Data type of an event type's field.")
MetaFieldType = strawberry.enum(MetaFieldTypeEnum, name="MetaFieldType", description="Data type of a project's meta field.")
Sensitivity = strawberry.enum(SensitivityEnum, name="Sensitivity",
                              description="How sensitive a field's data is (NONE by default).")
VariableType = strawberry.enum(VariableTypeEnum, name="VariableType", description="Data type of a plan variable.")
PhotoKind = strawberry.enum(PhotoKindEnum, name="PhotoKind",
                            description="PHOTO: an uploaded image; FIGMA: a link to a Figma spec.")
PlanEntityType = strawberry.enum(PlanEntityEnum, name="PlanEntityType", description="Which kind of plan object changed.")
PlanChangeAction = strawberry.enum(PlanActionEnum, name="PlanChangeAction")


async def _user(info: strawberry.Info, user_id: uuid.UUID | None) -> User | None:
    return await load_one(info, account_loaders.load_users, User, user_id)


async def _project(info: strawberry.Info, project_id: uuid.UUID | None) -> "Project | None":
    return await load_one(info, loaders.load_projects, Project, project_id)


async def _event_type(info: strawberry.Info, event_type_id: uuid.UUID | None) -> "EventType | None":
    return await load_one(info, loaders.load_event_types, EventType, event_type_id)


async def _field(info: strawberry.Info, field_id: uuid.UUID | None) -> "Field | None":
    return await load_one(info, loaders.load_fields, Field, field_id)


@strawberry.type(description="How many events of a project have one status.")
class EventStatusCount:
    status: EventStatus
    count: int


@strawberry.type(description="What a project holds, counted by the database.")
class ProjectSummary:
    event_type_count: int
    event_count: int
    field_count: int
    meta_field_count: int
    variable_count: int
    relation_count: int
    events_by_status: list[EventStatusCount] = strawberry.field(
        description="One entry per status, in lifecycle order (zero counts included).")

    @classmethod
    def from_summary(cls, s: loaders.ProjectSummary) -> "ProjectSummary":
        return cls(event_type_count=s.event_type_count, event_count=s.event_count, field_count=s.field_count,
                   meta_field_count=s.meta_field_count, variable_count=s.variable_count,
                   relation_count=s.relation_count,
                   events_by_status=[EventStatusCount(status=st, count=s.events_by_status.get(st, 0))
                                     for st in EventStatusEnum])


@strawberry.type(description="A tracking plan of an organization: event types, events, fields, variables, relations.")
class Project(Node):
    name: str
    slug: str = strawberry.field(description="Unique within the organization: lower-case letters and digits joined by hyphens.")
    description: str
    created_at: datetime
    updated_at: datetime
    row_id: strawberry.Private[uuid.UUID]
    organization_row_id: strawberry.Private[uuid.UUID]
    created_by_row_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: ProjectRow) -> "Project":
        return cls(id=to_global_id("Project", row.id), name=row.name, slug=row.slug, description=row.description,
                   created_at=row.created_at, updated_at=row.updated_at, row_id=row.id,
                   organization_row_id=row.organization_id, created_by_row_id=row.created_by_id)

    @strawberry.field
    async def organization(self, info: strawberry.Info) -> Organization | None:
        return await load_one(info, account_loaders.load_organizations, Organization, self.organization_row_id)

    @strawberry.field(description="Who created it (null once they left your organizations).")
    async def created_by(self, info: strawberry.Info) -> User | None:
        return await _user(info, self.created_by_row_id)

    @strawberry.field(description="Counts of event types, events (by status), fields, meta fields, variables, relations.")
    async def summary(self, info: strawberry.Info) -> ProjectSummary:
        s = await info.context.loader(loaders.load_project_summaries).load(self.row_id)
        return ProjectSummary.from_summary(s)


@strawberry.type(description="A family of events sharing field definitions. Its name is fixed once created.")
class EventType(Node):
    name: str = strawberry.field(description="1 to 100 characters, unique in the project ignoring case.")
    display_name: str
    description: str
    color: str = strawberry.field(description="`#rrggbb`.")
    order: int
    created_at: datetime
    updated_at: datetime
    row_id: strawberry.Private[uuid.UUID]
    project_row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: EventTypeRow) -> "EventType":
        return cls(id=to_global_id("EventType", row.id), name=row.name, display_name=row.display_name,
                   description=row.description, color=row.color, order=row.sort_order, created_at=row.created_at,
                   updated_at=row.updated_at, row_id=row.id, project_row_id=row.project_id)

    @strawberry.field
    async def project(self, info: strawberry.Info) -> Project | None:
        return await _project(info, self.project_row_id)

    @strawberry.field(description="Its fields, by `order` (ties by ID).", metadata={COST_ITEMS: 20})
    async def fields(self, info: strawberry.Info) -> list[Field]:
        rows = await info.context.loader(plan_fields.load_fields_by_event_type).load(self.row_id)
        return [Field.from_row(r) for r in rows]

    @strawberry.field(description="The people answerable for it, oldest grant first.", metadata={COST_ITEMS: 5})
    async def owners(self, info: strawberry.Info) -> list[EventTypeOwner]:
        rows = await info.context.loader(plan_event_types.load_owners_by_event_type).load(self.row_id)
        return [EventTypeOwner.from_row(r) for r in rows]


@strawberry.type(description="A person answerable for an event type, and who made them one.")
class EventTypeOwner(Node):
    created_at: datetime
    row_id: strawberry.Private[uuid.UUID]
    event_type_row_id: strawberry.Private[uuid.UUID]
    user_row_id: strawberry.Private[uuid.UUID]
    granted_by_row_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: EventTypeOwnerRow) -> "EventTypeOwner":
        return cls(id=to_global_id("EventTypeOwner", row.id), created_at=row.created_at, row_id=row.id,
                   event_type_row_id=row.event_type_id, user_row_id=row.user_id, granted_by_row_id=row.granted_by_id)

    @strawberry.field
    async def event_type(self, info: strawberry.Info) -> EventType | None:
        return await _event_type(info, self.event_type_row_id)

    @strawberry.field(description="The owner.")
    async def user(self, info: strawberry.Info) -> User | None:
        return await _user(info, self.user_row_id)

    @strawberry.field(description="Who made them an owner.")
    async def granted_by(self, info: strawberry.Info) -> User | None:
        return await _user(info, self.granted_by_row_id)


@strawberry.type(description="A property of an event type, with its data contract (what scans check).")
class Field(Node):
    name: str = strawberry.field(description="1 to 100 characters, unique in the event type; fixed once created.")
    display_name: str
    field_type: FieldType
    is_required: bool
    enum_options: list[str] | None
    description: str
    order: int
    sensitivity: Sensitivity
    contract_required_max_null_rate: float | None
    contract_regex: str | None
    contract_min_value: float | None
    contract_max_value: float | None
    contract_max_bad_rate: float = strawberry.field(description="0..1; 0 by default.")
    created_at: datetime
    updated_at: datetime
    row_id: strawberry.Private[uuid.UUID]
    event_type_row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: FieldRow) -> "Field":
        return cls(id=to_global_id("Field", row.id), name=row.name, display_name=row.display_name,
                   field_type=row.field_type, is_required=row.is_required,
                   enum_options=list(row.enum_options) if row.enum_options is not None else None,
                   description=row.description, order=row.sort_order, sensitivity=row.sensitivity,
                   contract_required_max_null_rate=row.contract_required_max_null_rate,
                   contract_regex=row.contract_regex, contract_min_value=row.contract_min_value,
                   contract_max_value=row.contract_max_value, contract_max_bad_rate=row.contract_max_bad_rate,
                   created_at=row.created_at, updated_at=row.updated_at, row_id=row.id,
                   event_type_row_id=row.event_type_id)

    @strawberry.field
    async def event_type(self, info: strawberry.Info) -> EventType | None:
        return await _event_type(info, self.event_type_row_id)


@strawberry.type(description="A project-wide context field every event may carry (owning team, ticket link, ...).")
class MetaField(Node):
    name: str
    display_name: str
    field_type: MetaFieldType
    is_required: bool
    enum_options: list[str] | None
    default_value: str | None
    link_template: str | None
    order: int
    sensitivity: Sensitivity
    created_at: datetime
    updated_at: datetime
    row_id: strawberry.Private[uuid.UUID]
    project_row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: MetaFieldRow) -> "MetaField":
        return cls(id=to_global_id("MetaField", row.id), name=row.name, display_name=row.display_name,
                   field_type=row.field_type, is_required=row.is_required,
                   enum_options=list(row.enum_options) if row.enum_options is not None else None,
                   default_value=row.default_value, link_template=row.link_template, order=row.sort_order,
                   sensitivity=row.sensitivity, created_at=row.created_at, updated_at=row.updated_at,
                   row_id=row.id, project_row_id=row.project_id)

    @strawberry.field
    async def project(self, info: strawberry.Info) -> Project | None:
        return await _project(info, self.project_row_id)


@strawberry.type(description="One tracked event of the plan.")
class Event(Node):
    name: str = strawberry.field(description="1 to 500 characters, unique in its event type ignoring case.")
    description: str
    status: EventStatus
    sunset_at: datetime | None
    reviewed: bool
    metric_breakdown_columns: list[str]
    tags: list[str]
    order: int
    last_seen_at: datetime | None = strawberry.field(description="When a scan last saw it in the warehouse.")
    drift_count: int
    created_at: datetime
    updated_at: datetime
    row_id: strawberry.Private[uuid.UUID]
    project_row_id: strawberry.Private[uuid.UUID]
    event_type_row_id: strawberry.Private[uuid.UUID]
    owner_row_id: strawberry.Private[uuid.UUID | None]
    field_values_raw: strawberry.Private[list]  # [{"field_id", "value"}] as stored (graph/plan/event_values.py)
    meta_values_raw: strawberry.Private[list]  # [{"meta_field_id", "value"}]

    @classmethod
    def from_row(cls, row: EventRow) -> "Event":
        return cls(id=to_global_id("Event", row.id), name=row.name, description=row.description, status=row.status,
                   sunset_at=row.sunset_at, reviewed=row.reviewed,
                   metric_breakdown_columns=list(row.metric_breakdown_columns or []), tags=list(row.tags or []),
                   field_values_raw=row.field_values or [], meta_values_raw=row.meta_values or [],
                   order=row.sort_order, last_seen_at=row.last_seen_at, drift_count=row.drift_count or 0,
                   created_at=row.created_at, updated_at=row.updated_at, row_id=row.id,
                   project_row_id=row.project_id, event_type_row_id=row.event_type_id, owner_row_id=row.owner_id)

    @strawberry.field
    async def project(self, info: strawberry.Info) -> Project | None:
        return await _project(info, self.project_row_id)

    @strawberry.field
    async def event_type(self, info: strawberry.Info) -> EventType | None:
        return await _event_type(info, self.event_type_row_id)

    @strawberry.field(description="The member answerable for the event.")
    async def owner(self, info: strawberry.Info) -> User | None:
        return await _user(info, self.owner_row_id)

    @strawberry.field(description="Its values of its event type's fields, with their definitions, in the fields' order.")
    async def fields(self, info: strawberry.Info, first: int | None = None) -> list[event_values.EventFieldValue]:
        return await event_values.field_values_of(info, self.field_values_raw, first)

    @strawberry.field(description="Its values of the project's meta fields, with their definitions.")
    async def meta_values(self, info: strawberry.Info, first: int | None = None) -> list[event_values.EventMetaValue]:
        return await event_values.meta_values_of(info, self.meta_values_raw, first)

    @strawberry.field(description="Its screenshots and Figma links, in their order.")
    async def photos(self, info: strawberry.Info, first: int | None = None) -> list["EventPhoto"]:
        return await event_values.photos_of(info, self.row_id, first)

    @strawberry.field(description="Who changed what, when: newest first.")
    async def history(self, info: strawberry.Info, first: int | None = None, after: str | None = None,
                      last: int | None = None, before: str | None = None,
                      ) -> Connection[event_values.EventHistoryEntry]:
        return await event_values.history_of(info, self.row_id, first, after, last, before)


@strawberry.type(description="A reusable placeholder of the plan (`page_name`, ...), with its usage and sample values.")
class Variable(Node):
    name: str = strawberry.field(description="1 to 100 characters matching `^[a-z][a-z0-9_]*$`, unique in the project.")
    source_name: str | None
    variable_type: VariableType
    description: str
    # Usage, sample values and values are computed (graph/plan/variable_fields.py).
    event_count: int = strawberry.field(resolver=variable_fields.event_count, description=variable_fields.EVENT_COUNT)
    context_count: int = strawberry.field(resolver=variable_fields.context_count,
                                          description=variable_fields.CONTEXT_COUNT)
    low_context_count: int = strawberry.field(resolver=variable_fields.low_context_count,
                                              description=variable_fields.LOW_CONTEXT_COUNT)
    high_context_count: int = strawberry.field(resolver=variable_fields.high_context_count,
                                               description=variable_fields.HIGH_CONTEXT_COUNT)
    sample_values: list[str] = strawberry.field(resolver=variable_fields.sample_values,
                                                description=variable_fields.SAMPLE_VALUES)
    values = strawberry.field(resolver=variable_fields.values, description=variable_fields.VALUES)
    created_at: datetime
    updated_at: datetime
    row_id: strawberry.Private[uuid.UUID]
    project_row_id: strawberry.Private[uuid.UUID]
    stored_sample_values: strawberry.Private[list]

    @classmethod
    def from_row(cls, row: VariableRow) -> "Variable":
        return cls(id=to_global_id("Variable", row.id), name=row.name, source_name=row.source_name,
                   variable_type=row.variable_type, description=row.description, created_at=row.created_at,
                   updated_at=row.updated_at, row_id=row.id, project_row_id=row.project_id,
                   stored_sample_values=row.sample_values or [])

    @strawberry.field
    async def project(self, info: strawberry.Info) -> Project | None:
        return await _project(info, self.project_row_id)


@strawberry.type(description="A join between two event types' fields, e.g. `order.user_id` belongs to `user.id`.")
class Relation(Node):
    relation_type: str = strawberry.field(description="Free text; `belongs_to` by default.")
    description: str
    created_at: datetime
    updated_at: datetime
    row_id: strawberry.Private[uuid.UUID]
    project_row_id: strawberry.Private[uuid.UUID]
    source_event_type_row_id: strawberry.Private[uuid.UUID]
    source_field_row_id: strawberry.Private[uuid.UUID]
    target_event_type_row_id: strawberry.Private[uuid.UUID]
    target_field_row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: RelationRow) -> "Relation":
        return cls(id=to_global_id("Relation", row.id), relation_type=row.relation_type, description=row.description,
                   created_at=row.created_at, updated_at=row.updated_at, row_id=row.id, project_row_id=row.project_id,
                   source_event_type_row_id=row.source_event_type_id, source_field_row_id=row.source_field_id,
                   target_event_type_row_id=row.target_event_type_id, target_field_row_id=row.target_field_id)

    @strawberry.field
    async def project(self, info: strawberry.Info) -> Project | None:
        return await _project(info, self.project_row_id)

    @strawberry.field
    async def source_event_type(self, info: strawberry.Info) -> EventType | None:
        return await _event_type(info, self.source_event_type_row_id)

    @strawberry.field
    async def source_field(self, info: strawberry.Info) -> Field | None:
        return await _field(info, self.source_field_row_id)

    @strawberry.field
    async def target_event_type(self, info: strawberry.Info) -> EventType | None:
        return await _event_type(info, self.target_event_type_row_id)

    @strawberry.field
    async def target_field(self, info: strawberry.Info) -> Field | None:
        return await _field(info, self.target_field_row_id)


@strawberry.type(description="A screenshot of an event (PHOTO) or a link to its Figma spec (FIGMA).")
class EventPhoto(Node):
    kind: PhotoKind
    original_filename: str | None
    content_type: str | None
    size_bytes: int | None
    storage_backend: str | None = strawberry.field(description="Where the bytes are: `local`, `s3` or `gcs`; null for FIGMA.")
    external_url: str | None = strawberry.field(description="The Figma link (FIGMA).")
    title: str
    order: int
    created_at: datetime
    row_id: strawberry.Private[uuid.UUID]
    event_row_id: strawberry.Private[uuid.UUID]
    uploaded_by_row_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: EventPhotoRow) -> "EventPhoto":
        return cls(id=to_global_id("EventPhoto", row.id), kind=row.kind, original_filename=row.original_filename,
                   content_type=row.content_type, size_bytes=row.size_bytes, storage_backend=row.storage_backend,
                   external_url=row.external_url, title=row.title, order=row.sort_order, created_at=row.created_at,
                   row_id=row.id, event_row_id=row.event_id, uploaded_by_row_id=row.uploaded_by_id)

    @strawberry.field
    async def event(self, info: strawberry.Info) -> Event | None:
        return await load_one(info, loaders.load_events, Event, self.event_row_id)

    @strawberry.field
    async def uploaded_by(self, info: strawberry.Info) -> User | None:
        return await _user(info, self.uploaded_by_row_id)

    @strawberry.field(description="Where to get it: for an uploaded file its authenticated download "
                                  "`/api/v1/photos/{id}` (members only; prefixed with `INSIGHTS_PUBLIC_URL` when set), "
                                  "for a Figma link the link itself.")
    def url(self, info: strawberry.Info) -> str | None:
        if self.storage_backend is None:
            return self.external_url
        return (info.context.settings.public_url or "").rstrip("/") + plan_photos.download_path(self.id)

    @strawberry.field(description="Its top-level comments, oldest first (the first `first`, at most 500); "
                                  "`replies` holds each thread.")
    async def comments(self, info: strawberry.Info, first: int | None = None) -> list[PhotoComment]:
        first = event_values._limit(first)
        rows = await info.context.loader(plan_photos.load_photo_threads).load(self.row_id)
        return [PhotoComment.from_row(r) for r in rows[:first]]


@strawberry.type(description="A comment on an event photo; replies name their parent.")
class PhotoComment(Node):
    body: str = strawberry.field(description="1 to 4000 characters.")
    created_at: datetime
    updated_at: datetime
    row_id: strawberry.Private[uuid.UUID]
    photo_row_id: strawberry.Private[uuid.UUID]
    parent_row_id: strawberry.Private[uuid.UUID | None]
    author_row_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: PhotoCommentRow) -> "PhotoComment":
        return cls(id=to_global_id("PhotoComment", row.id), body=row.body, created_at=row.created_at,
                   updated_at=row.updated_at, row_id=row.id, photo_row_id=row.photo_id, parent_row_id=row.parent_id,
                   author_row_id=row.author_id)

    @strawberry.field
    async def photo(self, info: strawberry.Info) -> EventPhoto | None:
        return await load_one(info, loaders.load_event_photos, EventPhoto, self.photo_row_id)

    @strawberry.field(description="The comment this one replies to (null for a top-level comment).")
    async def parent(self, info: strawberry.Info) -> PhotoComment | None:
        return await load_one(info, loaders.load_photo_comments, PhotoComment, self.parent_row_id)

    @strawberry.field
    async def author(self, info: strawberry.Info) -> User | None:
        return await _user(info, self.author_row_id)

    @strawberry.field(description="ID of the comment this one replies to (null for a top-level comment).")
    def parent_id(self) -> strawberry.ID | None:
        return None if self.parent_row_id is None else to_global_id("PhotoComment", self.parent_row_id)

    @strawberry.field(description="Its direct replies, oldest first (the first `first`, at most 500), each with "
                                  "its own `replies`.")
    async def replies(self, info: strawberry.Info, first: int | None = None) -> list[PhotoComment]:
        first = event_values._limit(first)
        rows = await info.context.loader(plan_photos.load_comment_replies).load(self.row_id)
        return [PhotoComment.from_row(r) for r in rows[:first]]


@strawberry.type(description="Something in a project's plan changed: refetch what you show of it.")
class PlanChange:
    entity_type: PlanEntityType
    entity_id: strawberry.ID | None = strawberry.field(
        description="Global ID of the changed object; null when a bulk change touched many (refetch the list).")
    action: PlanChangeAction
    project_id: strawberry.ID


register_node("Project", Project, loaders.load_projects)
register_node("EventType", EventType, loaders.load_event_types)
register_node("EventTypeOwner", EventTypeOwner, loaders.load_event_type_owners)
register_node("Field", Field, loaders.load_fields)
register_node("MetaField", MetaField, loaders.load_meta_fields)
register_node("Event", Event, loaders.load_events)
register_node("Variable", Variable, loaders.load_variables)
register_node("Relation", Relation, loaders.load_relations)
register_node("EventPhoto", EventPhoto, loaders.load_event_photos)
register_node("PhotoComment", PhotoComment, loaders.load_photo_comments)
