"""The vqav2 benchmark: task.yaml and its code (see docs/adding-a-benchmark.md)."""
