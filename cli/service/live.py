"""The model the service answers from, and its switch to newer snapshots.

The service holds one :class:`Served` (a snapshot's accumulator, its default classifier
and per-snapshot caches) in one attribute of :class:`LiveModel`. A request reads that
attribute once and uses what it got to the end, so it always sees one whole model.

Every request *pokes* the live model; at most every ``check_seconds`` a poke asks the
catalog (on a background thread, never on the request's path) for the newest registered
snapshot and for the calibrations kept. When either changed, the same thread loads the
snapshot and builds its classifier, then swaps the reference with one assignment. A failed load is logged and
the old model keeps answering; the next check tries again. An ingest through the service
(``POST /documents``) swaps synchronously before it answers, so a client reads its own
writes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

log = logging.getLogger("accum.serve")

#: Classifiers with a custom alpha (asked with the token) kept per snapshot; each is as
#: large as the counts. The registered models at their default alpha are kept apart, all
#: of them: they are a finite set.
MODEL_CACHE = 2
#: Saturation answers and figures kept per snapshot.
RESULT_CACHE = 32
#: What :meth:`Served.peek` answers for a key not cached.
MISSING = object()


@dataclass
class Served:
    """One snapshot, loaded: what a request answers from."""

    snapshot: str | None  # catalog name of the snapshot (None: the store has none yet)
    snapshot_id: int | None
    calibration: str | None  # Store.calibration_stamp() when loaded
    load_summary: object  # () -> what reports need of the counts (Store.summary), loaded when first needed
    clf: object | None  # the default classifier (None when the store has no categories)
    model: str | None  # None: the store's default model
    alpha: float | None
    opener: object = None  # (model, alpha) -> classifier, as the CLI builds it (never saving it)
    loaded_at: float = field(default_factory=time.time)
    _models: dict = field(default_factory=dict)  # (model, None): registered models at their default alpha
    _custom: OrderedDict = field(default_factory=OrderedDict)  # (model, alpha): the last MODEL_CACHE asked
    _results: OrderedDict = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)  # held only to read or update the dicts
    _build_lock: threading.Lock = field(default_factory=threading.Lock)  # one model build at a time

    @property
    def n_categories(self) -> int:
        return len(self.clf.categories) if self.clf is not None else 0

    def summary(self):
        """What saturation answers need of the counts (:class:`~accum.counts.CountsSummary`,
        from the catalog: a few numbers per category), read at the first request that
        needs it, then kept with this snapshot."""
        return self.cached(("summary",), self.load_summary)

    def resolve(self, model: str | None, alpha: float | None) -> tuple[str | None, float | None]:
        """The (model, alpha) a request asks for, with its defaults filled in; alpha None
        means the model's own default."""
        default = self.model or (self.clf.name if self.clf is not None else None)
        name = model or default
        if alpha is None and name == default:
            alpha = self.alpha  # accum serve's --alpha (None: the model's default)
        if alpha is not None and alpha == default_alpha(name):
            alpha = None
        return name, alpha

    def served_alpha(self, model: str | None) -> float | None:
        """The alpha ``model`` answers with when a request gives none."""
        name, _ = self.resolve(model, None)
        return self.clf.alpha if self.clf is not None and name == self.clf.name else default_alpha(name)

    def is_custom(self, model: str | None, alpha: float | None) -> bool:
        """Whether answering needs a model built for this request: an alpha other than the
        served model's and the model's own default (anything else is one of a few models
        this snapshot keeps)."""
        name, alpha = self.resolve(model, alpha)
        return alpha is not None and not (self.clf is not None and name == self.clf.name and alpha == self.clf.alpha)

    def classifier(self, model: str | None, alpha: float | None):
        """The classifier for a request: the default one, another registered model at its
        default alpha (built once per snapshot and kept), or a custom alpha (the last
        :data:`MODEL_CACHE` kept); None when the store is empty. Built as the CLI opens
        them, but never saved into the store."""
        name, alpha = self.resolve(model, alpha)
        if self.clf is not None and name == self.clf.name and alpha in (None, self.clf.alpha):
            return self.clf
        models = self._custom if alpha is not None else self._models
        key = (name, alpha)
        with self._lock:
            clf = models.get(key)
        if clf is None:
            with self._build_lock:  # a model is as large as the counts: one build at a time
                with self._lock:
                    clf = models.get(key)
                if clf is None:
                    clf = self.opener(name, alpha)
        with self._lock:
            models[key] = clf
            if models is self._custom:
                self._custom.move_to_end(key)
                while len(self._custom) > MODEL_CACHE:
                    self._custom.popitem(last=False)
        return clf

    def peek(self, key):
        """What :meth:`cached` keeps for ``key``, or :data:`MISSING`."""
        with self._lock:
            return self._results.get(key, MISSING)

    def cached(self, key, compute):
        """``compute()`` once per snapshot and key (a few dozen kept)."""
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
        value = compute()
        with self._lock:
            self._results[key] = value
            while len(self._results) > RESULT_CACHE:
                self._results.popitem(last=False)
        return value


def default_alpha(model: str | None) -> float | None:
    """The alpha model ``model`` gets when none is given (None for an unknown or no model)."""
    from accum.classify import model_parameters

    try:
        return model_parameters(model).get("alpha") if model is not None else None
    except ValueError:
        return None


class LiveModel:
    """The current :class:`Served` of a store, switched to newer snapshots as they are committed.

    Parameters
    ----------
    store : accum.storage.Store
    opener : callable
        ``opener(model, alpha)``: the classifier over the store's newest snapshot, built
        exactly as ``accum classify`` builds it (None when the store has no categories).
    model, alpha : str, float or None
        The default classifier (as ``accum classify --model --alpha``; model None: the
        store's default).
    check_seconds : float
        Ask the catalog for a newer snapshot at most this often.
    """

    def __init__(self, store, opener, model: str | None = None, alpha: float | None = None,
                 check_seconds: float = 0.5):
        self.store = store
        self.opener = opener
        self.model = model
        self.alpha = alpha
        self.check_seconds = check_seconds
        self._current: Served | None = None
        self._swap_lock = threading.Lock()
        self._poke_lock = threading.Lock()
        self._checking = False
        self._last_check = 0.0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="accum-snapshot")
        self.switches = 0

    @property
    def current(self) -> Served:
        """The model to answer from (read once per request)."""
        if self._current is None:
            raise RuntimeError("the live model is not loaded yet: call load_now() first")
        return self._current

    def load_now(self) -> Served:
        """Load the newest snapshot now (if newer than the one served) and switch to it."""
        row, stamp = self.store.latest_snapshot(), self.store.calibration_stamp()
        current = self._current
        if current is not None and row is not None and (current.snapshot_id, current.calibration) == (
                row["id"], stamp):
            return current
        served = self._load(row, stamp)
        self._swap(served)
        return self._current

    def poke(self) -> None:
        """Called by every request: schedule a catalog check when one is due (never blocks)."""
        now = time.monotonic()
        if now - self._last_check < self.check_seconds or self._checking:
            return
        with self._poke_lock:
            if self._checking or now - self._last_check < self.check_seconds:
                return
            self._checking = True
            self._last_check = now
        try:
            self._pool.submit(self._check)
        except RuntimeError:  # shut down
            self._checking = False

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- internals ---------------------------------------------------------------------

    def _check(self) -> None:
        try:
            row, stamp = self.store.latest_snapshot(), self.store.calibration_stamp()
            current = self._current
            newer = row is not None and (
                current is None or current.snapshot_id is None or row["id"] > current.snapshot_id)
            recalibrated = current is not None and row is not None and stamp != current.calibration
            if newer or recalibrated:
                started = time.perf_counter()
                self._swap(self._load(row, stamp))
                log.info("switched to snapshot %s%s in %.2f s", row["name"],
                         " (new calibration)" if recalibrated and not newer else "", time.perf_counter() - started)
        except Exception:  # keep serving the old model; the next check tries again
            log.exception("could not load the newest snapshot; still answering from %s",
                          self._current.snapshot if self._current else None)
        finally:
            self._last_check = time.monotonic()
            self._checking = False

    def _load(self, row: dict | None, stamp: str | None) -> Served:
        """Load a snapshot and build its default classifier (nothing is shared with the old one).

        ``row`` is the catalog's newest snapshot and ``stamp`` its calibrations' stamp, both
        read *before* loading: loading reads those or newer ones, so the labels are never
        ahead of the model (if they lag, the next check loads again).
        """
        clf = self.opener(self.model, self.alpha)
        return Served(
            snapshot=None if row is None else row["name"],
            snapshot_id=None if row is None else row["id"], calibration=stamp,
            load_summary=self.store.summary, clf=clf, model=self.model, alpha=self.alpha, opener=self.opener,
        )

    def _swap(self, served: Served) -> None:
        with self._swap_lock:
            current = self._current
            if current is not None and current.snapshot_id is not None and (
                served.snapshot_id is None or served.snapshot_id < current.snapshot_id
            ):
                return  # a concurrent load already put a newer snapshot in place
            self._current = served  # one reference assignment: requests see old or new, whole
            self.switches += current is not None and current.snapshot_id != served.snapshot_id
