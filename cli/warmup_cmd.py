"""``accum warm-up``: compile every kernel now rather than at the first real command."""

from __future__ import annotations

import click

from .common import emit_json, json_option


@click.command("warm-up")
@click.option("--no-generator", is_flag=True, help="Leave out the text generator's kernels.")
@json_option
def warmup_command(no_generator, as_json):
    """Compile accum's numba kernels (or load them from numba's cache) on a few tiny pages,
    so that the first classify, fit or generate after an install does not wait for it.
    make install runs it."""
    from accum.warmup import warm_up

    seconds = warm_up(generator=not no_generator)
    if as_json:
        emit_json({k: round(v, 3) for k, v in seconds.items()})
        return
    click.echo("kernels ready: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()), err=True)
