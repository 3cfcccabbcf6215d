"""numba settings for every kernel, in one place.

``ACCUM_NUMBA_CACHE=0`` turns the on-disk kernel cache off (e.g. for a read-only install);
``NUMBA_DISABLE_JIT=1`` (numba's own switch) runs kernel bodies as plain Python, which
makes them visible to coverage and tracebacks.
"""

import os

#: Keyword arguments passed to every ``numba.njit`` in the kernel modules.
NJIT_OPTIONS = {
    "cache": os.environ.get("ACCUM_NUMBA_CACHE", "1") != "0",
    "nogil": True,
    "fastmath": False,  # scores must be exact and reproducible; no reassociation
}
