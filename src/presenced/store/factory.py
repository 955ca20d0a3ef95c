"""Choose the store backend from the database URL."""

from __future__ import annotations

from presenced.settings import Settings
from presenced.store.base import Store, StoreError


def sqlite_path(database_url: str) -> str | None:
    """The file path of a ``sqlite:///path`` URL (``sqlite:////abs/path`` for absolute paths)."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        if database_url.startswith("sqlite:"):
            raise StoreError(
                f"{database_url!r} is not a SQLite URL: write sqlite:///path/to/presenced.db "
                "(three slashes, four for an absolute path: sqlite:////var/lib/presenced.db)"
            )
        return None
    path = database_url[len(prefix) :]
    if not path or path == ":memory:":
        raise StoreError("the SQLite database must be a file: sqlite:///path/to/presenced.db")
    return path


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(
    database_url: str,
    *,
    pool_size: int = 8,
    timeout: float = 3.0,
    pool_timeout: float = 10.0,
) -> Store:
    """A store for ``database_url``; call ``await store.open()`` before use.

    ``sqlite:///path`` is the embedded file; ``postgresql://`` (or ``postgres://``) URLs, with
    a password and libpq options such as ``sslmode``, are PostgreSQL through a pool of
    ``pool_size`` connections whose connects and commands give up after ``timeout`` seconds,
    and for whose free connection a call waits at most ``pool_timeout`` seconds.
    """
    path = sqlite_path(database_url)
    if path is not None:
        from presenced.store.sqlite import SQLiteStore

        return SQLiteStore(path)
    if database_url.startswith(POSTGRES_SCHEMES):
        from presenced.store.postgres import PostgresStore

        return PostgresStore(
            database_url, pool_size=pool_size, timeout=timeout, pool_timeout=pool_timeout
        )
    scheme = database_url.split(":", 1)[0]
    raise StoreError(
        f"unsupported database URL scheme {scheme!r}: use "
        "PRESENCED_DATABASE_URL=sqlite:///path/to/presenced.db or "
        "postgresql://USER@HOST:PORT/DB"
    )


def redacted_url(database_url: str) -> str:
    """The URL as it may be shown: any password replaced by ``***``."""
    scheme, sep, rest = database_url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return database_url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def store_for(settings: Settings) -> Store:
    """The store the settings name, with their pool size and timeout."""
    return open_store(
        settings.database_url,
        pool_size=settings.database_pool_size,
        timeout=settings.database_timeout_secs,
        pool_timeout=settings.database_pool_timeout_secs,
    )
