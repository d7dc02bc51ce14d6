"""Benchmarks of the whole local pipeline (`make bench`, `python -m bench.run`).

Every figure is printed beside a baseline measured in the same run on the same machine,
and their ratio: the machines these run on are shared and noisy, so absolute figures of
two runs are not comparable, ratios mostly are.
"""
