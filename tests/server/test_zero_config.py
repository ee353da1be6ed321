"""`insights serve` with no INSIGHTS_DATABASE_URL / INSIGHTS_REDIS_URL: embedded PostgreSQL and
Redis under INSIGHTS_HOME, API + worker + scheduler in one process; Ctrl-C (or SIGTERM) leaves no
process behind and the next start finds the data again."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.server.test_cli import cli_env, run_cli
from tests.support.client import LOGIN, REGISTER
from tests.support.live import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


def _embedded_postgres_problem() -> str | None:
    """Why the embedded PostgreSQL (pgserver's binaries) cannot run here, or None."""
    try:
        from server.embedded import _postgres_bin

        postgres = _postgres_bin("postgres")
        out = subprocess.run([str(postgres), "--version"], capture_output=True, text=True, timeout=30)
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}"
    if out.returncode != 0:
        return out.stderr.strip() or f"postgres --version exited with {out.returncode}"
    if os.geteuid() == 0 and not shutil.which("useradd"):
        import pwd

        try:
            pwd.getpwnam("pgserver")
        except KeyError:
            return "running as root without useradd: no user to run the embedded PostgreSQL as"
    return None


_PROBLEM = _embedded_postgres_problem()
pytestmark = pytest.mark.skipif(_PROBLEM is not None, reason=f"embedded PostgreSQL (pgserver) cannot run here: {_PROBLEM}")


@pytest.fixture
def home():  # noqa: ANN201
    """A fresh INSIGHTS_HOME outside pytest's tmp tree (as root, PostgreSQL runs as a service user
    that must traverse its ancestors; see tests/server/test_embedded.py)."""
    base = Path(tempfile.mkdtemp(prefix="insights-zero-config-test-"))
    base.chmod(0o755)
    yield base / "home"
    leftovers = _processes_mentioning(base / "home")
    for pid, _ in leftovers:  # don't leave them running for the rest of the session
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass
    shutil.rmtree(base, ignore_errors=True)
    assert leftovers == [], f"processes left behind: {leftovers}"


def _processes_mentioning(home: Path) -> list[tuple[int, str]]:
    """Live processes whose command line or working directory mentions `home`."""
    home_s = str(home)
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        try:
            if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.info["cmdline"] or [])
            cwd = proc.info["cwd"] or ""
        except psutil.Error:
            continue
        if home_s in cmdline or cwd == home_s or cwd.startswith(home_s + os.sep):
            found.append((proc.pid, cmdline or cwd))
    return found


class Serve:
    """`insights serve` as a subprocess on a free port."""

    def __init__(self, home: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home.parent / f"serve-{self.port}.log"
        self.log_file = open(self.log, "w")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(self.port)],
                                     cwd=REPO_ROOT, env=cli_env(home), stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.started = time.monotonic()

    def output(self) -> str:
        return self.log.read_text()

    def wait_healthy(self, timeout: float = 60) -> float:
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"insights serve exited with {self.proc.returncode}:\n{self.output()[-4000:]}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.proc.kill()
        pytest.fail(f"no healthy /api/v1/health within {timeout}s:\n{self.output()[-4000:]}")

    def stop(self, sig: int, timeout: float = 15) -> int:
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"insights serve did not stop within {timeout}s of {signal.Signals(sig).name}:\n"
                        f"{self.output()[-4000:]}")
        finally:
            self.log_file.close()
        return code

    def graphql(self, query: str, variables: dict | None = None, token: str | None = None) -> dict:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        r = httpx.post(self.url + "/graphql", json={"query": query, "variables": variables or {}}, headers=headers,
                       timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        assert not body.get("errors"), body
        return body["data"]

    def login(self, email: str) -> str:
        data = self.graphql(LOGIN, {"input": {"email": email, "password": PASSWORD}})
        assert data["userLogin"]["userErrors"] == [], data
        return data["userLogin"]["token"]


VIEWER = "{ viewer { email } }"


async def _schedule_names(home: Path) -> list[str]:
    import asyncpg

    from server.embedded import EmbeddedServices

    with EmbeddedServices(home, redis=False) as services:
        conn = await asyncpg.connect(services.postgres_dsn)
        try:
            return [r["name"] for r in await conn.fetch("SELECT name FROM schedules ORDER BY name")]
        finally:
            await conn.close()


def test_zero_config_serve_stops_cleanly_and_keeps_its_data(home: Path):
    # --- cold start: empty home -----------------------------------------------------------------
    serve = Serve(home)
    serve.wait_healthy()
    assert serve.graphql("{ __typename }") == {"__typename": "Query"}
    data = serve.graphql(REGISTER, {"input": {"email": "first@example.com", "password": PASSWORD, "name": "First"}})
    assert data["userRegister"]["userErrors"] == [], data
    token = serve.login("first@example.com")
    assert serve.graphql(VIEWER, token=token) == {"viewer": {"email": "first@example.com"}}
    # Commands run next to a zero-config server use its embedded services (the home is locked).
    result = run_cli("user", "create", "--email", "second@example.com", "--password-stdin", env=cli_env(home),
                     input=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert serve.login("second@example.com")
    out = serve.output()
    assert f"http://127.0.0.1:{serve.port}/graphql" in out and "insights user create" in out

    assert serve.stop(signal.SIGINT) == 0, serve.output()[-4000:]
    assert "embedded PostgreSQL stopped" in serve.output() and "embedded Redis stopped" in serve.output()
    assert _processes_mentioning(home) == []
    assert not (home / "services.json").exists()

    # Stopped: the data is there (the scheduler's built-in schedule was written at start).
    assert "accounts-cleanup" in asyncio.run(_schedule_names(home))
    # Stopped: a command starts the embedded services itself and stops them again.
    result = run_cli("user", "create", "--email", "third@example.com", "--password-stdin", env=cli_env(home),
                     input=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert _processes_mentioning(home) == []

    # --- warm start: same home --------------------------------------------------------------------
    serve = Serve(home)
    serve.wait_healthy()
    assert serve.graphql(VIEWER, token=token) == {"viewer": {"email": "first@example.com"}}  # same secret key
    for email in ("first@example.com", "second@example.com", "third@example.com"):
        assert serve.graphql(VIEWER, token=serve.login(email)) == {"viewer": {"email": email}}
    assert "insights user create" not in serve.output()  # no first-user hint once users exist

    assert serve.stop(signal.SIGTERM) == 0, serve.output()[-4000:]
    assert _processes_mentioning(home) == []


def test_second_serve_on_the_same_home_is_refused(home: Path):
    first = Serve(home)
    first.wait_healthy()
    try:
        port = free_port()
        result = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--port", str(port)], cwd=REPO_ROOT,
                                env=cli_env(home), capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stderr
        assert "in use" in result.stderr and "Traceback" not in result.stderr
        assert httpx.get(first.url + "/api/v1/health", timeout=5).status_code == 200
    finally:
        assert first.stop(signal.SIGINT) == 0
