#!/usr/bin/env bash
# Development helper while the incidents schema is young: regenerate migration 0002 from the
# models (drop it, upgrade a scratch database to 0001, autogenerate). Never use once 0002 landed.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f migrations/versions/0002_*.py
db="insights_gen_$$"
psql -h 127.0.0.1 -U postgres -qc "create database $db" >/dev/null
trap 'psql -h 127.0.0.1 -U postgres -qc "drop database if exists $db with (force)" >/dev/null' EXIT
.venv/bin/python - "$db" <<'PY'
import sys
from alembic import command
from server.migrate import alembic_config, upgrade
url = f"postgresql://postgres@127.0.0.1:5432/{sys.argv[1]}"
upgrade(url, "0001")
command.revision(alembic_config(url), message="incidents: webhook configs, deliveries, alerts, incidents, timeline, change events", autogenerate=True, rev_id="0002")
PY
f=$(ls migrations/versions/0002_*.py)
# autogenerate does not drop enum types on downgrade
cat >> "$f" <<'PY'
    for enum_name in ("delivery_status", "incident_status", "severity", "ai_status", "alert_status"):
        sa.Enum(name=enum_name).drop(op.get_bind(), checkfirst=True)
PY
echo "wrote $f"
