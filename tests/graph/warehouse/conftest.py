from __future__ import annotations

import pytest

from tests.graph.plan.helpers import Org
from tests.support.warehouse import chdb_warehouse, duckdb_warehouse, pg_warehouse, warehouse_rows  # noqa: F401  fixtures


@pytest.fixture
async def org(gql):  # noqa: ANN001, ANN201
    return await Org.create(gql, "Warehouse Co")
