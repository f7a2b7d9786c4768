"""Developer benchmarks: ``python -m benchmarks.bench`` from the repository root."""
