"""Inputs of the plan's project mutations. Patch inputs use `strawberry.Maybe`: an absent field is
left alone, an explicit null clears a field that may be empty (and is refused where it may not)."""

from __future__ import annotations

import strawberry


@strawberry.input
class ProjectCreateInput:
    organization_id: strawberry.ID
    name: str = strawberry.field(description="1 to 255 characters.")
    slug: str = strawberry.field(description="1 to 255 characters matching `^[a-z0-9]+(?:-[a-z0-9]+)*$`, "
                                             "unique within the organization.")
    description: str = ""


@strawberry.input(description="Absent fields stay as they are.")
class ProjectUpdateInput:
    id: strawberry.ID
    name: strawberry.Maybe[str | None] = strawberry.field(description="1 to 255 characters; cannot be null.")
    slug: strawberry.Maybe[str | None] = strawberry.field(description="A new slug (same rules as on create); cannot be null.")
    description: strawberry.Maybe[str | None] = strawberry.field(description="Null clears it.")


@strawberry.input
class ProjectDeleteInput:
    id: strawberry.ID = strawberry.field(description="The project to delete with its whole plan. Owners only.")
