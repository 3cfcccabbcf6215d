"""Helpers shared by the benchmark scripts.

Importing this module pins numba, OpenMP, the BLAS libraries and accum's own thread
pools (``ACCUM_THREADS``, read by :func:`accum.config.threads`) to one thread by
setting their environment variables, which those libraries read when they load: import
it before numpy, numba, scikit-learn or accum. Child processes (started with the
``spawn`` method by :func:`run_isolated`) inherit the variables.

What is here:

- where the corpora are (:func:`corpus_path`) and where results go (:data:`RESULTS_DIR`);
- the machine, package versions and command line for a report (:func:`report_header`);
- :func:`measure`, which times a block and measures its peak resident memory, and
  :func:`run_isolated`, which runs a function in a fresh process so that the peaks of
  different measurements do not mix;
- :func:`warm_accum`, which loads (or compiles) accum's numba kernels so that compile
  and cache-load time stays out of every measurement;
- markdown tables and report files.

Peak memory
-----------
``tracemalloc`` does not see numpy's, numba's or C++ libraries' allocations, so memory
is measured at the process level: before a measured block the kernel's peak-RSS mark
(``VmHWM``) is reset by writing ``5`` to ``/proc/self/clear_refs``; after it, the
peak is read back and the resident size before the block is subtracted. Where the
reset is not allowed, ``ru_maxrss`` is used instead (the growth of the process's
lifetime peak), which is why every measurement runs in a fresh process.
"""

from __future__ import annotations

import os

THREAD_VARIABLES = (
    "NUMBA_NUM_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "ACCUM_THREADS",
)
for _name in THREAD_VARIABLES:
    os.environ[_name] = "1"

import datetime as dt  # noqa: E402
import gc  # noqa: E402
import importlib.metadata  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from multiprocessing import get_context  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Iterator, Sequence  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"


# -- corpora ------------------------------------------------------------------------------


def corpora_dir() -> Path:
    """The shared corpora folder: ``$ACCUM_CORPORA``, default ``<repo>/../shared/data``."""
    return Path(os.environ.get("ACCUM_CORPORA") or REPO.parent / "shared" / "data")


def corpus_path(sub: str) -> Path:
    """Path of corpus ``sub`` under :func:`corpora_dir`; exit with a message when missing."""
    path = corpora_dir() / sub
    if not path.exists():
        raise SystemExit(
            f"corpus {path} is missing: set ACCUM_CORPORA to the shared data folder "
            "(see ../shared/data/README.md)"
        )
    return path


# -- machine, versions, command -----------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total_gb() -> float | None:
    """Physical memory in GB (``/proc/meminfo``), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return None


def machine_info() -> dict:
    """Date, CPU, cores, memory, OS, Python and load average of this machine."""
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": memory_total_gb(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def package_versions(names: Sequence[str]) -> dict[str, str]:
    """Installed version of each distribution in ``names`` ("not installed" when absent)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_revision() -> str:
    """Short commit of the checkout, with ``+local changes`` when the tree is dirty."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + (" +local changes" if dirty else "")


def command_line() -> str:
    """The command that reproduces this run, from the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(REPO)
    except ValueError:
        pass
    env = ""
    if os.environ.get("ACCUM_CORPORA"):
        env = f"ACCUM_CORPORA={shlex.quote(os.environ['ACCUM_CORPORA'])} "
    return env + shlex.join([".venv/bin/python", str(script), *sys.argv[1:]])


def report_header(title: str, versions: dict[str, str], machine: dict | None = None) -> str:
    """Markdown heading plus date, machine, versions, revision and reproducing command."""
    machine = machine or machine_info()
    memory = f", {machine['memory_gb']:.0f} GB RAM" if machine["memory_gb"] else ""
    load = machine["loadavg"]
    load_text = f"; load average at start {load[0]:.2f}" if load else ""
    lines = [
        f"# {title}",
        "",
        f"- date: {machine['date']}",
        f"- machine: {machine['cpu']}, nproc {machine['nproc']}{memory}, {machine['os']}{load_text}",
        f"- python {machine['python']}; " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- accum revision: {git_revision()}",
        f"- command (from the repository root): `{command_line()}`",
        "",
    ]
    return "\n".join(lines)


# -- measuring ----------------------------------------------------------------------------


@dataclass
class Measurement:
    """What :func:`measure` found: wall and CPU seconds, and the peak RSS growth in bytes."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_delta: int = 0
    memory_method: str = ""


def _proc_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _maxrss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


@contextmanager
def measure() -> Iterator[Measurement]:
    """Time the block and measure its peak resident memory above the RSS at its start.

    Yields a :class:`Measurement` that is filled in when the block exits.
    """
    gc.collect()
    result = Measurement()
    rss_before = (_proc_status_kb("VmRSS") or 0) * 1024
    hwm_reset = _reset_peak_rss()
    result.memory_method = "VmHWM reset" if hwm_reset else "ru_maxrss (upper bound)"
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - wall
        result.cpu_seconds = time.process_time() - cpu
        # without the reset, the lifetime peak may predate the block: an upper bound
        peak = (_proc_status_kb("VmHWM") or 0) * 1024 if hwm_reset else _maxrss_bytes()
        result.peak_rss_delta = max(0, peak - rss_before)


def run_isolated(func: Callable, *args, **kwargs):
    """Call ``func(*args, **kwargs)`` in a fresh ``spawn``-ed process and return its result.

    ``func`` must be importable by name (a module-level function); exceptions raised in
    the child are re-raised here.
    """
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(func, *args, **kwargs).result()


def warm_accum(with_store: bool = False) -> None:
    """Run accum once on a few tiny pages so its numba kernels are compiled and loaded.

    With ``with_store``, the tiny pages also go through a real ingest into a throwaway
    :class:`accum.storage.Store`, which loads pyarrow and SQLAlchemy too.
    """
    from accum.accumulator import Accumulator
    from accum.pages import Page
    from accum.warmup import LABELS as labels
    from accum.warmup import TEXTS as texts
    from accum.warmup import warm_up

    warm_up()
    if with_store:
        from accum.accumulator import Settings
        from accum.ingest import ingest
        from accum.storage import Store

        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "store", create=True)
            pages = [Page(f"file:///warm/{i}", lab, text) for i, (text, lab) in enumerate(zip(texts, labels))]
            with store.writer({"warm-up": True}, Settings()) as writer:
                ingest(pages, Accumulator(), writer)


# -- reports ------------------------------------------------------------------------------

#: A timing is marked when the process ran on a core for less than this share of its
#: wall time: it waited for the disk or, on a shared machine, for other processes.
MIN_CPU_SHARE = 0.8
CONTENTION_NOTE = (
    f"† marks a time whose process was on a CPU for less than {MIN_CPU_SHARE:.0%} of it "
    "(waiting for the disk or, on this shared machine, for other processes): read it as an "
    "upper bound."
)


def contention_mark(wall: float, cpu: float) -> str:
    """``"†"`` when ``cpu`` seconds are under :data:`MIN_CPU_SHARE` of ``wall`` seconds."""
    return "†" if wall > 0 and cpu < MIN_CPU_SHARE * wall else ""



def markdown_table(headers: Sequence[str], rows: Sequence[Sequence], align: str | None = None) -> str:
    """A markdown table; ``align`` has one of ``l``/``r`` per column (default: first left)."""
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value, digits: int = 2, missing: str = "—") -> str:
    """A number with thousands separators and ``digits`` decimals (``missing`` for None)."""
    if value is None:
        return missing
    return f"{value:,.{digits}f}"


def write_report(path: Path, text: str) -> None:
    """Write a markdown report, creating its folder, and say where on stderr."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n")
    print(f"wrote {path}", file=sys.stderr)
