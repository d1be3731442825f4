"""Benchmark folders: each sub-folder holds ``task.yaml`` and the benchmark's own code.

The registry (:mod:`aligngpt.harness.task_registry`) discovers them; docs/adding-a-benchmark.md
describes the layout and every key of ``task.yaml``.
"""
