"""The ``accum`` command group."""

from __future__ import annotations

import gc

import click

from accum import __version__

from .capacity_cmd import capacity_command
from .compact_cmd import compact_command
from .demo import demo_command
from .evaluate_cmd import calibrate_command, evaluate_command
from .fit_cmd import fit_command
from .forecast_cmd import forecast_command
from .forget_cmd import forget_command
from .generate_cmd import generate_command, recall_command
from .ingest_cmd import ingest_command
from .query import categories_command, classify_command, info_command
from .report_cmd import report_command
from .saturation_cmd import asymptote_command, saturation_command
from .serve_cmd import serve_command
from .warmup_cmd import warmup_command


@click.group(context_settings={"auto_envvar_prefix": "ACCUM", "help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="accum")
def cli():
    """accum: Dirichlet-accumulator classifier for crawled pages.

    Ingest pages into a store, classify text, evaluate on labelled pages, follow how
    categories saturate, regenerate text and measure what it recalls verbatim.
    Output meant for programs goes to stdout (--json); progress and logs go to stderr.
    """


for command in (ingest_command, fit_command, forget_command, compact_command, classify_command, evaluate_command, calibrate_command, categories_command,
                info_command, saturation_command, asymptote_command, forecast_command, generate_command, recall_command, capacity_command, report_command, demo_command,
                serve_command, warmup_command):
    cli.add_command(command)


def main():
    try:
        cli()
    except BrokenPipeError:
        # the reader of stdout went away (accum ... | head): stop quietly, as cat does
        import os
        import sys

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    finally:
        # The command's work is done and committed; the interpreter's last collection
        # would walk every object numba's compiler leaves, a noticeable part of a short
        # query's time, only to free memory the process gives back anyway.
        gc.freeze()
