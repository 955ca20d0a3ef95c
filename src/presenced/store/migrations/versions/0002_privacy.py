"""Guest access (realm setting, channels, subscriptions), user status, directory version.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("realms") as batch:
        batch.add_column(
            sa.Column(
                "can_access_all_users_group",
                sa.String(20),
                nullable=False,
                server_default="everyone",
            )
        )
    op.create_table(
        "channels",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("realm_id", sa.Integer, sa.ForeignKey("realms.id"), nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("description", sa.String(1024), nullable=False, server_default=""),
        sa.Column("date_created", sa.Float, nullable=False),
    )
    op.create_index(
        "channels_realm_name_lower", "channels", ["realm_id", sa.text("lower(name)")], unique=True
    )
    op.create_table(
        "subscriptions",
        sa.Column("channel_id", sa.Integer, sa.ForeignKey("channels.id"), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    )
    op.create_index("subscriptions_user", "subscriptions", ["user_id"])
    op.create_table(
        "user_status",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("status_text", sa.String(60), nullable=False, server_default=""),
        sa.Column("emoji_name", sa.String(80), nullable=False, server_default=""),
        sa.Column("emoji_code", sa.String(80), nullable=False, server_default=""),
        sa.Column("reaction_type", sa.String(30), nullable=False, server_default="unicode_emoji"),
        sa.Column("timestamp", sa.Float, nullable=False),
    )
    # Bumped by every change to realms, users, keys, channels or subscriptions, so that a
    # process's caches notice what another process (the CLI, another server) changed.
    op.create_table(
        "directory_version",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO directory_version (id, version) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("directory_version")
    op.drop_table("user_status")
    op.drop_table("subscriptions")
    op.drop_table("channels")
    with op.batch_alter_table("realms") as batch:
        batch.drop_column("can_access_all_users_group")
