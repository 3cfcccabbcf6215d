"""numba settings for every kernel, how many threads the engine may use, and the kernel cache.

``ACCUM_NUMBA_CACHE=0`` turns the on-disk kernel cache off (e.g. for a read-only install);
``NUMBA_DISABLE_JIT=1`` (numba's own switch) runs kernel bodies as plain Python, which
makes them visible to coverage and tracebacks. ``ACCUM_THREADS`` caps the threads that
run kernels side by side (default: the CPUs this process may use); results never depend
on it.

The kernel cache
----------------
numba's on-disk cache (``cache=True``) keys a compiled kernel on its own source file
only. A kernel compiled together with kernels of another file (a primitive of
:mod:`accum._primitives`, a prefetch intrinsic, a kernel of a sibling file) would be
loaded stale after that other file changed. So that kernels can live in the file of
their concern and share primitives, this module, imported by every kernel module
before its first ``@njit``, keeps the cache honest once for all of them
(:func:`sync_kernel_cache`):

- the *kernel sources* are ``accum/_*kernels*.py``, every ``.py`` in an
  ``accum/_*kernels*/`` package, ``accum/_primitives.py``, ``accum/_prefetch.py`` and
  this file (:func:`kernel_sources`);
- each kernel source's *stamp* hashes its own text and that of every kernel source it
  imports, directly or not (:func:`source_stamps`), so editing the classifier's
  kernels leaves the generator's cache alone, while editing a primitive reaches both;
- in every folder numba may cache a kernel source in (its ``__pycache__``,
  ``NUMBA_CACHE_DIR``'s folder for it, numba's user-wide cache), a file
  ``<module>.kernel-stamp`` records the stamp its cache entries were compiled under;
  when it differs (or is missing while entries exist), that module's ``.nbi`` and
  ``.nbc`` files are deleted before anything is loaded, and the new stamp is written.

Concurrent processes may clear the same entries; numba then compiles again, which
costs time, never a wrong result.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re

#: Keyword arguments passed to every ``numba.njit`` in the kernel modules.
NJIT_OPTIONS = {
    "cache": os.environ.get("ACCUM_NUMBA_CACHE", "1") != "0",
    "nogil": True,
    "fastmath": False,  # scores must be exact and reproducible; no reassociation
}

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
STAMP_SUFFIX = ".kernel-stamp"


def threads() -> int:
    """Threads the engine may run kernels on at once (``ACCUM_THREADS``, default the CPUs available)."""
    value = os.environ.get("ACCUM_THREADS")
    if value:
        return max(1, int(value))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def kernel_sources(package_dir: str = PACKAGE_DIR) -> list[str]:
    """The kernel sources of the engine (see the module notes), sorted absolute paths."""
    paths = set(glob.glob(os.path.join(package_dir, "_*kernels*.py")))
    paths.update(glob.glob(os.path.join(package_dir, "_*kernels*", "*.py")))
    for name in ("_primitives.py", "_prefetch.py", "config.py"):
        paths.add(os.path.join(package_dir, name))
    return sorted(p for p in paths if os.path.isfile(p))


#: ``from .x import a, b`` on one line, or ``from .x import (a,`` ... ``b)`` over several
#: (the names of one line must not run on into the next import).
_RELATIVE_IMPORT = re.compile(r"^[ \t]*from[ \t]+(\.+)([\w.]*)[ \t]+import[ \t]+(?:\(([^)]*)\)|([\w \t,]+))",
                              re.MULTILINE)


def _imported_sources(path: str, sources: set[str]) -> set[str]:
    """The kernel sources that ``path`` imports by relative imports (``from .x import y``,
    ``from . import x``, ``from ..x import y``)."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    found = set()
    for dots, module, listed, names in _RELATIVE_IMPORT.findall(text):
        names = listed or names
        base = os.path.dirname(path)
        for _ in range(len(dots) - 1):
            base = os.path.dirname(base)
        target = os.path.join(base, *module.split(".")) if module else base
        candidates = [target + ".py", os.path.join(target, "__init__.py")]
        candidates += [os.path.join(target, name.split()[0] + ".py") for name in names.split(",") if name.strip()]
        found.update(c for c in candidates if c in sources)
    found.discard(path)
    return found


def source_stamps(package_dir: str = PACKAGE_DIR) -> dict[str, str]:
    """Each kernel source's stamp: a hash of its text and of every kernel source it
    imports, directly or through others."""
    sources = kernel_sources(package_dir)
    source_set = set(sources)
    imports = {p: _imported_sources(p, source_set) for p in sources}
    digests = {}
    for p in sources:
        with open(p, "rb") as fh:
            digests[p] = hashlib.sha256(fh.read()).hexdigest()
    stamps = {}
    for p in sources:
        closure, todo = {p}, [p]
        while todo:
            for q in imports[todo.pop()]:
                if q not in closure:
                    closure.add(q)
                    todo.append(q)
        h = hashlib.sha256()
        for q in sorted(closure):
            h.update(os.path.relpath(q, package_dir).encode() + b"\0" + digests[q].encode() + b"\n")
        stamps[p] = h.hexdigest()
    return stamps


def _cache_dirs(path: str) -> list[str]:
    """Folders numba may keep ``path``'s compiled kernels in (see its cache locators)."""
    dirs = [os.path.join(os.path.dirname(path), "__pycache__")]
    try:
        from numba.core import config as numba_config
        from numba.core.caching import _CacheLocator
        from numba.misc.appdirs import AppDirs

        sub = _CacheLocator.get_suitable_cache_subpath(path)
        if numba_config.CACHE_DIR:
            dirs.append(os.path.join(numba_config.CACHE_DIR, sub))
        dirs.append(os.path.join(AppDirs(appname="numba", appauthor=False).user_cache_dir, sub))
    except (ImportError, AttributeError):  # another numba: at least the folder beside the source
        pass
    return dirs


def sync_kernel_cache(package_dir: str = PACKAGE_DIR, cache_dirs=_cache_dirs) -> list[str]:
    """Delete the cached kernels compiled from sources that have changed since (module
    notes); returns the files deleted. Never raises for a folder it cannot read or write."""
    removed = []
    for path, stamp in source_stamps(package_dir).items():
        module = os.path.splitext(os.path.basename(path))[0]
        for folder in cache_dirs(path):
            stamp_file = os.path.join(folder, module + STAMP_SUFFIX)
            try:
                with open(stamp_file, encoding="ascii") as fh:
                    if fh.read().strip() == stamp:
                        continue
            except OSError:
                pass
            try:
                entries = [e for e in os.listdir(folder)
                           if e.startswith(module + ".") and e.endswith((".nbi", ".nbc"))]
            except OSError:
                continue  # no such folder (yet): nothing compiled there
            try:
                for e in entries:
                    try:
                        os.remove(os.path.join(folder, e))
                        removed.append(os.path.join(folder, e))
                    except FileNotFoundError:  # another process cleared it first
                        pass
                tmp = f"{stamp_file}.{os.getpid()}"
                with open(tmp, "w", encoding="ascii") as fh:
                    fh.write(stamp + "\n")
                os.replace(tmp, stamp_file)
            except OSError:
                pass  # read-only: numba cannot have written there either
    return removed


if NJIT_OPTIONS["cache"] and os.environ.get("NUMBA_DISABLE_JIT", "0") in ("", "0"):
    sync_kernel_cache()
