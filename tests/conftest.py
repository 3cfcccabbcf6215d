"""Shared fixtures: small samples of the real corpora."""

import pytest

from corpora import corpus_path


@pytest.fixture(scope="session")
def newsgroups_sample():
    """300 real 20 Newsgroups training posts (15 from each group), as (texts, labels)."""
    root = corpus_path("20news-bydate/20news-bydate-train")
    texts, labels = [], []
    for group in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(group.iterdir())[:15]:
            texts.append(f.read_bytes().decode("latin-1"))
            labels.append(group.name)
    return texts, labels
