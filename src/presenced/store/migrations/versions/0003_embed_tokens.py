"""Embed tokens: read-only links to a live presence directory, stored only as hashes.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "embed_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("realm_id", sa.Integer, sa.ForeignKey("realms.id"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(8), nullable=False),
        sa.Column("label", sa.String(200), nullable=False, server_default=""),
        # JSON arrays as text (portable): user ids covered (NULL: the whole organization), and
        # the origins allowed to frame the page and call the JSON endpoint (empty: any).
        sa.Column("user_ids", sa.Text, nullable=True),
        sa.Column("origins", sa.Text, nullable=False, server_default="[]"),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("embed_tokens_realm", "embed_tokens", ["realm_id"])


def downgrade() -> None:
    op.drop_index("embed_tokens_realm", "embed_tokens")
    op.drop_table("embed_tokens")
