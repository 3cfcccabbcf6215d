"""The last ``accum capacity --neural`` result of a store, kept in the store directory so
that other commands (``accum report``) show it without training the models again."""

from __future__ import annotations

import json
from pathlib import Path

from .snapshots import write_small_file

FILE = "capacity-neural.json"


def write_neural_capacity(store_path, result: dict) -> Path:
    """Record ``result`` (see :func:`accum.neural.measure`) as ``<store>/capacity-neural.json``,
    atomically: a reader sees the previous result or this one, never a part."""
    path = Path(store_path) / FILE
    write_small_file(path, json.dumps(result, indent=2, ensure_ascii=False))
    return path


def read_neural_capacity(store_path) -> dict | None:
    """The result :func:`write_neural_capacity` recorded, or None when there is none."""
    try:
        return json.loads((Path(store_path) / FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
