"""A worker in its own process, started the way `insights worker` starts it: Dramatiq's CLI with
`workers.entrypoint`. The live server's in-process worker is paused meanwhile, so only the
separate process can have run the job."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import orjson

from server.domains.platform import export
from server.jobs.models import JobStatus
from tests.server.jobs.support import principal_of, wait_for_status
from workers import inprocess

ROOT = Path(__file__).resolve().parents[2]


def start_worker(settings, database_url: str, redis_url: str) -> tuple[subprocess.Popen, list[str], threading.Event]:  # noqa: ANN001
    env = {**os.environ, "INSIGHTS_DATABASE_URL": database_url, "INSIGHTS_REDIS_URL": redis_url,
           "INSIGHTS_HOME": str(settings.home), "INSIGHTS_SECRET_KEY": settings.secret_key,
           "dramatiq_worker_timeout": "100", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dramatiq", "workers.entrypoint", "--processes", "1",
                             "--threads", "1", "--queues", "default"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line.rstrip())
            if "ready for action" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    return proc, lines, ready


async def test_separate_worker_process_runs_an_export(rt, live, owner, settings, database_url, redis_url):
    account, org = owner
    proc, lines, ready = start_worker(settings, database_url, redis_url)
    worker = inprocess.active()
    try:
        assert await asyncio.to_thread(ready.wait, 30), "\n".join(lines[-30:])
        await asyncio.to_thread(worker.pause)
        job = await export.request_export(rt, await principal_of(rt, account), org)
        row = await wait_for_status(rt, job.id, JobStatus.succeeded, JobStatus.failed, timeout=15)
        assert row.status == JobStatus.succeeded, row.error
        data = orjson.loads(export.export_path(rt, org, job.id).read_bytes())
        assert data["organization"]["id"] == str(org) and [m["email"] for m in data["members"]] == [account.email]
    finally:
        worker.resume()
        proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
    assert code == 0, "\n".join(lines[-30:])  # it shut down cleanly (runtimes closed on its loop)
    assert not any("Traceback" in line for line in lines), "\n".join(lines)
