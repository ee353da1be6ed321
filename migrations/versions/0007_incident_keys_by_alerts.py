"""incidents: find the incidents holding a fingerprint or group key by their alerts

The GIN indexes on `incidents.fingerprints` and `incidents.group_keys` are dropped. An incident
holds up to 200 of each, and an update that changed either array (every alert joining an
incident) re-inserted all of them into the index and kept the update from being HOT; that was the
largest cost of ingestion's write (bench.ingest_grafana: 2,060 -> 2,400 alerts/s without them).
Ingestion now finds the open incidents holding a key through the latest alerts of that key, by
`ix_alerts_org_fingerprint` (now with `created_at`, to read them newest first) and the new
partial `ix_alerts_org_group_key`; each alert insert already wrote the first and adds one btree
entry for the second.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

GROUP_KEY_SET = sa.text("group_key IS NOT NULL")


def upgrade() -> None:
    op.drop_index('ix_incidents_fingerprints', table_name='incidents')
    op.drop_index('ix_incidents_group_keys', table_name='incidents')
    op.drop_index('ix_alerts_org_fingerprint', table_name='alerts')
    op.create_index('ix_alerts_org_fingerprint', 'alerts', ['organization_id', 'fingerprint', 'created_at'])
    op.create_index('ix_alerts_org_group_key', 'alerts', ['organization_id', 'group_key', 'created_at'],
                    postgresql_where=GROUP_KEY_SET)


def downgrade() -> None:
    op.drop_index('ix_alerts_org_group_key', table_name='alerts', postgresql_where=GROUP_KEY_SET)
    op.drop_index('ix_alerts_org_fingerprint', table_name='alerts')
    op.create_index('ix_alerts_org_fingerprint', 'alerts', ['organization_id', 'fingerprint'])
    for column in ('fingerprints', 'group_keys'):
        op.create_index(f'ix_incidents_{column}', 'incidents', [column], postgresql_using='gin',
                        postgresql_with={'gin_pending_list_limit': 128})
