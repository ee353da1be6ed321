"""Zero-config start of `insights serve`: time until /api/v1/health answers 200, and memory.

    python bench/zero_config_start.py [--runs N] [-v]

cold = empty INSIGHTS_HOME (initdb, migrations), warm = second start on the same home.
Each figure is wall time from spawning `python -m server.cli serve` until the health check
answers 200 (embedded PostgreSQL + Redis started, migrations applied, API, in-process worker
and scheduler up). Memory is read after start and one GraphQL request: the RSS of the insights
process itself, and the total of the insights process plus its children (embedded postgres
processes and redis-server), as RSS and as PSS (RSS double-counts PostgreSQL's shared buffers).
The time to stop on SIGINT is printed too.

Baseline measured in the same run: the same interpreter importing the modules the server
imports (`server.cli`, `server.app`, `graph.schema`, `workers.actors`, uvicorn), the floor of
any start; the ratio says how much of a warm start is ours beyond imports.

Targets: cold < 15 s, warm < 5 s, insights RSS < 250 MB. Exits 0 (a benchmark, not a test).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"cold": 15.0, "warm": 5.0, "rss_mb": 250.0}
MB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSIGHTS_")}
    env["INSIGHTS_HOME"] = str(home)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def memory(pid: int) -> dict[str, float]:
    """RSS of the process, and RSS/PSS of the process with all its descendants (MB)."""
    proc = psutil.Process(pid)
    procs = [proc] + proc.children(recursive=True)
    rss_total = pss_total = 0
    for p in procs:
        try:
            full = p.memory_full_info()
            rss_total += full.rss
            pss_total += getattr(full, "pss", full.rss)
        except psutil.Error:
            continue
    return {"rss": proc.memory_info().rss / MB, "rss_total": rss_total / MB, "pss_total": pss_total / MB,
            "processes": len(procs)}


def one_start(home: Path, verbose: bool) -> dict[str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = home.parent / f"serve-{port}.log"
    with open(log, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(port)], cwd=REPO_ROOT,
                                env=env_for(home), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"insights serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
                try:
                    if httpx.get(url + "/api/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() - t0 > 120:
                    raise RuntimeError(f"not healthy after 120 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.02)
            started = time.perf_counter() - t0
            r = httpx.post(url + "/graphql", json={"query": "{ __typename }"}, timeout=10)
            assert r.status_code == 200, r.text
            time.sleep(1.0)  # let the scheduler's first tick and the worker settle
            mem = memory(proc.pid)
        finally:
            t1 = time.perf_counter()
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            stopped = time.perf_counter() - t1
    if verbose:
        print(log.read_text())
    return {"start": started, "stop": stopped, **mem}


def import_baseline() -> float:
    code = "import server.cli, server.app, graph.schema, workers.actors, workers.inprocess, uvicorn, asyncpg"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env_for(Path("/nonexistent")), check=True)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="cold+warm pairs to measure (default 3)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the server logs")
    args = parser.parse_args()

    import_baseline()  # warm the OS file cache (and .pyc files) before anything is timed
    baseline = statistics.median(import_baseline() for _ in range(3))
    cold, warm = [], []
    for _ in range(args.runs):
        # Outside /tmp/pytest-of-*: as root the embedded PostgreSQL runs as a service user that
        # must be able to traverse the home's ancestors.
        base = Path(tempfile.mkdtemp(prefix="insights-bench-"))
        base.chmod(0o755)
        try:
            cold.append(one_start(base / "home", args.verbose))
            warm.append(one_start(base / "home", args.verbose))
        finally:
            shutil.rmtree(base, ignore_errors=True)

    def med(rows: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    def verdict(value: float, target: float) -> str:
        return "ok" if value < target else "MISSED"

    print(f"zero-config `insights serve` start ({args.runs} run(s) each, medians; Python {sys.version.split()[0]})")
    print(f"  baseline: importing the server's modules        {baseline:6.2f} s")
    for name, rows in (("cold", cold), ("warm", warm)):
        start = med(rows, "start")
        print(f"  {name} start until /api/v1/health is 200   {start:6.2f} s   "
              f"(target < {TARGETS[name]:.0f} s: {verdict(start, TARGETS[name])}; "
              f"{start / baseline:.1f}x the import baseline; runs: {', '.join('%.2f' % r['start'] for r in rows)})")
    print(f"  stop on SIGINT (API, worker, scheduler, postgres, redis)  {med(warm + cold, 'stop'):6.2f} s")
    rss = med(warm, "rss")
    print(f"  insights process RSS after start              {rss:6.1f} MB  "
          f"(target < {TARGETS['rss_mb']:.0f} MB: {verdict(rss, TARGETS['rss_mb'])})")
    print(f"  with embedded postgres + redis: RSS total     {med(warm, 'rss_total'):6.1f} MB, "
          f"PSS total {med(warm, 'pss_total'):.1f} MB ({int(med(warm, 'processes'))} processes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
