"""alerts: (incident_id, status) index instead of the partial one on firing alerts

The partial index `ix_alerts_incident_firing` (incident_id WHERE status = 'firing') matched the
open-alert lookup's predicate too, and with a young table's statistics the planner scanned it
for every fingerprint instead of using `uq_alerts_open_fingerprint`.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_alerts_incident_status', 'alerts', ['incident_id', 'status'], unique=False)
    op.drop_index('ix_alerts_incident_firing', table_name='alerts', postgresql_where=sa.text("status = 'firing'"))


def downgrade() -> None:
    op.create_index('ix_alerts_incident_firing', 'alerts', ['incident_id'], unique=False,
                    postgresql_where=sa.text("status = 'firing'"))
    op.drop_index('ix_alerts_incident_status', table_name='alerts')
