"""accum: Dirichlet accumulators over crawled pages: classify, track saturation, regenerate."""

from .accumulator import Accumulator, Settings
from .pages import Page, Skipped

__all__ = ["Accumulator", "Settings", "Page", "Skipped"]
__version__ = "0.1.0"
