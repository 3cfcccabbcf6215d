"""The examples in the docstrings run and show what they print."""

import doctest
import importlib
import pkgutil

import pytest

import accum


def _modules_with_examples() -> list[str]:
    names = [accum.__name__] + [m.name for m in pkgutil.walk_packages(accum.__path__, "accum.")]
    return [name for name in names if ">>>" in (importlib.util.find_spec(name).loader.get_source(name) or "")]


@pytest.mark.parametrize("name", _modules_with_examples())
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_export_of_accum_loads():
    """``import accum`` stays light: the names in ``accum.__all__`` load on first use, and
    none is also the name of a submodule (which would shadow it once imported)."""
    import pkgutil

    submodules = {m.name for m in pkgutil.iter_modules(accum.__path__)}
    assert not submodules & set(accum.__all__)
    for name in accum.__all__:
        assert getattr(accum, name) is getattr(importlib.import_module(accum._EXPORTS[name]), name)
    assert {"make_model", "select_model", "PageVectors", "MarkovAccumulator"} <= set(accum.__all__)
