"""Persistence: the SQL catalog and accumulator snapshots of a store directory."""

from .failures import StoreError
from .store import Store
from .writer import StoreWriter

__all__ = ["Store", "StoreError", "StoreWriter"]
