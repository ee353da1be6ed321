from tests.server.jobs.support import owner, rt  # noqa: F401  fixtures
