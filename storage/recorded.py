"""A store's own pages, read again from the sources its runs recorded.

The store keeps counts and page vectors, not text. What needs the text again (the
saturation bands of ``accum saturation --shuffles``, the compressed page sizes of
``accum capacity``) re-reads the sources each ingest run recorded in the catalog, with
the reader options it recorded, and keeps the pages the catalog holds.
"""

from __future__ import annotations

from accum.ingest import content_hash
from accum.pages import DEFAULT_MAX_PAGE_BYTES, Page

from .failures import StoreError


def recorded_pages(store) -> tuple[list[str], list[str]]:
    """Texts and categories of ``store``'s pages (a :class:`~accum.storage.Store`), re-read
    from its recorded sources: :func:`iter_recorded_pages` as two lists."""
    texts, cats = [], []
    for text, category in iter_recorded_pages(store):
        texts.append(text)
        cats.append(category)
    return texts, cats


def iter_recorded_pages(store):
    """(text, category) of each of ``store``'s pages (a :class:`~accum.storage.Store`),
    re-read from its recorded sources one at a time, so that a measure over the pages
    need not hold them all.

    Pages are matched to the catalog by content hash (each once).

    Raises
    ------
    StoreError
        When a run's sources cannot be read as recorded, or hold fewer of the store's
        pages than it has (moved or changed), once the sources are read.
    """
    from accum.sources import iter_sources

    labels = store.document_labels()
    seen = set()
    for run in store.info()["runs"]:
        cmd = run["command"]
        if not cmd.get("sources") or cmd.get("demo"):
            continue
        try:
            records = iter_sources(
                list(cmd["sources"]), fmt=cmd.get("format", "auto"), label=cmd.get("label"),
                text_field=cmd.get("text_field", "text"), url_field=cmd.get("url_field", "url"),
                max_page_bytes=cmd.get("max_page_bytes", DEFAULT_MAX_PAGE_BYTES),
                # runs recorded before follow_links existed followed every link
                follow_links=cmd.get("follow_links", True))
            for r in records:
                if isinstance(r, Page):
                    h = content_hash(r.text)
                    if h in labels and h not in seen:
                        seen.add(h)
                        yield r.text, labels[h]
        except ValueError as exc:
            raise StoreError(f"cannot re-read the sources of run {run['id']}: {exc}") from exc
    if len(seen) != len(labels):
        raise StoreError(
            f"found {len(seen):,} of the store's {len(labels):,} pages in its recorded sources "
            "(moved or changed?)"
        )
