"""``benchmarks/bench_evaluate.py``: the calibrate baseline times and measures its own work only."""
import inspect

import numpy as np
import pytest

from benchmarks import bench_evaluate as bench


def test_the_baseline_imports_nothing_inside_the_timed_and_measured_region():
    # The indicator (and torch behind it) is imported with the module, before the clock and the RSS baseline.
    assert bench.indicator_numpy.__module__ == 'desra_basicsr.detection.indicator'
    assert 'import' not in inspect.getsource(bench.percentile_baseline)


def test_the_memory_slope_comes_from_two_counts_not_the_total():
    # 300 MiB before the first image (say, an import), then 4 MiB per image: the slope is 4, total / count is not.
    rss = {n: 300 + 4.0 * n for n in range(1, 11)}
    assert bench.memory_slope(rss) == pytest.approx(4.0)
    assert bench.memory_slope({1: 50.0}) is None


def test_the_baseline_gives_the_percentile_and_the_rss_after_each_image(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, 'SIZE', 272)  # the painted texture is 256 pixels
    mse_dir, gan_dir = bench.make_pairs(str(tmp_path / 'pairs'), 4, distinct=2)
    names = sorted(p.name for p in (tmp_path / 'pairs' / 'mse').iterdir())
    value, rss = bench.percentile_baseline(mse_dir, gan_dir, names, 85)
    assert 0 <= value <= 1 and np.isfinite(value)
    assert sorted(rss) == [1, 2, 3, 4] and all(v > 0 for v in rss.values())
