"""Job pick-up latency: how long an accepted job waits before an idle worker claims it.

Starts the real app under uvicorn with its in-process Dramatiq worker (Redis broker, AsyncIO
middleware, worker_timeout 100 ms) against a throwaway PostgreSQL database, then creates 50
`organization_export` jobs of an empty organization one at a time, each after the worker has gone
idle, and measures

- enqueue -> claim: from the moment the job's message was in Redis (after commit) to the worker's
  claim (`started_at`);
- accepted -> claim: from the job row's `created_at` (before the commit) to the claim.

Baseline, measured in the same run: a bare Redis list with a blocked BLPOP consumer (push ->
pop), the floor any Redis-based queue could reach. Target: enqueue -> claim p95 under 100 ms.

    .venv/bin/python -m bench.job_pickup [--jobs 50] [--idle 0.3]

Uses the PostgreSQL and Redis at localhost (BENCH_DATABASE_ADMIN_URL, BENCH_REDIS_URL to change):
a database is created and dropped, and a free Redis database is taken and flushed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import redis as sync_redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import LOCK, create_database, drop_database, pct, take_redis_db  # noqa: E402

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")


def summary(name: str, ms: list[float]) -> str:
    return (f"{name:<28} p50 {statistics.median(ms):7.1f} ms   p95 {pct(ms, 0.95):7.1f} ms   "
            f"max {max(ms):7.1f} ms   (n={len(ms)})")


def redis_baseline(url: str, samples: int) -> list[float]:
    """Push -> pop latency of a blocked BLPOP consumer on a bare Redis list."""
    key = f"bench:baseline:{uuid.uuid4().hex}"
    producer, consumer = sync_redis.Redis.from_url(url), sync_redis.Redis.from_url(url)
    popped: list[float] = []
    done = threading.Event()

    def consume() -> None:
        for _ in range(samples):
            consumer.blpop([key], timeout=5)
            popped.append(time.perf_counter())
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    pushed = []
    for _ in range(samples):
        time.sleep(0.01)
        pushed.append(time.perf_counter())
        producer.rpush(key, b"x")
        while len(popped) < len(pushed):
            time.sleep(0.0001)
    done.wait(5)
    producer.close()
    consumer.close()
    return [(b - a) * 1000 for a, b in zip(pushed, popped)]


async def measure(db_url: str, redis_url: str, n_jobs: int, idle: float) -> tuple[list[float], list[float]]:
    from server.db.base import utcnow
    from server.domains.accounts.models import Organization
    from server.jobs import service as jobs
    from server.jobs.models import Job, JobStatus
    from server.runtime import Runtime
    from server.settings import Settings
    from tests.support.live import LiveServer
    from workers.broker import setup_broker

    home = Path(tempfile.mkdtemp(prefix="insights-bench-"))
    settings = Settings(home=home, secret_key="bench-secret-" + "x" * 40, job_resend_after_seconds=600)
    server = LiveServer(settings, db_url, redis_url, worker_threads=1).start()
    setup_broker(redis_url)
    rt = Runtime.create(settings, db_url, redis_url)
    try:
        org_id = uuid.uuid4()
        async with rt.db.unit_of_work() as uow:
            uow.session.add(Organization(id=org_id, name="Empty Org"))
        enqueue_ms, accepted_ms = [], []
        for i in range(n_jobs + 3):  # the first few warm up connections and are not counted
            await asyncio.sleep(idle)  # let the worker go idle (its polls back off to ~100 ms)
            async with rt.db.unit_of_work() as uow:
                job = jobs.create_job(uow, rt, kind="organization_export", organization_id=org_id)
            sent = utcnow()  # after commit: the message is in Redis
            deadline = time.monotonic() + 10
            while True:
                async with rt.db.session() as s:
                    row = await s.get(Job, job.id)
                if row.status in (JobStatus.succeeded, JobStatus.failed):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"job {job.id} still {row.status.value} after 10 s")
                await asyncio.sleep(0.01)
            if row.status != JobStatus.succeeded:
                raise SystemExit(f"job failed: {row.error}")
            if i >= 3:
                enqueue_ms.append((row.started_at - sent).total_seconds() * 1000)
                accepted_ms.append((row.started_at - row.created_at).total_seconds() * 1000)
        return enqueue_ms, accepted_ms
    finally:
        await rt.close()
        server.stop()


async def main_async(args: argparse.Namespace) -> None:
    from server.migrate import upgrade

    name, db_url = await create_database()
    redis_url, lock_client, token = take_redis_db(REDIS)
    try:
        await asyncio.to_thread(upgrade, db_url)
        baseline = await asyncio.to_thread(redis_baseline, redis_url, args.jobs)
        enqueue_ms, accepted_ms = await measure(db_url, redis_url, args.jobs, args.idle)
    finally:
        if lock_client.get(LOCK) == token.encode():
            lock_client.flushdb()
        lock_client.close()
        await drop_database(name)

    print(f"job pick-up latency, {args.jobs} organization_export jobs of an empty organization, "
          f"1 idle in-process worker (worker_timeout 100 ms), {args.idle:.1f} s idle before each")
    print(summary("enqueue -> claim", enqueue_ms))
    print(summary("accepted -> claim", accepted_ms))
    print(summary("baseline: Redis BLPOP", baseline))
    ratio = statistics.median(enqueue_ms) / max(statistics.median(baseline), 1e-3)
    print(f"ratio enqueue->claim p50 / baseline p50: {ratio:.0f}x")
    verdict = "meets" if pct(enqueue_ms, 0.95) < 100 else "MISSES"
    print(f"target p95 < 100 ms: {verdict} ({pct(enqueue_ms, 0.95):.1f} ms)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--idle", type=float, default=0.3, help="seconds the worker idles before each job")
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
