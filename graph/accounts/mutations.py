# PLACEHOLDER: replaced by the accounts work.
import strawberry


@strawberry.type
class AccountsMutation:
    @strawberry.mutation
    def placeholder_noop(self) -> bool:
        return True
