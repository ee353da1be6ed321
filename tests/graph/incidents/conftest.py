from __future__ import annotations

import pytest

from tests.graph.incidents.helpers import Tenant


@pytest.fixture
async def tenant(gql):  # noqa: ANN001, ANN201
    return await Tenant.create(gql)
