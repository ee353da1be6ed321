#!/usr/bin/env python3
"""Print the README's settings table, generated from the field descriptions in server/settings.py.

    .venv/bin/python tools/settings_table.py                 # print the table
    .venv/bin/python tools/settings_table.py --write README.md   # replace it between the markers
    .venv/bin/python tools/settings_table.py --check README.md   # exit 1 when the README is stale

The table goes between `<!-- settings:start -->` and `<!-- settings:end -->`. Settings are grouped
by the `# --- group ---` comments of server/settings.py, in their order there.
"""

from __future__ import annotations

import argparse
import enum
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

START = "<!-- settings:start -->"
END = "<!-- settings:end -->"
_GROUP = re.compile(r"^\s*#\s*---\s*(.+?)\s*-*\s*$")
_FIELD = re.compile(r"^\s{4}(\w+)\s*:")


def _groups(source: str, names: set[str]) -> dict[str, str]:
    """Field name -> group title, read from the `# --- title ---` comments of the class body."""
    group, out = "", {}
    for line in source.splitlines():
        if m := _GROUP.match(line):
            group = m.group(1)
        elif (m := _FIELD.match(line)) and m.group(1) in names:
            out[m.group(1)] = group
    return out


def _default(field) -> str:  # noqa: ANN001
    if field.default_factory is not None:
        value = field.default_factory()
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, (list, tuple)):
        return "`[]`" if not value else f"`{list(value)!r}`"
    return f"`{value}`"


def table() -> str:
    from server.settings import Settings

    prefix = Settings.model_config.get("env_prefix", "")
    fields = Settings.model_fields
    source = (ROOT / "server" / "settings.py").read_text()
    groups = _groups(source, set(fields))
    lines: list[str] = []
    current = None
    for name, field in fields.items():
        group = groups.get(name, "")
        if group != current:
            if lines:
                lines.append("")
            if group:
                lines += [f"**{group[0].upper()}{group[1:]}**", ""]
            lines += ["| Variable | Default | Meaning |", "|---|---|---|"]
            current = group
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{prefix}{name.upper()}` | {_default(field)} | {description} |")
    return "\n".join(lines) + "\n"


def render(readme: str) -> str:
    """`readme` with the table between the markers replaced by the current one."""
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {START} ... {END} section")
    return readme[: start + len(START)] + "\n" + table() + readme[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", metavar="README", type=Path, help="replace the table in this file")
    action.add_argument("--check", metavar="README", type=Path, help="exit 1 when this file's table is stale")
    args = parser.parse_args(argv)
    if args.write:
        args.write.write_text(render(args.write.read_text()))
        return 0
    if args.check:
        text = args.check.read_text()
        if render(text) != text:
            print(f"{args.check}: the settings table is stale; run `make readme`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
