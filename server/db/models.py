"""Imports every model so `Base.metadata` is complete (Alembic and tests use it)."""

from server.db.base import Base
from server.domains.accounts import models as accounts  # noqa: F401
from server.domains.platform import models as platform  # noqa: F401
from server.jobs import models as jobs  # noqa: F401

metadata = Base.metadata
from server.domains.incidents import models as incidents  # noqa: F401,E402
from server.domains.plan import models as plan  # noqa: F401,E402
from server.domains.warehouse import models as warehouse  # noqa: F401,E402
