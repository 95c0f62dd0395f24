"""The project's benchmarks: speed ratios against baselines run in the same process, peak memory, quality.

Each module is run from the repository root as ``.venv/bin/python -m benchmarks.<name>`` (the ``make bench*`` and
``make gpu-check`` targets do); their shared helpers are in :mod:`benchmarks.common`.
"""
