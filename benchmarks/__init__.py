"""Benchmark scripts (not installed with accum); run them from the repository root."""
