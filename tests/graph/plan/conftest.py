from __future__ import annotations

import pytest

from tests.graph.plan.helpers import Org


@pytest.fixture
async def org(gql):  # noqa: ANN001, ANN201
    return await Org.create(gql)
