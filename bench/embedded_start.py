"""Start-up time of the embedded PostgreSQL + Redis (server/embedded.py) alone.

    python bench/embedded_start.py [--runs N] [--home DIR] [-v]

cold = first start on an empty home (includes initdb), warm = start on an existing home.
Each figure is the wall time of EmbeddedServices.start() (until both servers accept
connections and the `insights` database exists); stop() times are printed too.
Without --home a temporary home is used and deleted afterwards.  Exits 0.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.embedded import EmbeddedServices  # noqa: E402


def _cycle(home: Path) -> tuple[float, float]:
    services = EmbeddedServices(home)
    t0 = time.perf_counter()
    services.start()
    started = time.perf_counter() - t0
    t0 = time.perf_counter()
    services.stop()
    return started, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="warm starts to measure (default 5)")
    parser.add_argument("--home", type=Path, help="home to use (must not exist; kept afterwards)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is started")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(relativeCreated)7.0fms %(name)s %(levelname)s %(message)s")

    tmp = None
    if args.home is None:
        tmp = Path(tempfile.mkdtemp(prefix="insights-bench-"))
        tmp.chmod(0o755)  # as root, PostgreSQL's service user must traverse it
        home = tmp / "home"
    else:
        home = args.home
        if home.exists() and any(home.iterdir()):
            parser.error(f"{home} is not empty; a cold start needs an empty home")
    try:
        cold, cold_stop = _cycle(home)
        print(f"cold start: {cold:.3f} s   (stop {cold_stop:.3f} s)   home={home}")
        warm = []
        for i in range(args.runs):
            start, stop = _cycle(home)
            warm.append(start)
            print(f"warm start #{i + 1}: {start:.3f} s   (stop {stop:.3f} s)")
        if warm:
            print(f"warm start: median {statistics.median(warm):.3f} s, min {min(warm):.3f} s, max {max(warm):.3f} s")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
