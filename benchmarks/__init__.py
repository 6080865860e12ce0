"""Benchmark scripts: each prints its measured figures, the machine and its exact command.
Run from the repository root, e.g. `.venv/bin/python -m benchmarks.bench_extract`."""
