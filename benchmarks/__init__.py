"""The benchmark of embedviz, outside the product: each figure measured side by side, in the same run,
with the plain way of doing the same work. `python -m benchmarks [--quick]`; see __main__.py."""
