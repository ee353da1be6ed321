from __future__ import annotations

import pytest

from server.runtime import Runtime


@pytest.fixture(scope="session")
async def rt(settings, database_url, redis_url):  # noqa: ANN001, ANN201
    """A runtime on the test's own event loop, for calling the services directly."""
    runtime = Runtime.create(settings, database_url, redis_url)
    yield runtime
    await runtime.close()
