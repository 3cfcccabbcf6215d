"""numba settings for every kernel, and how many threads the engine may use, in one place.

``ACCUM_NUMBA_CACHE=0`` turns the on-disk kernel cache off (e.g. for a read-only install);
``NUMBA_DISABLE_JIT=1`` (numba's own switch) runs kernel bodies as plain Python, which
makes them visible to coverage and tracebacks. ``ACCUM_THREADS`` caps the threads that
run kernels side by side (default: the CPUs this process may use); results never depend
on it.
"""

import os

#: Keyword arguments passed to every ``numba.njit`` in the kernel modules.
NJIT_OPTIONS = {
    "cache": os.environ.get("ACCUM_NUMBA_CACHE", "1") != "0",
    "nogil": True,
    "fastmath": False,  # scores must be exact and reproducible; no reassociation
}


def threads() -> int:
    """Threads the engine may run kernels on at once (``ACCUM_THREADS``, default the CPUs available)."""
    value = os.environ.get("ACCUM_THREADS")
    if value:
        return max(1, int(value))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
