"""Benchmarks of every pipeline stage against a baseline: ``python -m benchmarks [--quick]`` (docs/benchmarks.md)."""
