"""The vqav2_val benchmark: task.yaml and its code (see docs/adding-a-benchmark.md)."""
