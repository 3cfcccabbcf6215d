"""Command-line interface: the `accum` click commands."""
