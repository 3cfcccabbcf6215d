"""Persistence: the SQL catalog and accumulator snapshots of a store directory."""

from .store import Store, StoreError, StoreWriter

__all__ = ["Store", "StoreError", "StoreWriter"]
