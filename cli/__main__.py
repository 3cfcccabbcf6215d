"""``python -m accum.cli`` runs the ``accum`` command."""

from .main import main

main()
