"""The scienceqa_img benchmark: task.yaml and its code (see docs/adding-a-benchmark.md)."""
