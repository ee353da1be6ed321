# PLACEHOLDER: replaced by the accounts work.
import strawberry


@strawberry.type
class AccountsQuery:
    @strawberry.field
    def placeholder_viewer(self) -> str | None:
        return None
