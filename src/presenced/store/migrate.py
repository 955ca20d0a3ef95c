"""Schema migrations, declared once with Alembic for every backend and kept off the hot path."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LOCK = 0x70726573656E6364  # "presencd": the advisory lock that serialises upgrades


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(sqlalchemy_url: str) -> None:
    """Bring the database at ``sqlalchemy_url`` to the newest schema (idempotent)."""
    engine = sa.create_engine(sqlalchemy_url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Processes starting together take turns; the later ones find it current.
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
            config = _config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def is_current(sqlalchemy_url: str) -> bool:
    engine = sa.create_engine(sqlalchemy_url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    head = ScriptDirectory.from_config(_config()).get_current_head()
    return current == head
