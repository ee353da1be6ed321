"""The README's settings table is generated from server/settings.py (tools/settings_table.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from server.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def _tool():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("settings_table", REPO_ROOT / "tools" / "settings_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_settings_table_is_not_stale():
    tool = _tool()
    readme = (REPO_ROOT / "README.md").read_text()
    assert tool.START in readme and tool.END in readme
    assert tool.render(readme) == readme, "the README's settings table is stale: run `make readme` and commit README.md"


def test_table_lists_every_setting_with_its_description():
    table = _tool().table()
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description"
        row = next((line for line in table.splitlines() if line.startswith(f"| `INSIGHTS_{name.upper()}` |")), None)
        assert row is not None, name
        assert field.description.replace("|", "\\|") in row


def test_defaults_are_shown_as_an_operator_would_type_them():
    table = _tool().table()
    assert "| `INSIGHTS_PORT` | `8000` |" in table
    assert "| `INSIGHTS_DATABASE_URL` | unset |" in table
    assert "| `INSIGHTS_GRAPHIQL` | `true` |" in table
    assert "| `INSIGHTS_CORS_ORIGINS` | `[]` |" in table


def test_stale_readme_is_detected(tmp_path):
    tool = _tool()
    readme = (REPO_ROOT / "README.md").read_text()
    stale = readme.replace("| `INSIGHTS_PORT` | `8000` |", "| `INSIGHTS_PORT` | `8080` |")
    assert stale != readme
    path = tmp_path / "README.md"
    path.write_text(stale)
    assert tool.main(["--check", str(path)]) == 1
    assert tool.main(["--write", str(path)]) == 0
    assert path.read_text() == readme
    assert tool.main(["--check", str(path)]) == 0
