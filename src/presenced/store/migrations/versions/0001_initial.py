"""Realms, users, API keys, presence rows, the per-realm sequence, activity intervals.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "realms",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subdomain", sa.String(63), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("deactivated", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("presence_disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("date_created", sa.Float, nullable=False),
    )
    op.create_table(
        "presence_sequences",
        sa.Column("realm_id", sa.Integer, sa.ForeignKey("realms.id"), primary_key=True),
        sa.Column("last_update_id", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("realm_id", sa.Integer, sa.ForeignKey("realms.id"), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("delivery_email", sa.String(254), nullable=False),
        sa.Column("full_name", sa.String(100), nullable=False),
        sa.Column("role", sa.Integer, nullable=False),
        sa.Column("bot_type", sa.Integer, nullable=True),
        sa.Column("bot_owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("date_joined", sa.Float, nullable=False),
        sa.Column("presence_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("timezone", sa.String(40), nullable=False, server_default=""),
    )
    op.create_index(
        "users_realm_email_lower", "users", ["realm_id", sa.text("lower(email)")], unique=True
    )
    op.create_index(
        "users_realm_delivery_email_lower",
        "users",
        ["realm_id", sa.text("lower(delivery_email)")],
        unique=True,
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(8), nullable=False),
        sa.Column("label", sa.String(100), nullable=False, server_default=""),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "user_presence",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("realm_id", sa.Integer, sa.ForeignKey("realms.id"), nullable=False),
        sa.Column("last_active_time", sa.Float, nullable=True),
        sa.Column("last_connected_time", sa.Float, nullable=True),
        sa.Column("last_update_id", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_index("user_presence_realm_update", "user_presence", ["realm_id", "last_update_id"])
    op.create_index(
        "user_presence_realm_connected", "user_presence", ["realm_id", "last_connected_time"]
    )
    op.create_table(
        "user_activity_intervals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("start_time", sa.Float, nullable=False),
        sa.Column("end_time", sa.Float, nullable=False),
    )
    op.create_index(
        "user_activity_intervals_user_end", "user_activity_intervals", ["user_id", "end_time"]
    )


def downgrade() -> None:
    for table in (
        "user_activity_intervals",
        "user_presence",
        "api_keys",
        "users",
        "presence_sequences",
        "realms",
    ):
        op.drop_table(table)
