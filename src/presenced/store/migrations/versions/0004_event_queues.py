"""Event queues saved at shutdown and loaded at start (the embedded mode's queues).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No foreign keys: rows live only between a shutdown and the next start, and a queue of a
    # user deleted meanwhile is simply refused when its client polls.
    op.create_table(
        "saved_event_queues",
        sa.Column("queue_id", sa.String(64), primary_key=True),
        sa.Column("realm_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "saved_change_logs",
        sa.Column("realm_id", sa.Integer, primary_key=True),
        sa.Column("changes", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("saved_change_logs")
    op.drop_table("saved_event_queues")
