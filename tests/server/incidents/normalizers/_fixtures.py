"""Where the webhook fixtures live, and how to load them (no conftest: the tests run with --noconftest).

Two sets in the same file format (shared/fixtures/webhooks/README.md):
- the shared recorded-shape deliveries, in `shared/` beside the checkout (`<checkout>/../shared`),
  or wherever INSIGHTS_SHARED_DIR points;
- our own variants in tests/fixtures/webhooks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
OWN_DIR = REPO / "tests" / "fixtures" / "webhooks"


def shared_root() -> Path | None:
    """The shared/ directory: $INSIGHTS_SHARED_DIR, else beside the checkout, else inside it."""
    env = os.environ.get("INSIGHTS_SHARED_DIR")
    candidates = [Path(env)] if env else []
    candidates += [REPO.parent / "shared", REPO / "shared"]
    for candidate in candidates:
        if (candidate / "fixtures" / "webhooks").is_dir():
            return candidate.resolve()
    return None


def shared_fixture_dir() -> Path | None:
    root = shared_root()
    return root / "fixtures" / "webhooks" if root else None


def fixture_files() -> list[tuple[str, Path]]:
    """(test id, path) for every fixture file of both sets."""
    out: list[tuple[str, Path]] = []
    shared = shared_fixture_dir()
    for label, directory in (("shared", shared), ("own", OWN_DIR)):
        if directory is None:
            continue
        for path in sorted(directory.glob("*/*.json")):
            out.append((f"{label}/{path.parent.name}/{path.stem}", path))
    return out


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
