"""accum.config keeps numba's on-disk kernel cache right across kernel files."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import accum
from accum import config

PACKAGE = Path(accum.__file__).parent


def test_kernel_sources_are_every_kernel_file_and_what_they_share():
    names = {os.path.relpath(p, PACKAGE) for p in config.kernel_sources()}
    assert {os.path.join("_kernels", "counting.py"), "_primitives.py", "_prefetch.py", "config.py"} <= names
    assert {os.path.join("_markov_kernels", n) for n in ("counts.py", "chains.py", "sampling.py")} <= names
    assert "markov/model.py" not in names and "accumulator.py" not in names


def _copy_sources(tmp_path: Path) -> Path:
    pkg = tmp_path / "accum"
    for path in config.kernel_sources():
        target = pkg / os.path.relpath(path, PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    return pkg


def test_a_stamp_covers_a_file_and_every_kernel_source_it_imports(tmp_path):
    pkg = _copy_sources(tmp_path)
    before = config.source_stamps(str(pkg))
    with open(pkg / "_primitives.py", "a") as fh:
        fh.write("\n# changed\n")
    after = config.source_stamps(str(pkg))
    changed = {os.path.relpath(p, pkg) for p in before if before[p] != after[p]}
    assert {"_primitives.py", *(os.path.join("_kernels", n) for n in ("features.py", "tables.py", "counting.py", "scoring.py")),
            os.path.join("_markov_kernels", "sampling.py")} <= changed
    assert "_linear_kernels.py" not in changed and "_prefetch.py" not in changed
    with open(pkg / "_markov_kernels" / "tokens.py", "a") as fh:
        fh.write("\n# changed\n")
    again = config.source_stamps(str(pkg))
    changed = {os.path.relpath(p, pkg) for p in after if after[p] != again[p]}
    assert os.path.join("_markov_kernels", "recall.py") in changed  # recall -> decoding -> chains -> tokens
    assert os.path.join("_kernels", "counting.py") not in changed


def test_stale_cache_entries_are_deleted_and_fresh_ones_kept(tmp_path):
    pkg = _copy_sources(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()

    def entries():
        return sorted(p.name for p in cache.iterdir() if p.suffix in (".nbi", ".nbc"))

    def fill():
        for module in ("counting", "_linear_kernels", "sampling"):
            (cache / f"{module}.f-10.py311.nbi").write_text("index")
            (cache / f"{module}.f-10.py311.1.nbc").write_text("code")

    fill()
    removed = config.sync_kernel_cache(str(pkg), cache_dirs=lambda path: [str(cache)])
    assert len(removed) == 6 and entries() == []  # no stamp: nothing known to be fresh
    fill()
    assert config.sync_kernel_cache(str(pkg), cache_dirs=lambda path: [str(cache)]) == []
    with open(pkg / "_primitives.py", "a") as fh:
        fh.write("\n# changed\n")
    removed = config.sync_kernel_cache(str(pkg), cache_dirs=lambda path: [str(cache)])
    assert sorted(os.path.basename(p) for p in removed) == [
        "counting.f-10.py311.1.nbc", "counting.f-10.py311.nbi", "sampling.f-10.py311.1.nbc",
        "sampling.f-10.py311.nbi"]
    assert entries() == ["_linear_kernels.f-10.py311.1.nbc", "_linear_kernels.f-10.py311.nbi"]
    assert config.sync_kernel_cache(str(pkg), cache_dirs=lambda path: [str(tmp_path / "missing")]) == []


def test_a_kernel_sees_a_changed_primitive_in_another_file(tmp_path):
    """numba alone would load the caller's cached code, compiled with the old primitive."""
    pkg = tmp_path / "demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_demo_kernels.py").write_text(textwrap.dedent("""
        import os
        from accum.config import sync_kernel_cache
        sync_kernel_cache(os.path.dirname(__file__))
        from numba import njit
        from ._primitives import value

        @njit(cache=True)
        def call():
            return value()
    """))

    def run(version: int) -> str:
        (pkg / "_primitives.py").write_text(f"from numba import njit\n\n@njit(cache=True)\ndef value():\n"
                                            f"    return {version}\n")
        code = "from demo._demo_kernels import call; print(call())"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PACKAGE.parent)]),
               "NUMBA_CACHE_DIR": ""}
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              check=True).stdout.strip()

    assert run(1) == "1"
    assert run(2) == "2"
