"""Benchmarks of the hub library against PostgreSQL's own baselines; not installed with the
package. Run each from the repository root as a module, so it can import tools.throwaway:

    $ .venv/bin/python -m benchmarks.bench_startup     # hub --help vs python -c "import peewee"

What each measures, its options and the figures: docs/benchmarks.md.
"""
