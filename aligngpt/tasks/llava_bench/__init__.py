"""The llava_bench benchmark: task.yaml and its code (see docs/adding-a-benchmark.md)."""
