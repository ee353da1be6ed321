#!/usr/bin/env python3
"""Vendor the GraphiQL browser assets into ``server/static/graphiql/``.

Strawberry's stock GraphiQL page (``strawberry/static/graphiql.html``) loads
its JS/CSS from unpkg.com with pinned versions and Subresource-Integrity
(``integrity="sha384-..."``) hashes.  Insights must work without internet
access, so we serve those very same files ourselves.

unpkg.com serves files straight out of the npm tarballs, so each asset is
re-fetched here with ``npm pack <name>@<version>`` (which talks to the npm
registry and checks the tarball against the registry's sha512 ``dist.integrity``),
the needed file is extracted, and its sha384 is compared against the hash that
strawberry's page states.  The bytes are byte-for-byte identical to the CDN's,
so the page keeps the original ``integrity`` attributes unchanged.

Files are laid out as ``<name>@<version>/<file name>``, e.g.
``server/static/graphiql/react@18.2.0/react.production.min.js`` (from the
tarball's ``package/umd/react.production.min.js``).
``VERSIONS.txt`` records every package@version, file, its sha384 and the
tarball's sha512.

Hand-written files in the same folder (``index.html``, ``insights-graphiql.js``,
``insights-graphiql.css``, ``favicon.svg``) are not touched by this script.

Usage (from the repository root)::

    .venv/bin/python tools/vendor_graphiql.py           # download + write + verify
    .venv/bin/python tools/vendor_graphiql.py --check   # verify the committed files, offline
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

REPO_ROOT = Path(__file__).resolve().parents[1]
DEST_DIR = REPO_ROOT / "server" / "static" / "graphiql"


@dataclass(frozen=True)
class Asset:
    package: str  # npm package name
    version: str  # exact version
    path: str  # path inside the package (tarball member minus the "package/" prefix)
    sha384: str  # SRI string, "sha384-<base64>"; the hash strawberry's page states
    tarball_sha512: str  # npm dist.integrity of the tarball, "sha512-<base64>"

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"

    @property
    def rel_path(self) -> str:
        """Path relative to server/static/graphiql/: ``<name>@<version>/<file name>``.

        Flattened (no ``umd/`` or ``dist/`` level): the repository's .gitignore
        ignores every ``dist/`` directory.
        """
        return f"{self.spec}/{PurePosixPath(self.path).name}"


# Pinned exactly as in strawberry-graphql 0.341.2's strawberry/static/graphiql.html.
# js-cookie@3.0.5 (only used there to forward Django's "csrftoken" cookie) is
# deliberately not vendored: the Insights page does not use it.
ASSETS: tuple[Asset, ...] = (
    Asset(
        "react",
        "18.2.0",
        "umd/react.production.min.js",
        "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
        "sha512-/3IjMdb2L9QbBdWiW5e3P2/npwMBaU9mHCSCUzNln0ZCYbcfTsGbTJrU/kGemdH2IWmB2ioZ+zkxtmq6g09fGQ==",
    ),
    Asset(
        "react-dom",
        "18.2.0",
        "umd/react-dom.production.min.js",
        "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
        "sha512-6IMTriUmvsjHUjNtEDudZfuDQUoWXVxKHhlEGSk81n4YFS+r/Kl99wXiwlVXtPBtJenozv2P+hxDsw9eA7Xo6g==",
    ),
    Asset(
        "graphiql",
        "3.8.3",
        "graphiql.min.css",
        "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
        "sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw==",
    ),
    Asset(
        "graphiql",
        "3.8.3",
        "graphiql.min.js",
        "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
        "sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw==",
    ),
    Asset(
        "@graphiql/plugin-explorer",
        "1.0.2",
        "dist/style.css",
        "sha384-5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi",
        "sha512-9j+kg2UjtLZD5EBmGjeWHkoVVxtbShYg2DzbUVebibnZYZM/iMBEF4vaccXJIAm5KaomIPLx0aoNs4LbODyc3Q==",
    ),
    Asset(
        "@graphiql/plugin-explorer",
        "1.0.2",
        "dist/index.umd.js",
        "sha384-2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9",
        "sha512-9j+kg2UjtLZD5EBmGjeWHkoVVxtbShYg2DzbUVebibnZYZM/iMBEF4vaccXJIAm5KaomIPLx0aoNs4LbODyc3Q==",
    ),
)


def sri(data: bytes, algo: str = "sha384") -> str:
    """Subresource-Integrity string for ``data`` (e.g. ``sha384-<base64>``)."""
    return f"{algo}-" + base64.b64encode(hashlib.new(algo, data).digest()).decode("ascii")


def _package_dirs() -> list[str]:
    """Top-level directory names the vendored packages occupy under DEST_DIR."""
    return sorted({a.rel_path.split("/", 1)[0] for a in ASSETS})


def _npm_pack(spec: str, workdir: Path) -> tuple[Path, str]:
    """``npm pack spec`` into workdir; return (tarball path, registry sha512 integrity)."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not on PATH; install Node.js/npm (Debian: apt-get install -y npm)")
    proc = subprocess.run(
        [npm, "pack", spec, "--json", "--pack-destination", str(workdir)],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"npm pack {spec} failed:\n{proc.stderr}")
    info = json.loads(proc.stdout)[0]
    return workdir / info["filename"], info["integrity"]


def _extract_member(tarball: Path, path: str) -> bytes:
    with tarfile.open(tarball, "r:gz") as tar:
        member = tar.getmember(f"package/{path}")
        if not member.isfile():
            raise SystemExit(f"{tarball.name}: package/{path} is not a regular file")
        fh = tar.extractfile(member)
        assert fh is not None
        return fh.read()


def _versions_text() -> str:
    lines = [
        "# GraphiQL assets vendored from the npm registry by tools/vendor_graphiql.py.",
        "# Byte-identical to the unpkg.com files referenced (with these same SRI hashes)",
        "# by strawberry-graphql 0.341.2's strawberry/static/graphiql.html.",
        "# Columns: package@version  file (under server/static/graphiql/)  path in the npm tarball  sha384 (SRI)  npm tarball sha512",
    ]
    for a in ASSETS:
        lines.append(f"{a.spec}  {a.rel_path}  package/{a.path}  {a.sha384}  {a.tarball_sha512}")
    return "\n".join(lines) + "\n"


def check(dest: Path = DEST_DIR) -> list[str]:
    """Verify the vendored files on disk; return a list of problems (empty = OK)."""
    problems: list[str] = []
    for a in ASSETS:
        f = dest / a.rel_path
        if not f.is_file():
            problems.append(f"missing: {f}")
            continue
        got = sri(f.read_bytes())
        if got != a.sha384:
            problems.append(f"hash mismatch: {f}: {got} != {a.sha384}")
    versions = dest / "VERSIONS.txt"
    if not versions.is_file() or versions.read_text() != _versions_text():
        problems.append(f"{versions} is missing or out of date")
    return problems


def _compare_with_strawberry() -> list[str]:
    """Warn if the installed strawberry's page pins different assets than ours."""
    try:
        import strawberry  # noqa: PLC0415
    except ImportError:
        return []
    page = Path(strawberry.__file__).parent / "static" / "graphiql.html"
    if not page.is_file():
        return []
    html = page.read_text(encoding="utf-8")
    pinned = dict(re.findall(r'(?:src|href)="https://unpkg\.com/([^"]+)"\s+integrity="([^"]+)"', html))
    ours = {f"{a.spec}/{a.path}": a.sha384 for a in ASSETS}  # keyed like the unpkg URL
    notes = []
    for rel, h in pinned.items():
        if rel.startswith("js-cookie@"):
            continue
        if ours.get(rel) != h:
            notes.append(f"installed strawberry pins {rel} {h}; this script pins {ours.get(rel)}")
    return notes


def vendor(dest: Path = DEST_DIR) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vendor-graphiql-") as tmp:
        workdir = Path(tmp)
        tarballs: dict[str, Path] = {}
        for a in ASSETS:
            if a.spec not in tarballs:
                print(f"npm pack {a.spec}", flush=True)
                tarball, integrity = _npm_pack(a.spec, workdir)
                if integrity != a.tarball_sha512:
                    raise SystemExit(f"{a.spec}: tarball integrity {integrity} != pinned {a.tarball_sha512}")
                tarballs[a.spec] = tarball
            data = _extract_member(tarballs[a.spec], a.path)
            got = sri(data)
            if got != a.sha384:
                raise SystemExit(f"{a.spec}/{a.path}: sha384 {got} != pinned {a.sha384}")
            out = dest / a.rel_path
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            print(f"  wrote {out.relative_to(REPO_ROOT)} ({len(data)} bytes, {got})")

    # Drop stale files inside the package directories this script owns.
    wanted = {dest / a.rel_path for a in ASSETS}
    for top in _package_dirs():
        for f in sorted((dest / top).rglob("*"), reverse=True):  # children before parents
            if f.is_file() and f not in wanted:
                f.unlink()
                print(f"  removed stale {f.relative_to(REPO_ROOT)}")
            elif f.is_dir() and not any(f.iterdir()):
                f.rmdir()
    (dest / "VERSIONS.txt").write_text(_versions_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only verify the files already vendored (no network)")
    args = parser.parse_args(argv)

    if not args.check:
        vendor()
    problems = check()
    for note in _compare_with_strawberry():
        print(f"note: {note}")
    if problems:
        for p in problems:
            print(f"ERROR: {p}", file=sys.stderr)
        return 1
    print(f"OK: {len(ASSETS)} GraphiQL assets in {DEST_DIR.relative_to(REPO_ROOT)} match their pinned sha384")
    return 0


if __name__ == "__main__":
    sys.exit(main())
