"""Durable state behind one interface; see :mod:`presenced.store.base`."""

from presenced.store.base import Store
from presenced.store.factory import open_store

__all__ = ["Store", "open_store"]
