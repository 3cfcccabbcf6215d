"""Where the real corpora are: ``ACCUM_CORPORA``, default ``../shared/data`` beside the checkout.

When a corpus is missing, tests fail under CI (``CI`` set) and skip elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def corpora_dir() -> Path:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return Path(os.environ.get("ACCUM_CORPORA") or default)


def corpus_path(sub: str = "") -> Path:
    """Path of a corpus under the corpora folder; fail (CI) or skip when it is missing."""
    path = corpora_dir() / sub
    if not path.exists():
        message = f"corpus {path} is missing (set ACCUM_CORPORA to the shared data folder)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
