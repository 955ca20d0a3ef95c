"""Choose the store backend from the database URL."""

from __future__ import annotations

from presenced.store.base import Store, StoreError


def sqlite_path(database_url: str) -> str | None:
    """The file path of a ``sqlite:///path`` URL (``sqlite:////abs/path`` for absolute paths)."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        return None
    path = database_url[len(prefix) :]
    if not path or path == ":memory:":
        raise StoreError("the SQLite database must be a file: sqlite:///path/to/presenced.db")
    return path


def open_store(database_url: str) -> Store:
    """A store for ``database_url``; call ``await store.open()`` before use."""
    path = sqlite_path(database_url)
    if path is not None:
        from presenced.store.sqlite import SQLiteStore

        return SQLiteStore(path)
    scheme = database_url.split(":", 1)[0]
    raise StoreError(
        f"unsupported database URL scheme {scheme!r}: this version stores its data in SQLite "
        "(PRESENCED_DATABASE_URL=sqlite:///path/to/presenced.db)"
    )
