"""Why a store cannot be opened or written, in words: the store's exception and its messages.

Every failure of the disk or the catalog becomes a :class:`StoreError` that says what
happened, what the store still holds and what to do; these helpers word the reasons.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa


class StoreError(ValueError):
    """A store that cannot be opened or written as asked."""


def os_reason(exc: OSError) -> str:
    """A short reason for an OS error ("No space left on device", ...), with the path."""
    reason = os.strerror(exc.errno) if isinstance(exc.errno, int) and exc.errno > 0 else str(exc)
    filename = getattr(exc, "filename", None)
    return f"{reason} ({filename})" if filename else reason


def db_reason(exc: sa.exc.SQLAlchemyError) -> str:
    """The database's own message of a SQLAlchemy error (without SQLAlchemy's help link)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return " ".join(text.split()) or type(exc).__name__


READ_ONLY = "it is read-only (a read-only file system, or no write permission)"
DISK_FULL = "its file system is full (no space left on device)"


def unwritable_reason(path: Path) -> str | None:
    """Why nothing can be written in the directory ``path`` (None when something can)."""
    if not os.access(path, os.W_OK):
        return READ_ONLY
    try:
        if os.statvfs(path).f_bavail == 0:
            return DISK_FULL
    except OSError:
        pass
    return None


def unwritable_message(path: Path, reason: str, consequence: str = "nothing can be added to it") -> str:
    fix = "make room on it" if reason == DISK_FULL else "make it writable (or copy it to a writable place)"
    return f"cannot write to the store at {path}: {reason}; {consequence}, and the store is unchanged. " \
           f"To add to it, {fix} and run the command again"


def other_store_message(catalog_name: str, id_file: Path) -> str:
    """The refusal of a catalog whose store id is not the one in the directory's ``id_file``."""
    return (
        f"the catalog {catalog_name} belongs to another store directory, not to {id_file.parent} "
        f"(the ids in the catalog and in {id_file} differ or one is missing); "
        "give each store its own catalog (another database, or another PostgreSQL schema with "
        "?options=-csearch_path%3DNAME), or use the --store it was made with"
    )
